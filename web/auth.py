"""Bearer-token check: every write needs ``DEPOT_API_TOKEN`` when it is set; reads only when
``DEPOT_READ_TOKEN_REQUIRED``. The WebSocket and the dashboard's thumbnails may pass ``?token=``."""
from __future__ import annotations

import hmac

from flask import Flask, request

from shared.errors import Unauthorized

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.args.get("token")


def token_ok(expected: str | None) -> bool:
    if not expected:
        return True
    given = presented_token() or ""
    return hmac.compare_digest(given.encode(), expected.encode())


def register(app: Flask, token: str | None, read_required: bool) -> None:
    @app.before_request
    def _check() -> None:
        if not token:
            return
        path = request.path
        if not path.startswith("/api/"):
            return  # the dashboard shell is static; it asks for the token itself
        if path in ("/api/v1/health", "/api/v1/vocabulary") and request.method == "GET":
            return
        needs = request.method in WRITE_METHODS or read_required or path == "/api/v1/ws"
        if needs and not token_ok(token):
            raise Unauthorized("This server requires a token: send 'Authorization: Bearer <DEPOT_API_TOKEN>' "
                               "(or ?token= on the WebSocket).")
