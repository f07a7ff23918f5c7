"""The WebSocket relay over real HTTP on loopback (werkzeug threaded server) with a real redis-server: snapshot
first, strictly increasing seq, ``since`` replay, slow clients dropped with a resync without slowing others,
Redis restart → resync and live events resume, the token, bad parameters, and no leaked handler threads. Every
socket a test opens is closed by the ``sockets`` fixture, and stopping a server ends its sessions."""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from simple_websocket import ConnectionClosed
from simple_websocket import ConnectionError as HandshakeRefused
from werkzeug.serving import make_server

from cli.wsclient import Client
from shared import keys
from tests.support import free_port, wait_for


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
        """Stop accepting, end every session (the relay resyncs its clients) and close the listening socket."""
        self.server.shutdown()
        relay = self.ctx.relay
        if relay is not None:
            relay.stop()
        self.server.server_close()


def _serve(settings: Any, **overrides: Any) -> Live:
    from web import create_app
    return Live(create_app(settings.replace(**overrides) if overrides else settings))


@pytest.fixture
def live(settings: Any) -> Iterator[Live]:
    server = _serve(settings)
    yield server
    server.stop()


class Sockets:
    """The clients a test opens, all closed at its end whatever happened (an open client's reader thread is not
    a daemon: one left open keeps the interpreter from exiting)."""

    def __init__(self) -> None:
        self.opened: list[Any] = []

    def ws(self, url: str) -> Client:
        client = Client.connect(url)
        self.opened.append(client)
        return client

    def slow(self, port: int) -> socket.socket:
        s = _raw_slow_client(port)
        self.opened.append(s)
        return s

    def close(self) -> None:
        for s in self.opened:
            try:
                s.close()
            except (ConnectionClosed, OSError):
                pass  # the server closed it first


@pytest.fixture
def sockets() -> Iterator[Sockets]:
    opened = Sockets()
    yield opened
    opened.close()


def recv(ws: Client, timeout: float = 30.0) -> dict[str, Any]:
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


def test_snapshot_first_then_events_with_strictly_increasing_seq(live: Live, sockets: Sockets) -> None:
    # Given a task that already exists
    records = live.ctx.services.records
    before, _ = records.create("download", {"url": "http://x/a"}, queue="downloads")
    # When a client connects
    ws = sockets.ws(live.ws_url())
    # Then the first message is the snapshot and it carries the task
    first = recv(ws)
    assert first["type"] == "snapshot"
    assert before["id"] in [t["id"] for t in first["tasks"]]
    # And when the task runs, every event arrives in order with strictly increasing seq
    _run_task(records, before["id"], steps=15)
    events = recv_until(ws, lambda m: m.get("task", {}).get("state") == "succeeded")
    seqs = [e["seq"] for e in events]
    assert all(b > a for a, b in zip(seqs, seqs[1:], strict=False)), seqs
    assert seqs[0] == before["seq"] + 1  # nothing the snapshot already covered, nothing missed
    assert seqs[-1] == records.get(before["id"])["seq"]
    assert [e["task"]["progress"]["done"] for e in events if e["type"] == "progress"] == list(range(1, 16))


def test_since_replays_what_a_reconnecting_client_missed(live: Live, sockets: Sockets) -> None:
    records = live.ctx.services.records
    task, _ = records.create("scan", {}, queue="scan")
    claim = records.claim(task["id"], host="testhost", worker="w@testhost")
    # Given a client watching one task that saw some progress
    ws = sockets.ws(live.ws_url(f"task={task['id']}"))
    snap = recv(ws)
    assert [t["id"] for t in snap["tasks"]] == [task["id"]]
    records.progress(task["id"], claim.attempt, {"done": 1, "total": 10})
    last_seen = recv(ws)["seq"]
    ws.close()
    # When it was away, more happened
    for i in range(2, 6):
        records.progress(task["id"], claim.attempt, {"done": i, "total": 10})
    # Then reconnecting with since=<last seen> replays exactly the missed events after the snapshot
    ws = sockets.ws(live.ws_url(f"task={task['id']}&since={last_seen}"))
    assert recv(ws)["type"] == "snapshot"
    replayed = [recv(ws) for _ in range(4)]
    assert [e["seq"] for e in replayed] == list(range(last_seen + 1, last_seen + 5))
    assert [e["task"]["progress"]["done"] for e in replayed] == [2, 3, 4, 5]
    # And live events follow without a gap
    records.progress(task["id"], claim.attempt, {"done": 6, "total": 10})
    assert recv(ws)["seq"] == last_seen + 5


def test_since_zero_replays_every_stored_event_of_the_task(live: Live, sockets: Sockets) -> None:
    # Given a task that has run to its end while nobody watched
    records = live.ctx.services.records
    task, _ = records.create("scan", {}, queue="scan")
    _run_task(records, task["id"], steps=3)
    stored = records.events(task["id"])
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1)) and len(stored) >= 5
    # When a client asks for the task's events after seq 0 (before the first)
    ws = sockets.ws(live.ws_url(f"task={task['id']}&since=0"))
    # Then the snapshot is followed by every stored event, the queued one first, in order
    assert recv(ws)["type"] == "snapshot"
    replayed = [recv(ws) for _ in stored]
    assert replayed == stored
    assert replayed[0]["task"]["state"] == "queued" and replayed[-1]["task"]["state"] == "succeeded"


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


def _publish(redis: Any, seq: int, pad: str = "") -> None:
    redis.publish(keys.EVENTS_CHANNEL, json.dumps({"seq": seq, "task_id": "feed", "type": "log",
                                                   "task": {"id": "feed", "seq": seq, "pad": pad}}))


def test_slow_client_is_dropped_with_resync_without_slowing_others(settings: Any, redis: Any,
                                                                   sockets: Sockets) -> None:
    live = _serve(settings, ws_queue_max=20)
    try:
        # Given a client that keeps up and one that stopped reading
        fast = sockets.ws(live.ws_url())
        assert recv(fast)["type"] == "snapshot"
        slow = sockets.slow(live.port)
        relay = live.ctx.relay
        wait_for(lambda: relay.client_count() == 2, what="both clients registered")
        # When large events are published until the relay gives up on the slow client (its socket buffers and
        # its queue of 20 fill up), with the fast client never more than 10 events behind: however loaded the
        # machine, the fast one can keep up, and only the one that stopped reading falls behind
        pad = "x" * 48_000
        sent, got = 0, []
        while relay.stats["dropped_clients"] == 0:
            assert sent < 2000, "the relay never dropped the client that stopped reading"
            sent += 1
            _publish(redis, sent, pad)
            while sent - len(got) > 10:
                got.append(recv(fast)["seq"])
        # Then the slow one was dropped; once it reads, its last message is a resync, then the socket closes
        data = _read_to_eof(slow)
        assert b'{"type":"resync"}' in data.split(b'{"seq":')[-1]
        # And the fast client got every event, in order, and is still live
        _publish(redis, sent + 1)
        got += [recv(fast)["seq"] for _ in range(sent + 1 - len(got))]
        assert got == list(range(1, sent + 2))
        assert relay.stats["dropped_clients"] == 1
    finally:
        live.stop()


def test_redis_restart_resyncs_clients_and_live_events_resume(live: Live, redis_server: Any,
                                                              sockets: Sockets) -> None:
    records = live.ctx.services.records
    ws = sockets.ws(live.ws_url())
    assert recv(ws)["type"] == "snapshot"
    # When Redis restarts
    redis_server.restart(down_for=0.5)
    # Then the client is told to resync (and the socket closes)
    assert recv(ws)["type"] == "resync"
    with pytest.raises(ConnectionClosed):
        while True:
            if ws.receive(timeout=5) is None:
                raise AssertionError("socket stayed open after resync")
    # And a reconnecting client gets a fresh snapshot and live events again
    ws = wait_for(lambda: sockets.ws(live.ws_url()), timeout=15, what="reconnect after Redis restart")
    assert recv(ws)["type"] == "snapshot"
    task, _ = records.create("verify", {}, queue="verify")
    event = recv(ws)
    assert event["task_id"] == task["id"] and event["task"]["state"] == "queued"
    assert live.ctx.relay.stats["reconnects"] >= 1


def test_token_is_required_on_the_socket_and_accepted_as_query(settings: Any, sockets: Sockets) -> None:
    live = _serve(settings, api_token="s3cret")
    try:
        with pytest.raises(HandshakeRefused) as refused:
            sockets.ws(live.ws_url())
        assert refused.value.status_code == 401
        ws = sockets.ws(live.ws_url("token=s3cret"))
        assert recv(ws)["type"] == "snapshot"
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


def test_handlers_exit_when_clients_vanish(live: Live, sockets: Sockets) -> None:
    ws = sockets.ws(live.ws_url())
    recv(ws)
    ws.close()  # warm up: the relay thread now exists
    relay = live.ctx.relay
    wait_for(lambda: relay.client_count() == 0, what="first client gone")
    baseline = threading.active_count()
    # Given five clients whose sockets simply disappear
    socks = [sockets.slow(live.port) for _ in range(5)]
    wait_for(lambda: relay.client_count() == 5, what="five clients")
    for s in socks:
        s.close()
    # Then every handler unregisters and its threads end
    wait_for(lambda: relay.client_count() == 0, timeout=10, what="handlers to unregister")
    wait_for(lambda: threading.active_count() <= baseline, timeout=10, what="threads to end")


def test_stopping_the_server_ends_every_session(settings: Any, sockets: Sockets) -> None:
    live = _serve(settings)
    # Given a connected client
    ws = sockets.ws(live.ws_url())
    assert recv(ws)["type"] == "snapshot"
    # When the server stops
    live.stop()
    # Then its session ends with a resync, and the socket closes
    assert recv(ws)["type"] == "resync"
    with pytest.raises(ConnectionClosed):
        ws.receive(timeout=10)
