"""Redis Sentinel end to end, with a real failover: one master, one replica and three sentinels on loopback, the
web server (``depot web``: gunicorn) over HTTP, beat, and two worker hosts as real subprocesses, all pointed at
``DEPOT_REDIS_URL=sentinel://…``. While downloads from the throttled fake upstream and a full scan are running,
the master is SIGKILLed. The sentinels promote the replica; every task the API acknowledged still exists and
ends succeeded (the interrupted ones resume on a new attempt); every file is whole, once; a WebSocket connected
before the kill is told to resync or closed, and a reconnected one is live. The old master is then started
again, Sentinel makes it a replica, and one more download works.

Runs alone with ``pytest -m failover``; timings are printed (``-s``) but never asserted."""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_websocket import ConnectionClosed

from cli.wsclient import connect as ws_connect
from shared import keys
from shared.redis_client import client_for
from tests.download_support import safetensors_bytes
from tests.fake_upstream import FakeUpstream
from tests.sentinel_support import DepotProcess, SentinelCluster
from tests.support import WorkerProcess, base_env, free_port, wait_for
from workers.queues import default_queues

pytestmark = pytest.mark.failover

DOWNLOADS = 5
SIZE = 1_500_000
RATE = 400_000  # bytes/s per download: each takes ~4 s, so the kill lands mid-transfer
SCAN_FILES = 40
FINAL = {"succeeded", "failed", "cancelled"}


class Stack:
    """The cluster plus web, beat and two worker hosts on it."""

    def __init__(self, tmp: Path, upstream: FakeUpstream) -> None:
        self.tmp = tmp
        self.cluster = SentinelCluster(tmp / "redis")
        self.store = tmp / "models"
        self.port = free_port()
        self.env = base_env({
            "DEPOT_REDIS_URL": self.cluster.url, "DEPOT_STORE": str(self.store), "DEPOT_VAR_DIR": str(tmp / "var"),
            "DEPOT_ALLOW_PRIVATE_URLS": "1", "DEPOT_CIVITAI_URL": upstream.url, "HF_ENDPOINT": upstream.url,
            "DEPOT_LEASE_S": "3", "DEPOT_PROGRESS_INTERVAL_S": "0.2", "DEPOT_CHUNK_BYTES": str(64 * 1024),
            "DEPOT_STALL_S": "5", "DEPOT_REAPER_INTERVAL_S": "1", "DEPOT_WEB_PORT": str(self.port),
            "DEPOT_SOFT_SHUTDOWN_S": "1", "DEPOT_SCAN_PROCESSES": "1"})
        (tmp / "var").mkdir()
        self.web = DepotProcess(["web"], {**self.env, "DEPOT_HOST": "head"}, tmp / "web.log")
        self.beat = DepotProcess(["beat"], {**self.env, "DEPOT_HOST": "head"}, tmp / "beat.log")
        self.workers = [WorkerProcess(self.env, host=h, queues=default_queues(h), log_path=tmp / f"worker-{h}.log",
                                      concurrency=3) for h in ("alpha", "beta")]
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        self.client: Any = None

    def start(self) -> Stack:
        self.cluster.start()
        self.client = client_for(self.cluster.url)
        self.web.start()
        self.beat.start()
        for w in self.workers:
            w.start()
        for w in self.workers:
            wait_for(lambda w=w: w.node in self.client.hgetall(keys.WORKERS), timeout=60,
                     what=f"worker {w.node} to be ready")
        wait_for(lambda: requests.get(f"{self.url}/health", timeout=5).status_code == 200, timeout=60,
                 what="the web server")
        return self

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        return requests.request(method, f"{self.url}{path}", timeout=30, **kw)

    def task(self, task_id: str) -> dict[str, Any]:
        resp = self.api("GET", f"/tasks/{task_id}")
        assert resp.status_code == 200, (task_id, resp.status_code, resp.text)
        return resp.json()

    def stop(self) -> None:
        for w in self.workers:
            w.kill()
        # the test is over: no grace period (gunicorn would wait out its open WebSockets)
        self.beat.stop(timeout=0.5)
        self.web.stop(timeout=0.5)
        if self.client is not None:
            self.client.close()
        self.cluster.stop()


class Watcher(threading.Thread):
    """A WebSocket client that records every message until the server closes the socket."""

    def __init__(self, url: str) -> None:
        super().__init__(name="ws-watcher", daemon=True)
        self.ws = ws_connect(url)
        self.messages: list[dict[str, Any]] = []
        self.closed = threading.Event()
        self.start()

    def run(self) -> None:
        try:
            while True:
                raw = self.ws.receive(timeout=0.5)
                if raw is not None:
                    self.messages.append(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()

    def types(self) -> list[str]:
        return [m.get("type") for m in self.messages]

    def close(self) -> None:
        try:
            self.ws.close()
        except ConnectionClosed:  # the server closed it first
            pass
        self.join(10)


class Submitter(threading.Thread):
    """Posts one download after another while the master is away; keeps what the API said to each."""

    def __init__(self, stack: Stack, urls: list[str]) -> None:
        super().__init__(name="submitter", daemon=True)
        self.stack, self.urls = stack, urls
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.stop_event = threading.Event()
        self.start()

    def run(self) -> None:
        for url in self.urls:
            # Asked to stop once the new master is up: still post until one answer is an acknowledgement (on a
            # loaded machine every post during the outage may have waited out its retries and got a 503).
            if self.stop_event.is_set() and self.acknowledged():
                return
            try:
                resp = self.stack.api("POST", "/downloads", json={"url": url, "folder": "loras"})
                self.answers.append((resp.status_code, resp.json()))
            except requests.RequestException as exc:  # not acknowledged: the test only holds acknowledged ones
                self.answers.append((0, {"error": str(exc)}))
            self.stop_event.wait(0.25)

    def acknowledged(self) -> list[str]:
        return [body["id"] for status, body in self.answers if status == 202]


def _model(upstream: FakeUpstream, n: int, data: bytes) -> str:
    upstream.add_civitai_model(100 + n, f"Model {n}", "LORA", versions=[
        {"id": 200 + n, "name": "v1", "baseModel": "SDXL 1.0",
         "files": [{"id": 300 + n, "name": f"m{n:02d}.safetensors", "data": data}]}])
    return f"{upstream.url}/models/{100 + n}"


@pytest.fixture
def stack(tmp_path: Path, upstream: FakeUpstream) -> Iterator[Stack]:
    s = Stack(tmp_path, upstream)
    try:
        yield s.start()
    finally:
        s.stop()


def test_master_killed_mid_downloads_and_scan(stack: Stack, upstream: FakeUpstream) -> None:
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    # Given: models upstream (throttled), a folder of checkpoints to scan, and a live WebSocket
    blobs = {n: safetensors_bytes(SIZE, seed=n) for n in range(DOWNLOADS)}
    blobs.update({n: safetensors_bytes(64 * 1024, seed=n) for n in range(DOWNLOADS, DOWNLOADS + 12)})
    urls = {n: _model(upstream, n, data) for n, data in blobs.items()}
    for n in range(DOWNLOADS):
        upstream.fault(f"civitai:file:{300 + n}", "slow", bytes_per_s=RATE, times=None)
    ckpt = stack.store / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    scanned = {f"c{i:02d}.safetensors": safetensors_bytes(1_000_000, seed=100 + i) for i in range(SCAN_FILES)}
    for name, data in scanned.items():
        (ckpt / name).write_bytes(data)
    ws_url = f"ws://127.0.0.1:{stack.port}/api/v1/ws"
    before = Watcher(ws_url)
    wait_for(lambda: "snapshot" in before.types(), what="the snapshot")
    # And a batch of downloads in flight on both hosts, and a full scan running
    ids = {}
    for n in range(DOWNLOADS):
        resp = stack.api("POST", "/downloads", json={"url": urls[n], "folder": "loras"})
        assert resp.status_code == 202, resp.text
        ids[n] = resp.json()["id"]
    wait_for(lambda: all((stack.task(i)["progress"]["done"] or 0) > 0 for i in ids.values()), timeout=30,
             interval=0.1, what="every download to be transferring")
    resp = stack.api("POST", "/scans", json={"folder": "checkpoints", "mode": "full"})
    assert resp.status_code == 202, resp.text
    scan_id = resp.json()["id"]
    wait_for(lambda: stack.task(scan_id)["state"] == "running", timeout=30, interval=0.05, what="the scan to run")
    assert {stack.task(i)["host"] for i in ids.values()} == {"alpha", "beta"}
    old = stack.cluster.master()

    # When the master is SIGKILLed, with more downloads being posted all through the failover
    killed = time.monotonic()
    timings["setup_s"] = killed - t0
    old.kill()
    submitter = Submitter(stack, [urls[n] for n in range(DOWNLOADS, DOWNLOADS + 12)])
    new = stack.cluster.wait_failover(old)
    timings["promoted_after_s"] = time.monotonic() - killed
    old.start()  # it comes back as a master of stale data; Sentinel turns it into a replica of the new one
    # the submitter goes on until the new master acknowledged one (however slow the machine made the failover)
    wait_for(lambda: submitter.acknowledged() or not submitter.is_alive(), timeout=60, interval=0.1,
             what="a download acknowledged after the failover")
    submitter.stop_event.set()
    submitter.join(30)
    extra = submitter.acknowledged()
    assert extra, f"no download was acknowledged around the failover: {submitter.answers}"

    # Then the pre-kill WebSocket was told to resync, or closed
    wait_for(lambda: before.closed.is_set() or "resync" in before.types(), timeout=30,
             what="the old socket to resync or close")
    before.close()
    # And every acknowledged task still exists and succeeds; interrupted ones resumed on a new attempt
    all_ids = [*ids.values(), scan_id, *extra]
    finals = {i: wait_for(lambda i=i: (t := stack.task(i))["state"] in FINAL and t, timeout=90, interval=0.3,
                          what=f"task {i} to finish") for i in all_ids}
    timings["all_final_after_s"] = time.monotonic() - killed
    assert {i: t["state"] for i, t in finals.items()} == {i: "succeeded" for i in all_ids}, \
        {i: t["error"] for i, t in finals.items() if t["error"]}
    assert max(t["attempt"] for t in finals.values()) >= 2, "no task was interrupted and resumed"
    # And so does every task the store knows of, including any a 503 answer said "may not have been applied"
    def every_task() -> list[dict[str, Any]]:
        return stack.api("GET", "/tasks", params={"limit": 200}).json()["items"]

    known = wait_for(lambda: (ts := every_task()) and all(t["state"] in FINAL for t in ts) and ts, timeout=60,
                     interval=0.3, what="every task to finish")
    assert {t["state"] for t in known} == {"succeeded"}, [(t["id"], t["state"], t["error"]) for t in known]
    # And every file is whole, and there once: nothing duplicated, no partial left
    loras = stack.store / "loras"
    names = sorted(p.name for p in loras.iterdir() if p.name.endswith((".safetensors", ".part")))
    acknowledged = {ids[n]: n for n in ids}
    for task_id in extra:
        url = finals[task_id]["params"]["url"]
        acknowledged[task_id] = next(n for n, u in urls.items() if u == url)
    assert {f"m{n:02d}.safetensors" for n in acknowledged.values()} <= set(names)
    assert set(names) <= {f"m{n:02d}.safetensors" for n in blobs}, names
    for name in names:
        assert (loras / name).read_bytes() == blobs[int(name[1:3])], f"{name} differs from upstream"
    for task_id, n in acknowledged.items():
        assert finals[task_id]["result"]["hashes"]["SHA256"] == hashlib.sha256(blobs[n]).hexdigest().upper()
    # And the scan indexed and hashed every checkpoint (a resumed scan takes its own root lock back)
    assert finals[scan_id]["result"]["busy_roots"] == []
    listed = stack.api("GET", "/models", params={"folder": "checkpoints", "limit": 500}).json()
    assert {m["relpath"]: (m["sha256"] or "").lower() for m in listed["items"]} == \
        {name: hashlib.sha256(data).hexdigest() for name, data in scanned.items()}

    # And a WebSocket connected now gets a snapshot, then live events
    after = Watcher(ws_url)
    try:
        wait_for(lambda: "snapshot" in after.types(), what="a snapshot after the failover")
        # When the old master is back as a replica of the new one
        stack.cluster.wait_replica_of(old, new)
        timings["old_master_replica_after_s"] = time.monotonic() - killed
        # Then one more download goes through, its record on the replica by the time the API answers
        last = _model(upstream, 99, safetensors_bytes(256 * 1024, seed=99))
        resp = stack.api("POST", "/downloads", json={"url": last, "folder": "loras"})
        assert resp.status_code == 202, resp.text
        last_id = resp.json()["id"]
        assert old.client().exists(keys.task(last_id)), "the acknowledged record is not on the replica"
        done = wait_for(lambda: (t := stack.task(last_id))["state"] in FINAL and t, timeout=30, interval=0.2,
                        what="the last download")
        assert done["state"] == "succeeded", done["error"]
        wait_for(lambda: any(m.get("task_id") == last_id and m.get("task", {}).get("state") == "succeeded"
                             for m in after.messages), timeout=15, what="live events on the new socket")
    finally:
        after.close()
    assert stack.web.alive() and stack.beat.alive()
    timings["total_s"] = time.monotonic() - t0
    print("failover timings:", json.dumps({k: round(v, 2) for k, v in timings.items()}),
          "attempts:", {t["kind"] + ":" + i[-4:]: t["attempt"] for i, t in finals.items()},
          "answers during the failover:", [status for status, _ in submitter.answers])


def test_a_planned_master_switch_resyncs_the_relay(tmp_path: Path) -> None:
    """``SENTINEL FAILOVER`` moves the master without killing it: the relay must notice it is subscribed to the
    demoted one (which hears nothing published on the new master), tell clients to resync, and follow."""
    from werkzeug.serving import make_server

    from shared.config import load_settings
    from shared.redis_client import on_current_master
    from web import create_app
    cluster = SentinelCluster(tmp_path / "redis").start()
    (tmp_path / "var").mkdir()
    settings = load_settings({"DEPOT_REDIS_URL": cluster.url, "DEPOT_STORE": str(tmp_path / "models"),
                              "DEPOT_VAR_DIR": str(tmp_path / "var")})
    app = create_app(settings)
    ctx = app.extensions["depot"]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"ws://127.0.0.1:{server.server_port}/api/v1/ws"
    watchers: list[Watcher] = []
    probe = client_for(cluster.url)
    try:
        # Given a live client, and a connection held on the current master
        watchers.append(Watcher(url))
        wait_for(lambda: "snapshot" in watchers[0].types(), what="the snapshot")
        task, _ = ctx.services.records.create("verify", {}, queue="verify")
        wait_for(lambda: any(m.get("task_id") == task["id"] for m in watchers[0].messages), what="a live event")
        held = probe.connection_pool.get_connection()
        held.send_command("PING") or held.read_response()
        assert on_current_master(probe, held)
        old = cluster.master()
        # When the sentinels are asked to switch masters
        cluster.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", "depot")
        cluster.wait_failover(old)
        # Then the held connection is known to be on the old master, and the client is told to resync or closed
        assert not on_current_master(probe, held)
        probe.connection_pool.release(held)
        wait_for(lambda: watchers[0].closed.is_set() or "resync" in watchers[0].types(), timeout=20,
                 what="the client to be resynced")
        assert ctx.relay.stats["reconnects"] >= 1
        # And a reconnected client hears events written on the new master
        watchers.append(wait_for(lambda: Watcher(url), timeout=20, what="a reconnect"))
        wait_for(lambda: "snapshot" in watchers[1].types(), what="a snapshot after the switch")
        task, _ = wait_for(lambda: ctx.services.records.create("verify", {}, queue="verify"), timeout=20,
                           what="a write on the new master")
        wait_for(lambda: any(m.get("task_id") == task["id"] for m in watchers[1].messages), timeout=10,
                 what="a live event from the new master")
    finally:
        for w in watchers:
            w.close()
        server.shutdown()
        thread.join(10)
        relay = ctx.relay
        if relay is not None:
            relay.stop()
        probe.close()
        ctx.services.redis.close()
        cluster.stop()


def test_flower_reads_workers_and_queues_through_sentinel(tmp_path: Path) -> None:
    """``depot flower`` takes the same Celery config: its broker view (queue lengths) finds the master through
    the sentinels, and it lists the workers."""
    cluster = SentinelCluster(tmp_path / "redis").start()
    (tmp_path / "var").mkdir()
    port = free_port()
    env = base_env({"DEPOT_REDIS_URL": cluster.url, "DEPOT_STORE": str(tmp_path / "models"),
                    "DEPOT_VAR_DIR": str(tmp_path / "var"), "DEPOT_FLOWER_PORT": str(port),
                    "DEPOT_FLOWER_AUTH": "ops:s3cret", "DEPOT_HOST": "fl"})
    flower = DepotProcess(["flower"], env, tmp_path / "flower.log")
    worker = WorkerProcess(env, host="fl", queues=["maintenance", "downloads"], log_path=tmp_path / "worker.log")
    client = client_for(cluster.url)
    try:
        worker.start(client, timeout=60)
        flower.start()
        base, auth = f"http://127.0.0.1:{port}/api", ("ops", "s3cret")
        # refresh=1: Flower asks the workers now (a broadcast through the broker) instead of waiting for events
        workers = wait_for(lambda: requests.get(f"{base}/workers", params={"refresh": 1}, auth=auth,
                                                timeout=10).json(), timeout=60, interval=0.5,
                           what="flower to list the worker")
        assert list(workers) == ["w@fl"]

        def queue_names() -> set[str] | None:
            # Flower keeps the last inspect answer; one that missed its timeout has no active_queues, so ask again
            requests.get(f"{base}/workers", params={"refresh": 1}, auth=auth, timeout=10)
            lengths = requests.get(f"{base}/queues/length", auth=auth, timeout=10)
            assert lengths.status_code == 200, flower.log()[-2000:]
            names = {q["name"] for q in lengths.json()["active_queues"]}
            # Until Flower has the worker's active_queues it lists only the default queue
            return names if {"downloads", "maintenance"} <= names else None

        wait_for(queue_names, timeout=60, interval=0.5, what="flower to list both queues with their lengths")
    finally:
        worker.kill()
        flower.stop()
        client.close()
        cluster.stop()
