"""Flower as ``depot flower`` starts it (same Celery config, basic auth from settings): with auth its REST API
lists our tasks; without auth it refuses."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import requests

from tests.support import VENV_BIN, base_env, free_port, wait_for
from workers.celery_app import make_celery
from workers.dispatch import Dispatcher


def test_flower_lists_our_tasks_with_auth_and_refuses_without(app, settings_env, workers, settings, tmp_path: Path):
    # Given Flower started by `depot flower` with basic auth, and a worker
    port = free_port()
    env = base_env({**settings_env, "DEPOT_FLOWER_PORT": str(port), "DEPOT_FLOWER_AUTH": "ops:s3cret"})
    log = open(tmp_path / "flower.log", "wb")
    flower = subprocess.Popen([str(VENV_BIN / "depot"), "flower"], env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(f"{base}/healthcheck", timeout=2).status_code in (200, 401), timeout=30,
                 what="flower to listen")
        workers(host="fl", queues=["maintenance"])
        # When a job runs
        records = app.extensions["depot"].services.records
        task, _ = Dispatcher(make_celery(settings), records).submit("test_count", {"steps": 2, "interval": 0.05},
                                                                   queue="maintenance")
        wait_for(lambda: records.get(task["id"])["state"] == "succeeded", what="job done")
        # Then Flower's REST API lists it (with auth)
        auth = ("ops", "s3cret")
        listed = wait_for(lambda: [t for t in requests.get(f"{base}/api/tasks", auth=auth, timeout=5).json().values()
                                   if t["name"] == "depot.test_count" and task["id"] in (t.get("args") or "")],
                          timeout=30, interval=0.5, what="flower to list the task")
        assert listed[0]["state"] == "SUCCESS" and listed[0]["worker"] == "w@fl"
        # And a job that ends failed in our records is a failure in Flower too, without a Celery retry
        failing, _ = Dispatcher(make_celery(settings), records).submit("test_count", {"steps": 1, "fail": True},
                                                                      queue="maintenance")
        wait_for(lambda: records.get(failing["id"])["state"] == "failed", what="the job to fail")
        failures = wait_for(lambda: [t for t in requests.get(f"{base}/api/tasks", params={"state": "FAILURE"},
                                                             auth=auth, timeout=5).json().values()
                                     if failing["id"] in (t.get("args") or "")],
                            timeout=30, interval=0.5, what="flower to list the failure")
        assert failures[0]["exception"] == "JobFailed('test_failure: asked to fail')"
        final = records.get(failing["id"])
        assert final["attempt"] == 1 and final["error"]["code"] == "test_failure"
        # (its worker logs the failure in one line, not a traceback)
        worker_log = b"".join(p.read_bytes() for p in tmp_path.glob("worker-fl-*.log"))
        assert b"JobFailed" in worker_log and b"Traceback" not in worker_log
        # And without auth, or with a wrong password, it refuses
        assert requests.get(f"{base}/api/tasks", timeout=5).status_code == 401
        assert requests.get(f"{base}/api/tasks", auth=("ops", "nope"), timeout=5).status_code == 401
    finally:
        if flower.poll() is None:
            os.killpg(flower.pid, signal.SIGTERM)
            try:
                flower.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(flower.pid, signal.SIGKILL)
        log.close()


def test_flower_without_auth_binds_loopback_and_only_then_opens_its_api():
    from cli.procs import flower_cmd, flower_env
    from shared.config import load_settings
    open_ = load_settings({}, web_bind="0.0.0.0")
    assert "--address=127.0.0.1" in flower_cmd(open_)
    assert flower_env(open_) == {"FLOWER_UNAUTHENTICATED_API": "true"}
    secured = load_settings({}, web_bind="0.0.0.0", api_token="tok")
    assert "--address=0.0.0.0" in flower_cmd(secured)
    assert flower_env(secured) == {"FLOWER_BASIC_AUTH": "depot:tok"}
