"""Request parsing that turns bad input into a clear 400 (never a 500)."""
from __future__ import annotations

from typing import Any

from flask import request

from shared.errors import InvalidRequest


def json_body() -> dict[str, Any]:
    if not request.data:
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object (Content-Type: application/json).")
    return data


def int_arg(name: str, default: int, *, lo: int = 0, hi: int = 10**9) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"Query parameter {name!r} must be a whole number, got {raw!r}.") from None
    if not lo <= value <= hi:
        raise InvalidRequest(f"Query parameter {name!r} must be between {lo} and {hi}, got {value}.")
    return value


def choice_arg(name: str, choices: tuple[str, ...] | list[str], default: str | None = None) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise InvalidRequest(f"Query parameter {name!r} must be one of {', '.join(choices)}; got {raw!r}.")
    return raw


def field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = False,
          default: Any = None) -> Any:
    if name not in body or body[name] is None:
        if required:
            raise InvalidRequest(f"Field {name!r} is required.")
        return default
    value = body[name]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise InvalidRequest(f"Field {name!r} has the wrong type.")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise InvalidRequest(f"Field {name!r} must be {names}, got {type(value).__name__}.")
    return value
