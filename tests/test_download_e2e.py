"""Downloads through the REST API and real worker subprocesses: three identical requests make one task and one
transfer; SIGKILL mid-transfer → another worker adopts the partial and resumes it with Range; pause keeps the
partial and resume continues it; cancel removes it."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.download_support import jpeg_bytes, model_files, safetensors_bytes
from tests.support import wait_for
from workers.celery_app import make_celery
from workers.dispatch import Dispatcher

SIZE = 4 * 1024 * 1024 + 77
CHUNK = 128 * 1024
#: At a kill, at most one read chunk is in the dead worker's memory, plus what the loopback socket held.
IN_FLIGHT = CHUNK + 64 * 1024


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url, "HF_ENDPOINT": upstream.url,
                         "DEPOT_CHUNK_BYTES": str(CHUNK), "DEPOT_STALL_S": "5"})
    return settings_env


def _model(upstream, data: bytes) -> None:  # type: ignore[no-untyped-def]
    upstream.add_civitai_model(7, "Ink Lines", "LORA", versions=[{
        "id": 70, "name": "v1", "trainedWords": ["ink"],
        "files": [{"id": 700, "name": "ink.safetensors", "data": data}],
        "images": [{"data": jpeg_bytes(), "nsfwLevel": 1}]}])


def _state(client, task_id: str) -> dict:  # type: ignore[type-arg]
    return client.get(f"/api/v1/tasks/{task_id}").json


def test_three_identical_requests_make_one_task_and_one_transfer(app, client, workers, settings, upstream):
    # Given a model and a worker
    data = safetensors_bytes(SIZE)
    _model(upstream, data)
    upstream.fault("civitai:file:700", "slow", bytes_per_s=8 * 1024 * 1024)
    workers(host="alpha")
    # When three hosts ask for the same artifact at the same moment
    ids: list[str] = []

    def post() -> None:
        resp = app.test_client().post("/api/v1/downloads", json={"url": f"{upstream.url}/models/7"})
        assert resp.status_code == 202, resp.json
        ids.append(resp.json["id"])

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then they all get the same task, which succeeds having fetched the file exactly once
    assert len(set(ids)) == 1
    done = wait_for(lambda: (t := _state(client, ids[0]))["state"] in ("succeeded", "failed") and t, timeout=40)
    assert done["state"] == "succeeded", done["error"]
    assert done["result"]["hashes"]["SHA256"] == upstream.file_hashes(700)["SHA256"]
    assert (Path(settings.store) / "loras" / "ink.safetensors").read_bytes() == data
    assert (Path(settings.store) / "loras" / "ink.webp").exists()
    assert upstream.bytes_served("civitai:file:700") == len(data)


def test_sigkill_mid_transfer_another_worker_resumes_the_partial(app, client, workers, settings, upstream):
    # Given a slow transfer running on alpha
    data = safetensors_bytes(SIZE, seed=3)
    _model(upstream, data)
    upstream.fault("civitai:file:700", "slow", bytes_per_s=1024 * 1024)
    alpha = workers(host="alpha", queues=["downloads"])
    task = client.post("/api/v1/downloads", json={"url": f"{upstream.url}/models/7"}).json
    wait_for(lambda: (_state(client, task["id"])["progress"]["done"] or 0) >= 1024 * 1024, timeout=30,
             what="a quarter of the file")
    # When alpha is killed mid-transfer
    alpha.kill()
    loras = Path(settings.store) / "loras"
    assert [f for f in model_files(loras) if f.endswith(".part") and ".alpha." in f]
    lost = wait_for(lambda: _reap(settings), timeout=20, what="lease expiry")
    assert task["id"] in lost
    # Then beta adopts the partial, resumes it with Range and publishes one correct file
    workers(host="beta", queues=["downloads"])
    done = wait_for(lambda: (t := _state(client, task["id"]))["state"] in ("succeeded", "failed") and t, timeout=40)
    assert done["state"] == "succeeded", done["error"]
    assert done["attempt"] == 2 and done["host"] == "beta"
    assert (loras / "ink.safetensors").read_bytes() == data
    assert upstream.bytes_served("civitai:file:700") <= len(data) + IN_FLIGHT
    assert [f for f in model_files(loras) if f.endswith(".part")] == []


def _reap(settings):  # type: ignore[no-untyped-def]
    from shared.services import Services
    services = Services.build(settings)
    lost = services.records.reap()
    for task_id in lost:
        Dispatcher(make_celery(settings), services.records).enqueue(services.records.get(task_id))
    return lost


def test_pause_keeps_the_partial_resume_continues_cancel_removes(app, client, workers, settings, upstream):
    data = safetensors_bytes(SIZE, seed=5)
    _model(upstream, data)
    upstream.fault("civitai:file:700", "slow", bytes_per_s=1024 * 1024)
    workers(host="alpha", queues=["downloads"])
    loras = Path(settings.store) / "loras"
    task = client.post("/api/v1/downloads", json={"url": f"{upstream.url}/models/7"}).json
    wait_for(lambda: (_state(client, task["id"])["progress"]["done"] or 0) >= 512 * 1024, timeout=30)
    # Pause: the task parks with its partial on disk
    assert client.post(f"/api/v1/tasks/{task['id']}/pause").status_code == 200
    wait_for(lambda: _state(client, task["id"])["state"] == "paused", timeout=20)
    assert [f for f in model_files(loras) if f.endswith(".part")]
    # Resume: it continues from the partial
    assert client.post(f"/api/v1/tasks/{task['id']}/resume").status_code == 200
    done = wait_for(lambda: (t := _state(client, task["id"]))["state"] in ("succeeded", "failed") and t, timeout=40)
    assert done["state"] == "succeeded", done["error"]
    assert (loras / "ink.safetensors").read_bytes() == data
    assert upstream.bytes_served("civitai:file:700") <= len(data) + IN_FLIGHT
    # Cancel another download mid-transfer: its partial is removed and nothing is published
    other = upstream.add_direct("/big/other.safetensors", safetensors_bytes(SIZE, seed=8))
    upstream.fault("/big/other.safetensors", "slow", bytes_per_s=512 * 1024)
    t2 = client.post("/api/v1/downloads", json={"url": other, "folder": "loras"}).json
    wait_for(lambda: (_state(client, t2["id"])["progress"]["done"] or 0) >= 256 * 1024, timeout=30)
    assert client.post(f"/api/v1/tasks/{t2['id']}/cancel").status_code == 200
    wait_for(lambda: _state(client, t2["id"])["state"] == "cancelled", timeout=20)
    wait_for(lambda: not [f for f in model_files(loras) if "other" in f], timeout=10, what="partial removed")
