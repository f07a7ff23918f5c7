"""Request parsing that turns bad input into a clear 400 naming the field (never a 500, never a coercion).

Bodies are parsed by orjson, which refuses nesting deeper than 1024 levels (the standard library recurses until
``RecursionError``), NaN/Infinity, invalid UTF-8 and lone surrogates. Every field keeps the JSON type it was
sent with: ``"0"`` is not 0, ``true`` is not 1, ``1.0`` is not a whole number. Strings are bounded, and a field
an endpoint does not know is refused rather than ignored, so a misspelt optional field is an error the client
sees. ``null`` is the same as leaving an optional field out."""
from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

import orjson
from flask import request

from shared.errors import InvalidPath, InvalidRequest, NotFound
from shared.store.paths import NAME_MAX, new_relpath
from web.context import depot

#: The longest folder name (a key of ComfyUI's ``folder_names_and_paths`` or ``extra_model_paths.yaml``).
MAX_FOLDER_NAME = NAME_MAX
#: No store has more roots per folder than this; a larger ``path_index`` is refused before any lookup.
MAX_PATH_INDEX = 10_000
#: The longest relative path a client may create (characters): deep enough for any layout, far from PATH_MAX.
MAX_NEW_RELPATH = 1024
_WHOLE = re.compile(r"-?[0-9]{1,12}")


def json_type(value: Any) -> str:
    """How JSON calls ``value``'s type, for messages ("got a string")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def json_body(allowed: Collection[str] | None = None) -> dict[str, Any]:
    """The request's JSON object (``{}`` for an empty body); with ``allowed``, any other field is refused."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    if not request.is_json:
        raise InvalidRequest("The request body must be a JSON object (Content-Type: application/json).")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"The request body must be a JSON object, got {json_type(data)}.")
    if allowed is not None:
        only_fields(data, allowed)
    return data


def only_fields(obj: dict[str, Any], allowed: Collection[str], prefix: str = "") -> None:
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        takes = ", ".join(repr(prefix + a) for a in allowed) if allowed else "no fields"
        raise InvalidRequest(f"Unknown field {prefix + unknown[0]!r}; this takes {takes}.")


def int_arg(name: str, default: int, *, lo: int = 0, hi: int = 10**9) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not _WHOLE.fullmatch(raw):
        raise InvalidRequest(f"Query parameter {name!r} must be a whole number, got {raw[:40]!r}.")
    value = int(raw)
    if not lo <= value <= hi:
        raise InvalidRequest(f"Query parameter {name!r} must be between {lo} and {hi}, got {value}.")
    return value


def choice_arg(name: str, choices: tuple[str, ...] | list[str], default: str | None = None) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise InvalidRequest(f"Query parameter {name!r} must be one of {', '.join(choices)}; got {raw[:40]!r}.")
    return raw


def one_line(what: str, value: str | None, cap: int) -> str | None:
    """``value`` when it is at most ``cap`` characters with no tab, line break or NUL (a search or a filter value,
    which the index's tab-separated rows could not hold); ``what`` names it in the refusal."""
    if value is not None and (len(value) > cap or any(c in value for c in "\t\r\n\0")):
        raise InvalidRequest(f"{what} must be at most {cap} characters with no tabs or line breaks, got "
                             f"{value[:40]!r}.")
    return value


def given(body: dict[str, Any], name: str) -> bool:
    """Whether the client sent ``name`` with a value (null counts as left out)."""
    return body.get(name) is not None


def folder_arg(name: str = "folder") -> str | None:
    """A query parameter naming one of the store's folders (an unknown one is a 400, like any bad filter)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        depot().layout.folder(raw)
    except NotFound as exc:
        raise InvalidRequest(f"Query parameter {name!r}: {exc.message}") from None
    return raw


_KIND_NAMES = {str: "a string", int: "a whole number", bool: "true or false", dict: "an object", list: "a list"}


def field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = False,
          default: Any = None, prefix: str = "") -> Any:
    """``body[name]`` if it has the JSON type ``kind`` (a bool is never an int), ``default`` when absent or
    null; ``prefix`` names the enclosing object in messages (``"move_to."``)."""
    label = prefix + name
    if name not in body or body[name] is None:
        if required:
            raise InvalidRequest(f"Field {label!r} is required.")
        return default
    value = body[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        wanted = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
        raise InvalidRequest(f"Field {label!r} must be {wanted}, got {json_type(value)}.")
    return value


def text_field(body: dict[str, Any], name: str, *, max_len: int, required: bool = False, default: Any = None,
               prefix: str = "") -> Any:
    """A non-empty string of at most ``max_len`` characters."""
    value = field(body, name, str, required=required, default=default, prefix=prefix)
    if not given(body, name):
        return value
    if not value.strip():
        hint = "give a value" if required else "leave it out (or null) to use the default"
        raise InvalidRequest(f"Field {prefix + name!r} is empty; {hint}.")
    if len(value) > max_len:
        raise InvalidRequest(f"Field {prefix + name!r} is {len(value)} characters long; at most {max_len}.")
    return value


def int_field(body: dict[str, Any], name: str, *, lo: int, hi: int, required: bool = False, default: Any = None,
              prefix: str = "") -> Any:
    """A whole number (a JSON integer, not a string or a bool) within ``lo..hi``."""
    value = field(body, name, int, required=required, default=default, prefix=prefix)
    if given(body, name) and not lo <= value <= hi:
        raise InvalidRequest(f"Field {prefix + name!r} must be between {lo} and {hi}, got {value}.")
    return value


def choice_field(body: dict[str, Any], name: str, choices: Collection[str], default: str, prefix: str = "") -> str:
    value = field(body, name, str, default=default, prefix=prefix)
    if value not in choices:
        raise InvalidRequest(f"Field {prefix + name!r} must be one of {', '.join(choices)}; got {value[:40]!r}.")
    return value


def folder_field(body: dict[str, Any], name: str = "folder", *, required: bool = False, default: Any = None,
                 prefix: str = "") -> Any:
    """The name of one of the store's folders (``GET /folders``)."""
    value = text_field(body, name, max_len=MAX_FOLDER_NAME, required=required, default=default, prefix=prefix)
    if given(body, name):
        try:
            depot().layout.folder(value)
        except NotFound as exc:
            raise InvalidRequest(f"Field {prefix + name!r}: {exc.message}") from None
    return value


def path_index_field(body: dict[str, Any], folder: str | None, name: str = "path_index", *,
                     default: Any = None, prefix: str = "") -> Any:
    """An index into ``folder``'s roots (checked against them once the folder is known)."""
    value = field(body, name, int, default=default, prefix=prefix)
    if not given(body, name):
        return value
    roots = len(depot().layout.folder(folder).paths) if folder is not None else MAX_PATH_INDEX + 1
    if not 0 <= value < roots:
        if folder is None:
            raise InvalidPath(f"Field {prefix + name!r} must be between 0 and {MAX_PATH_INDEX}, got {value}.")
        raise InvalidPath(f"Field {prefix + name!r}: folder {folder!r} has {roots} path(s), so {value} is out of "
                          f"range (0 to {roots - 1}; GET /api/v1/folders lists them).")
    return value


def relpath_field(body: dict[str, Any], name: str, *, required: bool = False, prefix: str = "") -> str | None:
    """A relative path about to be created in the store (``new_relpath``), normalised."""
    value = text_field(body, name, max_len=MAX_NEW_RELPATH, required=required, prefix=prefix)
    if value is None:
        return None
    return named(prefix + name, new_relpath, value)


def named(label: str, check: Any, *args: Any) -> Any:
    """``check(*args)``, its refusal reworded to name the field it came from."""
    try:
        return check(*args)
    except (InvalidPath, InvalidRequest) as exc:
        raise type(exc)(f"Field {label!r}: {exc.message}", code=exc.code) from None
