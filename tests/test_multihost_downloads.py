"""Several hosts, one store, real worker subprocesses with distinct DEPOT_HOST values against one Redis and the
fake upstream over loopback: a host SIGKILLed mid-download is reaped and another host resumes from its partial
and publishes one correct file; three hosts asking for the same model make one transfer; two hosts scanning the
same root make one scan."""
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
from workers.queues import host_queue

SIZE = 4 * 1024 * 1024


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url, "HF_ENDPOINT": upstream.url,
                         "DEPOT_CHUNK_BYTES": str(64 * 1024), "DEPOT_STALL_S": "5"})
    return settings_env


def _lora(upstream, data: bytes) -> str:  # type: ignore[no-untyped-def]
    upstream.add_civitai_model(100, "Paper Cut Style", "LORA", versions=[
        {"id": 200, "name": "v2", "baseModel": "SDXL 1.0", "files": [{"id": 300, "name": "papercut.safetensors",
                                                                       "data": data}]}])
    return f"{upstream.url}/models/100"



def test_sigkill_mid_download_resumes_on_another_host_from_the_partial(app, workers, settings, upstream, beat):
    records = app.extensions["depot"].services.records
    data = safetensors_bytes(SIZE)
    url = _lora(upstream, data)
    key = "civitai:file:300"  # the alias counts each served byte once
    upstream.fault(key, "slow", bytes_per_s=600_000, times=None)
    # Given host alpha downloading a model, and an ops node running beat's jobs (the reaper)
    workers(host="ops", queues=["maintenance"])
    alpha = workers(host="alpha", queues=["downloads"])
    task, _ = Dispatcher(make_celery(settings), records).submit("download", {"url": url})
    wait_for(lambda: (records.get(task["id"])["progress"]["done"] or 0) >= SIZE * 0.6, timeout=30,
             what="most of the file on alpha")
    # When alpha vanishes (SIGKILL of its whole process group)
    alpha.kill()
    upstream.clear_faults()
    wait_for(lambda: records.get(task["id"])["state"] == "lost", timeout=30, what="the reaper to mark it lost")
    # Then beta resumes it from alpha's partial (attempt 2) and publishes one correct file
    target = Path(settings.store) / "loras" / "papercut.safetensors"
    resumed_on("beta", workers, records, task["id"], target, data)
    # And it resumed rather than restarted: far less than twice the file crossed the wire
    assert upstream.bytes_served(key) < SIZE * 1.5
    # And no partial is left, and the dead attempt can no longer write
    assert not [p.name for p in target.parent.iterdir() if p.name.endswith(".part")]
    assert not records.progress(task["id"], 1, {"done": 0}).owned


def test_three_hosts_asking_for_the_same_model_make_one_transfer(app, workers, settings, upstream):
    records = app.extensions["depot"].services.records
    data = safetensors_bytes(SIZE // 2, seed=7)
    url = _lora(upstream, data)
    key = "civitai:file:300"  # the alias counts each served byte once
    upstream.fault(key, "slow", bytes_per_s=1_500_000, times=None)
    hosts = ["h1", "h2", "h3"]
    for h in hosts:
        workers(host=h, queues=[host_queue(h)])
    # When each host asks for the model at the same moment (each its own task, on its own queue)
    dispatcher = Dispatcher(make_celery(settings), records)
    ids = [dispatcher.submit("download", {"url": url}, queue=host_queue(h))[0]["id"] for h in hosts]
    # Then all three succeed, each on its host, agreeing on one result
    finals = [finished(records, i) for i in ids]
    assert [t["state"] for t in finals] == ["succeeded"] * 3, [t["error"] for t in finals]
    assert sorted(t["host"] for t in finals) == hosts
    assert len({t["result"]["hashes"]["SHA256"] for t in finals}) == 1
    assert sorted(t["result"]["already_present"] for t in finals) == [False, True, True]
    # And the bytes crossed the wire once
    assert upstream.bytes_served(key) == len(data)
    assert (Path(settings.store) / "loras" / "papercut.safetensors").read_bytes() == data


def test_same_model_posted_concurrently_from_three_hosts_is_one_task(app, upstream):
    url = _lora(upstream, safetensors_bytes(1024))
    answers: list[dict] = []

    def post() -> None:
        answers.append(app.test_client().post("/api/v1/downloads", json={"url": url}).json)

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({a["id"] for a in answers}) == 1, answers


def test_two_hosts_scanning_the_same_root_make_one_scan(app, workers, settings):
    records = app.extensions["depot"].services.records
    loras = Path(settings.store) / "loras"
    loras.mkdir(parents=True, exist_ok=True)
    for i in range(40):
        (loras / f"m{i:02d}.safetensors").write_bytes(safetensors_bytes(512 * 1024, seed=i))
    for h in ("s1", "s2"):
        workers(host=h, queues=[host_queue(h)])
    # When both hosts are asked to scan the same folder at once
    from shared.scan import submit_params
    dispatcher = Dispatcher(make_celery(settings), records)
    ids = [dispatcher.submit("scan", submit_params(folder="loras"), queue=host_queue(h))[0]["id"] for h in ("s1", "s2")]
    finals = [finished(records, i) for i in ids]
    # Then both finish, and every file was hashed exactly once between them
    assert [t["state"] for t in finals] == ["succeeded", "succeeded"], [t["error"] for t in finals]
    assert sum(t["result"]["hashed"] for t in finals) == 40
    # And through the API the second request joins the first scan
    client = app.test_client()
    first = client.post("/api/v1/scans", json={"folder": "loras"}).json
    second = client.post("/api/v1/scans", json={"folder": "loras"}).json
    assert first["id"] == second["id"]
