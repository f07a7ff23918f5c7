"""Routing across hosts with real worker subprocesses: host-affine work lands on ``host.<name>`` and runs only
there; /api/v1/health lists each host's workers, queues and last heartbeat."""
from __future__ import annotations

import time

from tests.support import wait_for
from workers.celery_app import make_celery
from workers.dispatch import Dispatcher
from workers.queues import host_queue


def test_host_affine_work_runs_on_that_host(app, workers, settings):
    # Given two GPU hosts, each consuming the shared queues plus its own host queue
    workers(host="gpu1")
    workers(host="gpu2")
    records = app.extensions["depot"].services.records
    dispatcher = Dispatcher(make_celery(settings), records)
    # When host-affine jobs are sent to host.gpu2 and host.gpu1
    ids = {h: [dispatcher.submit("test_count", {"steps": 1, "interval": 0.01}, queue=host_queue(h))[0]["id"]
               for _ in range(3)] for h in ("gpu1", "gpu2")}
    # Then each ran on the host it was addressed to
    for host, task_ids in ids.items():
        for task_id in task_ids:
            done = wait_for(lambda task_id=task_id: (t := records.get(task_id))["state"] == "succeeded" and t,
                            what=task_id)
            assert done["host"] == host and done["queue"] == f"host.{host}"


def test_health_lists_hosts_queues_and_last_heartbeat(client, workers):
    # Given a worker on gpu1 for every queue and one on gpu2 for previews only
    workers(host="gpu1")
    workers(host="gpu2", queues=["previews", "host.gpu2"])
    # When health is asked
    body = client.get("/api/v1/health").json
    # Then it lists both hosts with their node names, queues and a recent heartbeat
    by_host = {w["host"]: w for w in body["workers"]}
    assert set(by_host) == {"gpu1", "gpu2"}
    assert by_host["gpu1"]["name"] == "w@gpu1"
    assert {"downloads", "scan", "verify", "previews", "maintenance", "host.gpu1"} == set(by_host["gpu1"]["queues"])
    assert set(by_host["gpu2"]["queues"]) == {"previews", "host.gpu2"}
    assert all(time.time() - w["seen"] < 30 for w in body["workers"])
    assert body["status"] == "ok" and "reason" not in body
