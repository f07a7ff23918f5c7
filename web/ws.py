"""``WS /api/v1/ws``: a snapshot of the tasks, then their live events from the per-process relay.

A connection registers with the relay *before* it reads the snapshot, so nothing published in between is lost;
events the snapshot already covers (``seq`` not above the task's snapshot ``seq``) are skipped, so each task's
events arrive with strictly increasing ``seq``. ``task=<id>`` narrows everything to one task and, with
``since=<seq>``, replays that task's stored events after ``seq`` before the live ones. A client that falls
behind, or that was connected while Redis was lost, gets ``{"type":"resync"}`` and the socket is closed; it
reconnects and starts from a fresh snapshot. Bad parameters and an unknown task are refused with the usual JSON
error before the WebSocket handshake. The token check is the global one in ``web/auth.py`` (``?token=`` works).
"""
from __future__ import annotations

import json
import socket
import time
from typing import Any

from flask import Flask, Response, request
from simple_websocket import ConnectionClosed, Server
from wsproto.events import TextMessage

from shared.errors import InvalidRequest, NotFound
from shared.records import TaskRecords
from web.api.params import int_arg
from web.context import WebContext, depot
from web.relay import RESYNC, Subscription

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
    # Werkzeug matches WebSocket handshakes only to rules marked websocket=True; the plain rule gives any other
    # request a clear JSON error instead of a bare "bad request".
    app.add_url_rule("/api/v1/ws", "ws", _ws_route, websocket=True)
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


def _ws_route():  # type: ignore[no-untyped-def]
    ctx = depot()
    task_id, since = _params()
    if task_id is not None:
        ctx.services.records.get(task_id)  # 404 before the relay is involved
    relay = ctx.start_relay()
    sub = relay.subscribe(task_id)
    try:
        tasks = snapshot(ctx.services.records, task_id)
        ws = Server.accept(request.environ, **ctx_options())
        if ws.ping_interval:
            # The reader thread only recv()s after select() says readable, so a timeout here bounds sends only.
            ws.sock.settimeout(SEND_TIMEOUT_S)
    except BaseException:
        relay.unsubscribe(sub)
        raise
    try:
        Session(ws, sub, ctx.services.records).run(tasks, task_id, since)
    except ConnectionClosed:
        pass
    finally:
        relay.unsubscribe(sub)
        try:
            ws.close()
        except Exception:  # noqa: BLE001 - the peer may already be gone
            pass
    return _closed_response(ws)


def ctx_options() -> dict[str, Any]:
    from flask import current_app
    return dict(current_app.config.get("SOCK_SERVER_OPTIONS", {}))


class Session:
    """One connected client: only this thread sends on the socket (simple-websocket sends are unlocked)."""

    def __init__(self, ws: Server, sub: Subscription, records: TaskRecords) -> None:
        self.ws, self.sub, self.records = ws, sub, records
        self.last: dict[str, int] = {}
        self.plain = _no_extensions(ws)
        self.last_write = 0.0

    def send(self, message: dict[str, Any]) -> None:
        self.send_texts([json.dumps(message, separators=(",", ":")).encode()])

    def send_texts(self, texts: list[bytes]) -> None:
        """Send UTF-8 JSON texts as frames in one ``sendall`` under the socket timeout: a client that stops
        reading blocks this thread at most ``SEND_TIMEOUT_S``, then its socket is shut (simple-websocket's own
        ``send`` is a bare ``socket.send`` that could block forever or write half a frame)."""
        if not self.ws.connected:
            raise ConnectionClosed(self.ws.close_reason, self.ws.close_message)
        if self.plain:
            data = b"".join(_text_frame(t) for t in texts)
        else:
            data = b"".join(self.ws.ws.send(TextMessage(data=t.decode())) for t in texts)
        try:
            self.ws.sock.sendall(data)
        except OSError:
            self.ws.connected = False
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
                self.send_texts(texts)
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


def _text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame (RFC 6455 §5.2): what wsproto would build, without its per-call overhead;
    identical for every client, which matters at tens of thousands of frames per second."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


def _no_extensions(ws: Server) -> bool:
    """True when no extension (permessage-deflate) was negotiated, so frames can be written directly."""
    try:
        return not ws.ws.connection._proto.extensions
    except AttributeError:  # a wsproto release with other internals: use its encoder
        return False


def _closed_response(ws: Server) -> Response:
    """What the WSGI server gets back once the socket is finished (same handling as flask-sock)."""

    class WebSocketResponse(Response):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            if ws.mode == "gunicorn":
                raise StopIteration()
            if ws.mode == "werkzeug":
                return super().__call__(*args, **kwargs)
            return []

    return WebSocketResponse()
