"""The WebSocket's frames on the wire, over real HTTP on loopback with a real redis-server: a client that
negotiates permessage-deflate (as every browser does) and one that does not get the same messages at the same
time, and a client that stops reading is cut off after the bounded send time even with keep-alive pings off."""
from __future__ import annotations

import json
import socket
import time
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

from cli.wsclient import Client
from shared import keys
from tests.support import wait_for
from tests.test_ws_relay import (
    Live,
    _raw_slow_client,
    _run_task,
    _serve,
    live,  # noqa: F401 - fixture
    recv,
)


class DeflateClient:
    """A wsproto client offering permessage-deflate on a plain socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.conn.send(Request(host="127.0.0.1", target="/api/v1/ws",
                                                 extensions=[PerMessageDeflate()])))
        self.accepted: AcceptConnection | None = None
        self.messages: list[dict[str, Any]] = []
        self._parts: list[str] = []
        while self.accepted is None:
            self._pump()

    def _pump(self) -> None:
        data = self.sock.recv(1 << 16)
        assert data, "server closed the socket"
        self.conn.receive_data(data)
        for event in self.conn.events():
            if isinstance(event, AcceptConnection):
                self.accepted = event
            elif isinstance(event, TextMessage):
                self._parts.append(event.data)
                if event.message_finished:
                    self.messages.append(json.loads("".join(self._parts)))
                    self._parts = []
            elif isinstance(event, CloseConnection):
                raise AssertionError(f"server closed: {event.code} {event.reason}")

    def until(self, pred: Any, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not any(pred(m) for m in self.messages):
            assert time.monotonic() < deadline, f"condition not met; got {self.messages[-5:]!r}"
            self._pump()
        return self.messages

    def close(self) -> None:
        self.sock.close()


def test_deflate_and_plain_clients_get_the_same_events(live: Live) -> None:
    records = live.ctx.services.records
    task, _ = records.create("download", {"url": "http://x/a"}, queue="downloads")
    # Given a client that negotiated permessage-deflate and one that offered no extension
    deflated = DeflateClient(live.port)
    plain = Client.connect(live.ws_url())
    try:
        assert deflated.accepted is not None and deflated.accepted.extensions, "deflate was not negotiated"
        assert deflated.until(lambda m: m["type"] == "snapshot")[0]["type"] == "snapshot"
        assert recv(plain)["type"] == "snapshot"
        # When the task runs
        _run_task(records, task["id"], steps=12)

        def done(m: dict[str, Any]) -> bool:
            return m.get("task", {}).get("state") == "succeeded"

        # Then both receive every event, in order, with the same content
        got_deflated = [m for m in deflated.until(done) if m.get("task_id") == task["id"]]
        got_plain = []
        while not got_plain or not done(got_plain[-1]):
            got_plain.append(recv(plain))
        assert got_deflated == got_plain
        seqs = [m["seq"] for m in got_plain]
        assert seqs == list(range(task["seq"] + 1, records.get(task["id"])["seq"] + 1))
        assert [m["task"]["progress"]["done"] for m in got_plain if m["type"] == "progress"] == list(range(1, 13))
    finally:
        deflated.close()
        plain.close()


def test_a_client_that_stops_reading_is_cut_off_with_pings_off(settings: Any, redis: Any,
                                                               monkeypatch: Any) -> None:
    # Given keep-alive pings off, a queue large enough that the relay never drops the client, and a short
    # send bound
    monkeypatch.setattr("web.ws.SEND_TIMEOUT_S", 1.0)
    server = _serve(settings, ws_ping_s=0.0, ws_queue_max=100_000)
    try:
        slow = _raw_slow_client(server.port)
        relay = wait_for(lambda: server.ctx.relay, what="the relay")
        wait_for(lambda: relay.client_count() == 1, what="the client registered")
        # When far more is published than the socket buffers hold, and the client reads nothing
        pad = "x" * 48_000
        for seq in range(1, 301):
            redis.publish(keys.EVENTS_CHANNEL, json.dumps({"seq": seq, "task_id": "feed", "type": "log",
                                                           "task": {"id": "feed", "seq": seq, "pad": pad}}))
        # Then its handler gives up on the blocked write and leaves the relay, although the relay never dropped it
        wait_for(lambda: relay.client_count() == 0, timeout=30, what="the stuck handler to end")
        assert relay.stats["dropped_clients"] == 0
        # And the socket is closed: the client reads what was written, then the end
        slow.settimeout(10)
        while slow.recv(1 << 16):
            pass
        slow.close()
    finally:
        server.stop()
