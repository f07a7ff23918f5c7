"""Replica fences and Lua scripts against real redis-servers: a task the API acknowledged has reached the replica
by the time ``submit`` returns, even from a replica that was a moment behind; with no replica connected nothing
waits; every transition script and redis-py's lock reload themselves on a server with an empty script cache (a
promoted replica)."""
from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib

from shared.config import Settings
from shared.records import TaskRecords
from shared.redis_client import client_for
from tests.multihost_support import beat  # noqa: F401 - fixture
from tests.sentinel_support import Node
from tests.support import free_port, wait_for
from workers.celery_app import make_celery
from workers.dispatch import Dispatcher

#: What WAIT makes the master append to the replication stream to ask for an acknowledgement.
_GETACK = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n"


class Pair:
    def __init__(self, tmp: Path) -> None:
        ports = [free_port(), free_port()]
        common = ["--bind", "127.0.0.1", "--dir", ".", "--save", "", "--appendonly", "no",
                  "--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "30"]
        self.master = Node("m", tmp / "m", ["--port", str(ports[0]), "--logfile", "m.log", *common], ports[0])
        self.replica = Node("r", tmp / "r", ["--port", str(ports[1]), "--logfile", "r.log", *common,
                                             "--replicaof", "127.0.0.1", str(ports[0])], ports[1])

    def role(self) -> tuple[int, list[int]]:
        """The master's replication offset and each connected replica's acknowledged offset."""
        role = self.master.client().execute_command("ROLE")
        return int(role[1]), [int(r[2]) for r in role[2]]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    p = Pair(tmp_path)
    p.master.start()
    p.replica.start()
    try:
        wait_for(lambda: p.replica.client().info("replication")["master_link_status"] == "up", timeout=20,
                 what="the replica to sync")
        # After a diskless sync the master counts the replica as online only once it has sent its first ACK
        wait_for(lambda: len(p.role()[1]) == 1, timeout=20, what="the master to list the replica as online")
        yield p
    finally:
        p.replica.stop()
        p.master.stop()


def _dispatcher(pair: Pair, settings: Settings) -> tuple[Dispatcher, TaskRecords]:
    url = f"redis://127.0.0.1:{pair.master.port}/0"
    client = client_for(url)
    records = TaskRecords(client, ttl_s=3600, lease_s=5, replicated=True)
    return Dispatcher(make_celery(settings.replace(redis_url=url)), records), records


def test_an_acknowledged_task_is_on_the_replica_even_when_it_lagged(pair: Pair, settings: Settings) -> None:
    dispatcher, records = _dispatcher(pair, settings)
    dispatcher.submit("verify", {"warm": True}, queue="verify")  # connections and the role cache warmed up
    # Given a replica that stalls for a moment (it can neither apply nor acknowledge anything meanwhile)
    os.kill(pair.replica.proc.pid, signal.SIGSTOP)
    resume = threading.Timer(0.3, os.kill, (pair.replica.proc.pid, signal.SIGCONT))
    resume.start()
    try:
        # When a task is submitted as the API does (record, then its broker message)
        task, created = dispatcher.submit("verify", {"n": 1}, queue="verify")
        # Then by the time submit returns the replica has acknowledged every write, the message's included
        offset, acked = pair.role()
    finally:
        resume.join()
        os.kill(pair.replica.proc.pid, signal.SIGCONT)
    # (all but the master's own request for that acknowledgement, which follows the writes in the stream)
    assert created and len(acked) == 1 and offset - acked[0] <= len(_GETACK)
    assert pair.replica.client().hget(f"depot:task:{task['id']}", "state") == "queued"
    assert pair.replica.client().llen("verify") == 2
    assert records.fence.stats["short"] == 0
    records.r.close()


def test_with_no_replica_connected_nothing_waits(pair: Pair, settings: Settings) -> None:
    dispatcher, records = _dispatcher(pair, settings)
    # Given the replica gone (the state right after a failover, before the old master is back)
    pair.replica.kill()
    wait_for(lambda: pair.role()[1] == [], what="the master to drop the replica")
    # When tasks are submitted
    for n in range(3):
        task, created = dispatcher.submit("verify", {"n": n}, queue="verify")
        assert created and records.get(task["id"])["state"] == "queued"
    # Then the fence was skipped rather than waiting out its timeout each time
    assert records.fence.stats["fences"] == 0 and records.fence.stats["skipped"] == 3
    records.r.close()


def test_scripts_and_locks_reload_on_an_empty_script_cache(redis: redis_lib.Redis, settings: Settings) -> None:
    client = client_for(settings.redis_url)
    records = TaskRecords.from_settings(client, settings)
    task, _ = records.create("verify", {}, queue="verify")
    lock = client.lock("depot:lock:test", timeout=5)
    assert lock.acquire(blocking=False)
    # When the server forgets every script (as a promoted replica never had them)
    redis.script_flush()
    # Then each transition and the lock still work
    claim = records.claim(task["id"], host="h", worker="w@h")
    assert claim is not None
    redis.script_flush()
    assert records.progress(task["id"], claim.attempt, {"done": 1, "total": 2}).owned
    redis.script_flush()
    assert records.heartbeat(task["id"], claim.attempt).owned
    redis.script_flush()
    records.finish(task["id"], claim.attempt, "succeeded", result={"ok": True})
    assert records.get(task["id"])["state"] == "succeeded"
    redis.script_flush()
    lock.reacquire()
    lock.release()
    client.close()


def test_a_task_whose_send_was_cut_off_is_sent_again_by_the_reaper(app: Any, workers: Any, settings: Settings) -> None:
    from shared import keys
    records = app.extensions["depot"].services.records
    celery = make_celery(settings)
    workers(host="ops", queues=["maintenance"])
    # Given a task sent normally, and one whose record was written but whose message never was (the web process,
    # or the master, died in between), both untouched for two minutes
    sent, _ = Dispatcher(celery, records).submit("test_count", {"steps": 1, "interval": 0.01}, queue="maintenance")
    wait_for(lambda: records.get(sent["id"])["state"] == "succeeded", what="the sent task to run")
    cut, _ = records.create("test_count", {"steps": 2, "interval": 0.01}, queue="maintenance")
    for task_id in (sent["id"], cut["id"]):
        records.r.hset(keys.task(task_id), "updated_at", f"{records.get(task_id)['updated_at'] - 120:.6f}")
    assert records.unsent(60) == [cut["id"]]
    # When beat's reaper runs
    celery.send_task("depot.maintenance.reap", queue="maintenance")
    # Then the cut-off task is sent and runs, once
    done = wait_for(lambda: (t := records.get(cut["id"]))["state"] == "succeeded" and t, timeout=30,
                    what="the cut-off task to run")
    assert done["attempt"] == 1 and records.unsent(0) == []


def test_a_job_that_loses_redis_is_resumed_not_failed(app: Any, workers: Any, settings: Settings, beat: Any) -> None:
    records = app.extensions["depot"].services.records
    workers(host="ops", queues=["maintenance"])
    # Given a job whose first attempt meets a Redis that stays away longer than the client's retries
    task, _ = Dispatcher(make_celery(settings), records).submit(
        "test_count", {"steps": 3, "interval": 0.05, "redis_lost_on_attempt": 1}, queue="maintenance")
    # Then that attempt records no failure: the lease runs out, the reaper requeues it, and it succeeds
    done = wait_for(lambda: (t := records.get(task["id"]))["state"] in ("succeeded", "failed") and t, timeout=60,
                    interval=0.2, what="the job to finish")
    assert done["state"] == "succeeded" and done["attempt"] == 2, done["error"]
