"""Settings: the public, non-secret ones a client shows (``GET /settings``), the store-wide NSFW ceiling of
previews (``PUT /settings/nsfw_level``), and the upstream API keys (``/settings/keys``, shown masked)."""
from __future__ import annotations

import redis
from flask import Blueprint, jsonify

from shared import prefs
from shared.errors import InvalidRequest
from shared.upstream.http import HttpClient
from shared.upstream.keycheck import check_key
from shared.upstream.keystore import KEY_NAMES, KeyStore, clean_key
from web.api.params import field, json_body, named
from web.context import depot

bp = Blueprint("settings", __name__)


@bp.get("/settings")
def public_settings():  # type: ignore[no-untyped-def]
    """The non-secret settings a client shows (keys have their own masked endpoint)."""
    s = depot().settings
    return jsonify({"host": s.host, "store": str(s.store), **_nsfw(),
                    "flower_port": s.flower_port, "token_required": bool(s.api_token),
                    "read_token_required": s.read_token_required,
                    "download_hashes": list(s.download_hashes)})


@bp.put("/settings/nsfw_level")
def put_nsfw_level():  # type: ignore[no-untyped-def]
    """Set the NSFW ceiling of previews for every host (``{"value": 4}``; null goes back to the setting)."""
    body = json_body(("value",))
    if "value" not in body:
        raise InvalidRequest("Field 'value' is required: give {\"value\": N} with N one of 1, 2, 4, 8, 16 (null: "
                             "the server default).")
    named("value", prefs.set_nsfw_level, depot().services.redis, field(body, "value", int))
    return jsonify(_nsfw())


def _nsfw() -> dict[str, object]:
    services = depot().services
    try:
        level = services.nsfw_level()
    except redis.RedisError:  # the settings page still opens while Redis is away
        level = services.settings.nsfw_level
    return {"nsfw_level": level, "nsfw_level_default": services.settings.nsfw_level,
            "nsfw_levels": [{"value": n, "name": name} for n, name in prefs.NSFW_LEVELS.items()]}


@bp.get("/settings/keys")
def get_keys():  # type: ignore[no-untyped-def]
    return jsonify(KeyStore.from_settings(depot().settings).masked())


@bp.put("/settings/keys/<name>")
def put_key(name: str):  # type: ignore[no-untyped-def]
    if name not in KEY_NAMES:
        raise InvalidRequest(f"Unknown key {name!r}; use one of {', '.join(KEY_NAMES)}.")
    body = json_body(("value",))
    if "value" not in body:
        raise InvalidRequest("Field 'value' is required: give {\"value\": \"...\"} (null clears the key).")
    value = named("value", clean_key, name, field(body, "value", str))
    settings = depot().settings
    # A key the service refuses is not saved (the one before it stays); one it cannot check is saved and said so
    check = check_key(settings, HttpClient(settings), name, value) if value else None
    masked = KeyStore.from_settings(settings).set(name, value)
    return jsonify({"name": name, "value": masked, "check": check and {"status": check.status,
                                                                        "message": check.message}})
