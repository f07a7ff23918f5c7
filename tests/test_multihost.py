"""Crash and restart behaviour with real worker subprocesses on distinct hosts (DEPOT_HOST) sharing one Redis and
one store directory: SIGTERM hands a running task back at once and it resumes elsewhere; a Redis restart mid-run
loses no record and the worker reconnects by itself."""
from __future__ import annotations

from pathlib import Path

from tests.multihost_support import beat  # noqa: F401 - fixture
from tests.support import wait_for
from workers.celery_app import make_celery
from workers.dispatch import Dispatcher

FAST_SOFT_SHUTDOWN = {"DEPOT_SOFT_SHUTDOWN_S": "1"}


def _submit(settings, records, params):
    return Dispatcher(make_celery(settings), records).submit("test_count", params, queue="maintenance")[0]


def test_sigterm_hands_the_task_back_and_it_resumes_on_another_host(app, workers, settings, tmp_path: Path):
    records = app.extensions["depot"].services.records
    marker = tmp_path / "marker.txt"
    # Given a job running on host alpha
    alpha = workers(host="alpha", queues=["maintenance"], env=FAST_SOFT_SHUTDOWN)
    task = _submit(settings, records, {"steps": 60, "interval": 0.1, "marker": str(marker)})
    wait_for(lambda: records.get(task["id"])["progress"]["done"] >= 5, what="attempt 1 progress")
    # And host beta idle on the same queue
    workers(host="beta", queues=["maintenance"])
    # When alpha is deployed over (SIGTERM: soft shutdown, then the unacked message is requeued)
    alpha.terminate(timeout=30)
    # Then beta picks it up without waiting for the reaper, and resumes rather than restarts
    done = wait_for(lambda: (t := records.get(task["id"]))["state"] == "succeeded" and t, timeout=40,
                    what="the task to finish on beta")
    assert done["host"] == "beta" and done["attempt"] == 2
    assert done["result"]["resumed_from"] >= 5
    assert marker.read_text() == "attempt=2\n"
    assert "Restoring" in alpha.log() or "handoff" in alpha.log()
    # And the shutdown reads as one: no traceback for the pool process stopped mid-task, no exit-code errors
    assert "Traceback" not in alpha.log() and "WorkerLostError" not in alpha.log()
    assert "exited with 'signal" not in alpha.log()


def test_redis_restart_mid_run_loses_nothing_and_the_worker_finishes(app, redis_server, workers, settings, beat):
    records = app.extensions["depot"].services.records
    # Given a running job and a few queued ones behind it on one worker, and beat running the reaper
    workers(host="gamma", queues=["maintenance"])
    running = _submit(settings, records, {"steps": 30, "interval": 0.1})
    queued = [_submit(settings, records, {"steps": 2, "interval": 0.01}) for _ in range(3)]
    wait_for(lambda: records.get(running["id"])["progress"]["done"] >= 3, what="progress before the restart")
    # When Redis (AOF) restarts under it
    redis_server.restart(down_for=1.0)
    # Then every record is still there, and the worker reconnects and finishes all of them by itself (the job
    # Celery cancelled on the connection loss is reaped once its lease runs out and resumed)
    for t in [running, *queued]:
        assert records.get(t["id"])["params"] == t["params"]
    for t in [running, *queued]:
        final = wait_for(lambda t=t: (r := records.get(t["id"]))["state"] == "succeeded" and r, timeout=60,
                         interval=0.2, what=f"{t['id']} to succeed after the restart")
        assert final["result"]["counted"] == t["params"]["steps"]
    # And the interrupted job resumed from its recorded progress rather than starting over
    assert records.get(running["id"])["result"]["resumed_from"] >= 3
