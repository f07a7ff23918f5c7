"""A job's life through a real worker subprocess and real Redis: states and progress over REST with no
WebSocket, strictly increasing seq, SIGKILL → reaper → attempt 2 on another worker, fencing of attempt 1."""
from __future__ import annotations

import threading
from pathlib import Path

from tests.support import wait_for
from workers.celery_app import make_celery
from workers.dispatch import Dispatcher


def _submit(settings, records, params, **kw):
    dispatcher = Dispatcher(make_celery(settings), records, host="test")
    return dispatcher.submit("test_count", params, queue="maintenance", **kw)


def test_states_and_progress_over_rest(app, client, workers, settings):
    # Given a worker and a counting job
    workers(host="alpha")
    records = app.extensions["depot"].services.records
    task, created = _submit(settings, records, {"steps": 8, "interval": 0.15})
    assert created
    # When it runs, Then REST shows it running with progress, then succeeded
    wait_for(lambda: client.get(f"/api/v1/tasks/{task['id']}").json["progress"]["done"] >= 2, what="progress")
    body = wait_for(lambda: (b := client.get(f"/api/v1/tasks/{task['id']}").json)["state"] == "succeeded" and b)
    assert body["attempt"] == 1 and body["host"] == "alpha"
    assert body["result"]["counted"] == 8
    events = client.get(f"/api/v1/tasks/{task['id']}/events").json["events"]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [e["task"]["state"] for e in events if e["type"] == "state"] == ["queued", "running", "succeeded"]
    later = client.get(f"/api/v1/tasks/{task['id']}/events?since={seqs[-2]}").json["events"]
    assert [e["seq"] for e in later] == [seqs[-1]]


def test_sigkill_mid_job_is_reaped_and_finished_by_another_worker(app, workers, settings, tmp_path: Path):
    records = app.extensions["depot"].services.records
    marker = tmp_path / "marker.txt"
    a = workers(host="alpha", queues=["maintenance"])
    task, _ = _submit(settings, records, {"steps": 40, "interval": 0.1, "marker": str(marker)})
    wait_for(lambda: records.get(task["id"])["progress"]["done"] >= 5, what="attempt 1 progress")
    # When the whole host vanishes
    a.kill()
    # Then the reaper (run here as beat would) marks it lost once the lease runs out, and requeues it
    lost = wait_for(lambda: _reap(settings), timeout=15, what="lease expiry")
    assert task["id"] in lost
    assert records.get(task["id"])["state"] == "lost"
    # And a second worker finishes it with attempt 2, resuming from the recorded progress
    workers(host="beta", queues=["maintenance"])
    done = wait_for(lambda: (t := records.get(task["id"]))["state"] == "succeeded" and t, timeout=30)
    assert done["attempt"] == 2 and done["host"] == "beta"
    assert done["result"]["resumed_from"] >= 5
    assert marker.read_text() == "attempt=2\n"
    # And attempt 1 can no longer write
    import pytest

    from shared.errors import StaleAttempt
    with pytest.raises(StaleAttempt):
        records.finish(task["id"], 1, "failed", error={"code": "x", "message": "zombie"})
    assert not records.progress(task["id"], 1, {"done": 0}).owned


def _reap(settings):
    from shared.services import Services
    from workers.dispatch import Dispatcher
    services = Services.build(settings)
    lost = services.records.reap()
    for task_id in lost:
        Dispatcher(make_celery(settings), services.records).enqueue(services.records.get(task_id))
    return lost


def test_same_idempotency_key_concurrently_yields_one_task(app, settings):
    records = app.extensions["depot"].services.records
    results = []

    def submit() -> None:
        results.append(records.create("download", {"url": "u"}, queue="downloads", idem_key="artifact:1"))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({task["id"] for task, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_redis_restart_keeps_task_records(app, redis_server, settings):
    records = app.extensions["depot"].services.records
    ids = [records.create("scan", {"i": i}, queue="scan")[0]["id"] for i in range(20)]
    redis_server.restart()
    wait_for(lambda: records.r.ping(), what="redis back")
    assert [records.get(i)["params"]["i"] for i in ids] == list(range(20))
