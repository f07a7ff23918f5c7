"""gunicorn settings and hooks for ``depot web``, loaded with ``-c python:web.gunicorn_conf`` (the rest of the
command line is built in ``cli/procs.py``).

gunicorn refuses some requests itself, before Flask sees them: a request line over ``limit_request_line`` (414),
headers over their limits (431), a malformed request line or header (400). It answers those with an HTML page,
while every other error of the API is ``{"error": {"code", "message"}}``; so each worker swaps gunicorn's error
writer (``gunicorn.util.write_error``, its only caller being the worker's ``handle_error``, which still picks the
status and logs) for one that sends the same JSON shape."""
from __future__ import annotations

import json
import socket
from typing import Any

from gunicorn import util

from web.errors import HTTP_CODES

#: gunicorn's maximum (its default is 4094): URLs carrying long model paths and search queries fit.
limit_request_line = 8190

_HINTS = {
    414: f"The request line is longer than {limit_request_line} bytes; shorten the URL (long values belong in a "
         "JSON body).",
    431: "The request headers are too large or too many; send fewer or shorter headers.",
}


def json_error(status: int, reason: str, message: str) -> bytes:
    """A complete HTTP/1.1 response carrying the API's JSON error body."""
    body = json.dumps({"error": {"code": HTTP_CODES.get(status, "http_error"),
                                 "message": _HINTS.get(status) or message or reason}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for ``gunicorn.util.write_error`` (same arguments)."""
    util.write_nonblock(sock, json_error(status_int, reason, mesg))


def post_worker_init(worker: Any) -> None:
    util.write_error = write_json_error
