"""Every error leaves the API as ``{"error": {"code", "message"}}`` with a fitting status; never a stack trace."""
from __future__ import annotations

import logging

import redis
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from shared.errors import DepotError

log = logging.getLogger(__name__)

_HTTP_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type"}


def error_response(code: str, message: str, status: int, **headers: str):  # type: ignore[no-untyped-def]
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    for k, v in headers.items():
        resp.headers[k.replace("_", "-")] = v
    return resp


def register(app: Flask) -> None:
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

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        message = exc.description or exc.name
        if status == 413:
            message = f"The request body is larger than the limit of {request.max_content_length} bytes."
        if status == 404 and not request.path.startswith("/api/"):
            message = f"No page at {request.path}."
        return error_response(code, message, status)

    @app.errorhandler(Exception)
    def _other(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("event=unhandled path=%s", request.path)
        return error_response("internal_error", "Something went wrong on the server; the details are in its "
                              "log.", 500)
