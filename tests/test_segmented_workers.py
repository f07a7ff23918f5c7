"""Segmented downloads in real worker subprocesses against the fake upstream over loopback: a host SIGKILLed
mid-download is reaped and another host fetches only the ranges the first did not finish (the fake's byte
counters prove it), and two worker processes downloading at once keep to the per-origin connection ceiling."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from tests.download_support import safetensors_bytes
from tests.multihost_support import beat, finished, resumed_on  # noqa: F401 - fixture
from tests.support import wait_for
from workers.celery_app import make_celery
from workers.dispatch import Dispatcher

MIB = 1024 * 1024
SIZE = 8 * MIB
CONNECTIONS = 4


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url, "DEPOT_CHUNK_BYTES": str(64 * 1024), "DEPOT_STALL_S": "5",
                         "DEPOT_DOWNLOAD_CONNECTIONS": str(CONNECTIONS), "DEPOT_SEGMENT_BYTES": str(MIB),
                         "DEPOT_ORIGIN_CONNECTIONS": "3"})
    return settings_env


def _lora(upstream, model_id: int, data: bytes) -> str:  # type: ignore[no-untyped-def]
    upstream.add_civitai_model(model_id, f"Style {model_id}", "LORA", versions=[
        {"id": model_id + 100, "name": "v1", "baseModel": "SDXL 1.0",
         "files": [{"id": model_id + 200, "name": f"style{model_id}.safetensors", "data": data}]}])
    return f"{upstream.url}/models/{model_id}"



def test_sigkill_mid_segmented_download_fetches_only_the_missing_ranges_on_another_host(app, workers, settings,
                                                                                        upstream, beat):
    records = app.extensions["depot"].services.records
    data = safetensors_bytes(SIZE)
    url = _lora(upstream, 100, data)
    key = "civitai:file:300"
    upstream.fault(key, "slow", bytes_per_s=400_000, times=None)
    workers(host="ops", queues=["maintenance"])
    alpha = workers(host="alpha", queues=["downloads"])
    task, _ = Dispatcher(make_celery(settings), records).submit("download", {"url": url})
    wait_for(lambda: (records.get(task["id"])["progress"]["done"] or 0) >= len(data) * 0.5, timeout=60,
             what="half of the file on alpha")
    # When alpha vanishes mid-transfer (SIGKILL of its whole process group)
    alpha.kill()
    upstream.clear_faults()
    wait_for(lambda: records.get(task["id"])["state"] == "lost", timeout=30, what="the reaper to mark it lost")
    saved = records.segments(task["id"])
    assert saved and '"done"' in saved
    # Then beta resumes it from alpha's partial and its map, and publishes one correct file
    target = Path(settings.store) / "loras" / "style100.safetensors"
    resumed_on("beta", workers, records, task["id"], target, data)
    # And only the unfinished ranges were fetched again: at most one segment per connection more than the file
    assert upstream.bytes_served(key) <= len(data) + CONNECTIONS * MIB, upstream.bytes_served(key)
    assert any("bytes are here" in str(e["task"].get("message")) for e in records.events(task["id"])
               if e["type"] == "log")


def test_two_worker_processes_keep_to_the_origin_ceiling(app, workers, settings, upstream, redis):
    records = app.extensions["depot"].services.records
    files = {100: safetensors_bytes(SIZE, seed=3), 101: safetensors_bytes(SIZE, seed=5)}
    urls = {mid: _lora(upstream, mid, data) for mid, data in files.items()}
    for mid in files:
        upstream.fault(f"civitai:file:{mid + 200}", "slow", bytes_per_s=2 * MIB, times=None)
    workers(host="alpha", queues=["downloads"])
    workers(host="beta", queues=["downloads"])
    upstream.reset_counts()
    held: list[int] = []
    stop = threading.Event()

    def sample() -> None:  # the slots both processes hold at once, as Redis counts them
        while not stop.is_set():
            held.extend(redis.zcard(k) for k in redis.scan_iter("depot:origin:*:slots"))
            stop.wait(0.01)
    sampler = threading.Thread(target=sample)
    sampler.start()
    dispatcher = Dispatcher(make_celery(settings), records)
    tasks = [dispatcher.submit("download", {"url": url})[0] for url in urls.values()]
    try:
        for task in tasks:
            done = finished(records, task["id"])
            assert done["state"] == "succeeded", done["error"]
    finally:
        stop.set()
        sampler.join()
    assert {records.get(t["id"])["host"] for t in tasks} == {"alpha", "beta"}
    for mid, data in files.items():
        assert (Path(settings.store) / "loras" / f"style{mid}.safetensors").read_bytes() == data
    # Two downloads of four connections each, one storage server allowing three: never more than three at once
    assert max(held) == 3, held
    # (seen from the server, a connection cut short when its segment is split goes on being written for the
    # moment it takes the server to notice the close, beside the request that replaced it)
    assert 2 <= upstream.max_active() <= 4, upstream.max_active()
