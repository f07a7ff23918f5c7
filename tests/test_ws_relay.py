"""The WebSocket relay over real HTTP on loopback (werkzeug threaded server) with a real redis-server: snapshot
first, strictly increasing seq, ``since`` replay, slow clients dropped with a resync without slowing others,
Redis restart → resync and live events resume, the token, bad parameters, and no leaked handler threads."""
from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any, Iterator

import pytest
from simple_websocket import ConnectionClosed
from simple_websocket import ConnectionError as HandshakeRefused
from werkzeug.serving import make_server

from shared import keys
from tests.support import free_port, wait_for
from cli.wsclient import Client  # delivers a first message that came with the handshake answer


class Live:
    """The app served over real HTTP in a background thread."""

    def __init__(self, application: Any) -> None:
        self.app = application
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, application, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ws_url(self, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws" + (f"?{query}" if query else "")

    @property
    def ctx(self) -> Any:
        return self.app.extensions["depot"]

    def stop(self) -> None:
        self.server.shutdown()
        relay = self.ctx.relay
        if relay is not None:
            relay.stop()


def _serve(settings: Any, **overrides: Any) -> Live:
    from web import create_app
    return Live(create_app(settings.replace(**overrides) if overrides else settings))


@pytest.fixture
def live(settings: Any) -> Iterator[Live]:
    server = _serve(settings)
    yield server
    server.stop()


def recv(ws: Client, timeout: float = 10.0) -> dict[str, Any]:
    raw = ws.receive(timeout=timeout)
    assert raw is not None, "no message within timeout"
    return json.loads(raw)


def recv_until(ws: Client, pred: Any, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Messages up to and including the first that satisfies ``pred``."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = ws.receive(timeout=max(0.05, deadline - time.monotonic()))
        if raw is None:
            break
        out.append(json.loads(raw))
        if pred(out[-1]):
            return out
    raise AssertionError(f"condition not met; got {out[-5:]!r}")


def _run_task(records: Any, task_id: str, steps: int) -> None:
    claim = records.claim(task_id, host="testhost", worker="w@testhost")
    for i in range(1, steps + 1):
        records.progress(task_id, claim.attempt, {"done": i, "total": steps, "rate": 1})
    records.finish(task_id, claim.attempt, "succeeded", result={"ok": True})


def test_snapshot_first_then_events_with_strictly_increasing_seq(live: Live) -> None:
    # Given a task that already exists
    records = live.ctx.services.records
    before, _ = records.create("download", {"url": "http://x/a"}, queue="downloads")
    # When a client connects
    ws = Client.connect(live.ws_url())
    try:
        # Then the first message is the snapshot and it carries the task
        first = recv(ws)
        assert first["type"] == "snapshot"
        assert before["id"] in [t["id"] for t in first["tasks"]]
        # And when the task runs, every event arrives in order with strictly increasing seq
        _run_task(records, before["id"], steps=15)
        events = recv_until(ws, lambda m: m.get("task", {}).get("state") == "succeeded")
        seqs = [e["seq"] for e in events]
        assert all(b > a for a, b in zip(seqs, seqs[1:])), seqs
        assert seqs[0] == before["seq"] + 1  # nothing the snapshot already covered, nothing missed
        assert seqs[-1] == records.get(before["id"])["seq"]
        assert [e["task"]["progress"]["done"] for e in events if e["type"] == "progress"] == list(range(1, 16))
    finally:
        ws.close()


def test_since_replays_what_a_reconnecting_client_missed(live: Live) -> None:
    records = live.ctx.services.records
    task, _ = records.create("scan", {}, queue="scan")
    claim = records.claim(task["id"], host="testhost", worker="w@testhost")
    # Given a client watching one task that saw some progress
    ws = Client.connect(live.ws_url(f"task={task['id']}"))
    snap = recv(ws)
    assert [t["id"] for t in snap["tasks"]] == [task["id"]]
    records.progress(task["id"], claim.attempt, {"done": 1, "total": 10})
    last_seen = recv(ws)["seq"]
    ws.close()
    # When it was away, more happened
    for i in range(2, 6):
        records.progress(task["id"], claim.attempt, {"done": i, "total": 10})
    # Then reconnecting with since=<last seen> replays exactly the missed events after the snapshot
    ws = Client.connect(live.ws_url(f"task={task['id']}&since={last_seen}"))
    try:
        assert recv(ws)["type"] == "snapshot"
        replayed = [recv(ws) for _ in range(4)]
        assert [e["seq"] for e in replayed] == list(range(last_seen + 1, last_seen + 5))
        assert [e["task"]["progress"]["done"] for e in replayed] == [2, 3, 4, 5]
        # And live events follow without a gap
        records.progress(task["id"], claim.attempt, {"done": 6, "total": 10})
        assert recv(ws)["seq"] == last_seen + 5
    finally:
        ws.close()


def test_since_zero_replays_every_stored_event_of_the_task(live: Live) -> None:
    # Given a task that has run to its end while nobody watched
    records = live.ctx.services.records
    task, _ = records.create("scan", {}, queue="scan")
    _run_task(records, task["id"], steps=3)
    stored = records.events(task["id"])
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1)) and len(stored) >= 5
    # When a client asks for the task's events after seq 0 (before the first)
    ws = Client.connect(live.ws_url(f"task={task['id']}&since=0"))
    try:
        # Then the snapshot is followed by every stored event, the queued one first, in order
        assert recv(ws)["type"] == "snapshot"
        replayed = [recv(ws) for _ in stored]
        assert replayed == stored
        assert replayed[0]["task"]["state"] == "queued" and replayed[-1]["task"]["state"] == "succeeded"
    finally:
        ws.close()


def _raw_slow_client(port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then does not read (tiny receive buffer)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /api/v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert b" 101 " in head.split(b"\r\n")[0], head
    return s


def _read_to_eof(s: socket.socket, timeout: float = 30.0) -> bytes:
    s.settimeout(timeout)
    data = b""
    while True:
        chunk = s.recv(1 << 16)
        if not chunk:
            return data
        data += chunk


def test_slow_client_is_dropped_with_resync_without_slowing_others(settings: Any, redis: Any) -> None:
    live = _serve(settings, ws_queue_max=20)
    try:
        # Given a client that keeps up and one that stopped reading
        fast = Client.connect(live.ws_url())
        assert recv(fast)["type"] == "snapshot"
        slow = _raw_slow_client(live.port)
        wait_for(lambda: live.ctx.relay.client_count() == 2, what="both clients registered")
        # When 200 large events are published (far more than socket buffers plus the slow client's queue)
        pad = "x" * 48_000
        for seq in range(1, 201):
            redis.publish(keys.EVENTS_CHANNEL, json.dumps({"seq": seq, "task_id": "feed", "type": "log",
                                                           "task": {"id": "feed", "seq": seq, "pad": pad}}))
            time.sleep(0.002)
        # Then the fast client gets every event, in order
        got = [recv(fast)["seq"] for _ in range(200)]
        assert got == list(range(1, 201))
        # And the slow one was dropped by the relay; once it reads, its last message is a resync, then close
        relay = live.ctx.relay
        assert relay.stats["dropped_clients"] == 1
        data = _read_to_eof(slow)
        text_frames = data.split(b'{"seq":')
        assert b'{"type":"resync"}' in text_frames[-1]
        slow.close()
        # And the fast client is still live
        redis.publish(keys.EVENTS_CHANNEL, json.dumps({"seq": 201, "task_id": "feed", "type": "log",
                                                       "task": {"id": "feed", "seq": 201}}))
        assert recv(fast)["seq"] == 201
        fast.close()
    finally:
        live.stop()


def test_redis_restart_resyncs_clients_and_live_events_resume(live: Live, redis_server: Any) -> None:
    records = live.ctx.services.records
    ws = Client.connect(live.ws_url())
    assert recv(ws)["type"] == "snapshot"
    # When Redis restarts
    redis_server.restart(down_for=0.5)
    # Then the client is told to resync (and the socket closes)
    assert recv(ws, timeout=15)["type"] == "resync"
    with pytest.raises(ConnectionClosed):
        while True:
            if ws.receive(timeout=5) is None:
                raise AssertionError("socket stayed open after resync")
    # And a reconnecting client gets a fresh snapshot and live events again
    ws = wait_for(lambda: Client.connect(live.ws_url()), timeout=15, what="reconnect after Redis restart")
    try:
        assert recv(ws)["type"] == "snapshot"
        task, _ = records.create("verify", {}, queue="verify")
        event = recv(ws)
        assert event["task_id"] == task["id"] and event["task"]["state"] == "queued"
        assert live.ctx.relay.stats["reconnects"] >= 1
    finally:
        ws.close()


def test_token_is_required_on_the_socket_and_accepted_as_query(settings: Any) -> None:
    live = _serve(settings, api_token="s3cret")
    try:
        with pytest.raises(HandshakeRefused) as refused:
            Client.connect(live.ws_url())
        assert refused.value.status_code == 401
        ws = Client.connect(live.ws_url("token=s3cret"))
        assert recv(ws)["type"] == "snapshot"
        ws.close()
    finally:
        live.stop()


def test_bad_parameters_get_json_errors_before_the_handshake(client: Any) -> None:
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade"}
    r = client.get("/api/v1/ws?task=0123abcd", headers=upgrade)
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    r = client.get("/api/v1/ws?since=abc&task=0123abcd", headers=upgrade)
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_request"
    for since in ("3", "0"):
        r = client.get(f"/api/v1/ws?since={since}", headers=upgrade)
        assert r.status_code == 400 and "task" in r.json["error"]["message"]
    r = client.get("/api/v1/ws")
    assert r.status_code == 400 and "WebSocket" in r.json["error"]["message"]


def test_handlers_exit_when_clients_vanish(live: Live) -> None:
    ws = Client.connect(live.ws_url())
    recv(ws)
    ws.close()  # warm up: the relay thread now exists
    relay = live.ctx.relay
    wait_for(lambda: relay.client_count() == 0, what="first client gone")
    baseline = threading.active_count()
    # Given five clients whose sockets simply disappear
    socks = [_raw_slow_client(live.port) for _ in range(5)]
    wait_for(lambda: relay.client_count() == 5, what="five clients")
    for s in socks:
        s.close()
    # Then every handler unregisters and its threads end
    wait_for(lambda: relay.client_count() == 0, timeout=10, what="handlers to unregister")
    wait_for(lambda: threading.active_count() <= baseline, timeout=10, what="threads to end")
