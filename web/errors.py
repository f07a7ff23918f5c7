"""Every error leaves the API as ``{"error": {"code", "message"}}`` with a fitting status; never a stack trace."""
from __future__ import annotations

import errno
import logging

import redis
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from shared.errors import DepotError

log = logging.getLogger(__name__)

#: The ``code`` of an HTTP-level refusal (Werkzeug's, or gunicorn's own: see ``web/gunicorn_conf.py``).
HTTP_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "body_too_large", 414: "uri_too_long", 415: "unsupported_media_type",
              417: "expectation_failed", 431: "headers_too_large", 500: "internal_error", 501: "not_implemented"}


def error_response(code: str, message: str, status: int, **headers: str):  # type: ignore[no-untyped-def]
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    for k, v in headers.items():
        resp.headers[k.replace("_", "-")] = v
    return resp


def register(app: Flask) -> None:
    # "/api/v1//tasks" is a 404 like any unknown route, rather than a redirect with an HTML body.
    app.url_map.merge_slashes = False

    @app.errorhandler(DepotError)
    def _depot(exc: DepotError):  # type: ignore[no-untyped-def]
        resp = jsonify({"error": exc.to_dict()})
        resp.status_code = exc.http_status
        if exc.retry_after:
            resp.headers["Retry-After"] = str(int(exc.retry_after))
        return resp

    @app.errorhandler(redis.RedisError)
    def _redis(exc: redis.RedisError):  # type: ignore[no-untyped-def]
        log.warning("event=redis_unavailable path=%s error=%s", request.path, exc)
        return error_response("redis_unavailable", "Redis is not reachable right now; the request was not "
                              "applied. Try again in a few seconds.", 503, Retry_After="5")

    @app.errorhandler(OSError)
    def _os(exc: OSError):  # type: ignore[no-untyped-def]
        # The store refused a write (full, read-only, no permission): say so, and which file, rather than a 500
        where = f" ({exc.filename})" if exc.filename else ""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return error_response("disk_full", f"The store's disk is full{where}; free some space and retry.", 507)
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            log.warning("event=store_not_writable path=%s error=%s", request.path, exc)
            return error_response("store_not_writable", f"The server may not write there{where}: "
                                  f"{exc.strerror}. Check the store's permissions and mounts, then retry.", 503)
        return _other(exc)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        status = exc.code or 500
        code = HTTP_CODES.get(status, "http_error")
        message = exc.description or exc.name
        if status == 413:
            message = f"The request body is larger than the limit of {request.max_content_length} bytes."
        headers: dict[str, str] = {}
        path = request.path if len(request.path) <= 200 else request.path[:200] + "..."
        if status == 404 and request.url_rule is None:
            message = (f"No API route {request.method} {path} (the README's 'API at a glance' lists them)."
                       if request.path.startswith("/api/") else f"No page at {path}.")
        elif status == 405 and getattr(exc, "valid_methods", None):
            allowed = ", ".join(sorted(exc.valid_methods))  # type: ignore[attr-defined]
            message, headers["Allow"] = f"{request.method} is not allowed on {path}; use {allowed}.", allowed
        return error_response(code, message, status, **headers)

    @app.errorhandler(Exception)
    def _other(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("event=unhandled path=%s", request.path)
        return error_response("internal_error", "Something went wrong on the server; the details are in its "
                              "log.", 500)
