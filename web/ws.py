"""``WS /api/v1/ws``: a snapshot of the tasks, then their live events from the per-process relay.

A connection registers with the relay *before* it reads the snapshot, so nothing published in between is lost;
events the snapshot already covers (``seq`` not above the task's snapshot ``seq``) are skipped, so each task's
events arrive with strictly increasing ``seq``. ``task=<id>`` narrows everything to one task and, with
``since=<seq>``, replays that task's stored events after ``seq`` before the live ones. A client that falls
behind, or that was connected while Redis was lost, gets ``{"type":"resync"}`` and the socket is closed; it
reconnects and starts from a fresh snapshot. Bad parameters and an unknown task are refused with the usual JSON
error before the WebSocket handshake. The token check is the global one in ``web/auth.py`` (``?token=`` works).
The socket is flask-sock's (simple-websocket, with its keep-alive pings); the frames are encoded by wsproto and
written by this module with a bounded ``sendall``.
"""
from __future__ import annotations

import functools
import json
import logging
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, g, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed, Server
from wsproto import WSConnection
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage
from wsproto.utilities import LocalProtocolError

from shared.errors import InvalidRequest, NotFound
from shared.records import TaskRecords
from web.api.params import int_arg
from web.context import WebContext, depot
from web.relay import RESYNC, Relay, Subscription

log = logging.getLogger(__name__)

#: How many recent tasks the snapshot carries besides every active one.
RECENT_LIMIT = 50
#: Under load, after an event wakes a client's thread, wait this long for more and send them together: with a
#: hundred clients at hundreds of events/s, one wake-up and one write per event per client is what saturates
#: the CPU, and 30 ms more latency is invisible in a UI.
LINGER_S = 0.03
#: A client that accepts no bytes for this long is cut off.
SEND_TIMEOUT_S = 20.0
_ID_CHARS = set("0123456789abcdef")


def init_app(app: Flask) -> None:
    ctx: WebContext = app.extensions["depot"]
    ping = ctx.settings.ws_ping_s
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": ping if ping > 0 else None,
                                                  "max_message_size": 64 * 1024})
    # flask-sock makes the handshake before the handler runs, so whatever can refuse a connection runs in the
    # blueprint's before_request: a refusal is then the API's JSON error, not a socket closed after a 101.
    bp = Blueprint("ws", __name__)
    bp.before_request(_admit)
    bp.teardown_request(_release)
    Sock(app).route("/api/v1/ws", bp=bp)(_serve)
    app.register_blueprint(bp)
    # Werkzeug matches WebSocket handshakes only to rules marked websocket=True; the plain rule gives any other
    # request a clear JSON error instead of a bare "bad request".
    app.add_url_rule("/api/v1/ws", "ws_plain", _not_websocket)


def _not_websocket():  # type: ignore[no-untyped-def]
    raise InvalidRequest("This endpoint speaks WebSocket only: connect with a WebSocket client "
                         "(ws://host/api/v1/ws).")


def snapshot(records: TaskRecords, task_id: str | None) -> list[dict[str, Any]]:
    """Active tasks plus the most recent ones (newest first), or just the named task."""
    if task_id is not None:
        return [records.get(task_id)]
    tasks = {t["id"]: t for t in records.active()}
    recent, _ = records.page(limit=RECENT_LIMIT)
    for t in recent:
        tasks.setdefault(t["id"], t)
    return sorted(tasks.values(), key=lambda t: t["id"], reverse=True)


def _params() -> tuple[str | None, int | None]:
    """The ``task`` filter and ``since`` (replay that task's events after this seq; 0 replays them all)."""
    task_id = request.args.get("task") or None
    if task_id is not None and (len(task_id) > 64 or not set(task_id) <= _ID_CHARS):
        raise NotFound(f"No task with id {task_id!r}.")
    since = int_arg("since", 0) if request.args.get("since") else None
    if since is None:
        return task_id, None
    if task_id is None:
        raise InvalidRequest("'since' replays one task's events: pass 'task=<id>' with it (without a task, the "
                             "snapshot already carries the current state).")
    return task_id, since


@dataclass
class _Admitted:
    """What ``_admit`` prepared for ``_serve``: the relay subscription is taken before the snapshot is read."""

    relay: Relay
    sub: Subscription
    tasks: list[dict[str, Any]]
    task_id: str | None
    since: int | None


def _admit() -> None:
    """Before the handshake: the parameters (400), the task (404), the relay subscription, then the snapshot
    (503 without Redis). The token was checked by ``web/auth.py`` before this."""
    ctx = depot()
    task_id, since = _params()
    if task_id is not None:
        ctx.services.records.get(task_id)  # 404 before the relay is involved
    relay = ctx.start_relay()
    sub = relay.subscribe(task_id)
    try:
        tasks = snapshot(ctx.services.records, task_id)
    except BaseException:
        relay.unsubscribe(sub)
        raise
    g.depot_ws = _Admitted(relay, sub, tasks, task_id, since)


def _release(_exc: BaseException | None) -> None:
    """After the request, however it ended (the handshake itself may fail): the client leaves the relay."""
    admitted: _Admitted | None = g.pop("depot_ws", None)
    if admitted is not None:
        admitted.relay.unsubscribe(admitted.sub)


def _serve(ws: Server) -> None:
    """The flask-sock handler: flask-sock made the handshake, and closes the socket when this returns."""
    admitted: _Admitted = g.depot_ws
    bound_send_time(ws.sock)
    session = Session(ws, admitted.sub, depot().services.records,
                      extensions_offered="HTTP_SEC_WEBSOCKET_EXTENSIONS" in request.environ)
    try:
        session.run(admitted.tasks, admitted.task_id, admitted.since)
    except ConnectionClosed:
        raise
    except Exception:  # noqa: BLE001 - e.g. Redis lost while replaying: the client refetches from a snapshot
        log.exception("event=ws_session_error")
        try:
            session.send(RESYNC)
        except ConnectionClosed:
            pass


def bound_send_time(sock: socket.socket) -> None:
    """Bound every write on ``sock`` to ``SEND_TIMEOUT_S`` without a byte accepted (SO_SNDTIMEO): a client that
    stops reading cannot hold its thread. A socket timeout would do it too, but it also applies to reads, and
    simple-websocket's reader thread blocks in ``recv`` on an idle connection when pings are off."""
    sec = int(SEND_TIMEOUT_S)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                    struct.pack("ll", sec, int((SEND_TIMEOUT_S - sec) * 1e6)))


class Session:
    """One connected client: only this thread sends data on the socket."""

    def __init__(self, ws: Server, sub: Subscription, records: TaskRecords, *, extensions_offered: bool) -> None:
        self.ws, self.sub, self.records = ws, sub, records
        # With permessage-deflate offered (browsers always offer it), frames carry the connection's compression
        # state, so the socket's own wsproto connection (simple-websocket's ``ws``) encodes them; its other user,
        # the reader thread, only sends control frames, which deflate leaves alone. A client that offered no
        # extension has none (RFC 6455 §9.1), and its frames depend on the payload alone.
        self.deflate: WSConnection | None = ws.ws if extensions_offered else None
        self.last: dict[str, int] = {}
        self.last_write = 0.0

    def send(self, message: dict[str, Any]) -> None:
        self.send_texts([json.dumps(message, separators=(",", ":")).encode()])

    def send_texts(self, texts: list[bytes], relayed: bool = False) -> None:
        """Send UTF-8 JSON texts as frames in one ``sendall``: simple-websocket's own ``send`` is a bare
        ``socket.send``, which may write part of a frame and drop the rest. A write that fails or times out
        shuts the socket, so the client never reads on after a partial frame."""
        if not self.ws.connected:
            raise ConnectionClosed(self.ws.close_reason, self.ws.close_message)
        if self.deflate is None:
            encode = _relayed_frame if relayed else _frame
            data = b"".join(encode(t) for t in texts)
        else:
            try:
                data = b"".join(self.deflate.send(TextMessage(data=t.decode())) for t in texts)
            except LocalProtocolError:  # the reader thread just answered the client's close
                raise ConnectionClosed(self.ws.close_reason, self.ws.close_message) from None
        try:
            self.ws.sock.sendall(data)
        except OSError:
            try:
                self.ws.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            raise ConnectionClosed(None, "send failed or timed out") from None

    def run(self, tasks: list[dict[str, Any]], task_id: str | None, since: int | None) -> None:
        self.last = {t["id"]: t["seq"] for t in tasks}
        self.send({"type": "snapshot", "tasks": tasks})
        if task_id is not None and since is not None:
            replayed = self.records.events(task_id, since)
            if replayed:
                self.send_texts([json.dumps(e, separators=(",", ":")).encode() for e in replayed])
                self.last[task_id] = max(self.last[task_id], replayed[-1]["seq"])
        while self.ws.connected:
            # Gather only under load (the previous write was recent): a lone event goes out at once.
            busy = time.monotonic() - self.last_write < 2 * LINGER_S
            batch = self.sub.get_batch(timeout=1.0, linger=LINGER_S if busy else 0.0)
            if batch and batch[0][0] is RESYNC:
                self.send(RESYNC)
                return
            texts: list[bytes] = []
            for event, raw in batch:
                texts += self.texts_for(event, raw)
            if texts:
                self.send_texts(texts, relayed=True)
                self.last_write = time.monotonic()

    def texts_for(self, event: dict[str, Any], raw: bytes) -> list[bytes]:
        """What to send for one relayed event: nothing if already covered, missed ones first after a gap."""
        tid, seq = event.get("task_id"), int(event.get("seq") or 0)
        prev = self.last.get(tid) if tid else None
        if prev is not None and seq <= prev:
            return []  # the snapshot or the replay already covered it
        out: list[bytes] = []
        if prev is not None and seq > prev + 1:
            # A gap (pub/sub delivers in order, so only around a snapshot): the task's stream fills it.
            out = [json.dumps(m, separators=(",", ":")).encode() for m in self.records.events(tid, prev)
                   if m["seq"] < seq]
        if tid:
            self.last[tid] = seq
        return out + [raw]


def _frame(text: bytes) -> bytes:
    """One final text frame, no extension (wsproto's encoder)."""
    return Connection(ConnectionType.SERVER).send(TextMessage(data=text.decode()))


#: A relayed event goes to every client of the process, and without extensions its frame is the same for all:
#: encoded once rather than per client (wsproto takes ~5 µs a frame; 100 clients × 500 events/s is 50,000 frames
#: a second). Keyed by the event's bytes, so an equal payload can only ever map to its own frame.
_relayed_frame = functools.lru_cache(maxsize=256)(_frame)
