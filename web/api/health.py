"""Health: Redis and the live workers (host, queues, last heartbeat); the public settings and the store-wide
NSFW preference."""
from __future__ import annotations

import redis
from flask import Blueprint, jsonify

from shared import prefs
from shared.errors import InvalidRequest
from shared.states import vocabulary
from web.api.params import field, json_body, named
from web.context import depot
from workers.presence import live_workers

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():  # type: ignore[no-untyped-def]
    client = depot().services.redis
    try:
        client.ping()
        workers = live_workers(client)
        redis_state = "ok"
    except Exception:  # noqa: BLE001 - health must answer even when Redis does not
        workers, redis_state = [], "unavailable"
    body: dict[str, object] = {"status": "ok", "redis": redis_state, "host": depot().settings.host,
                               "workers": workers}
    if redis_state != "ok":
        body.update(status="degraded", reason="Redis is not reachable: nothing can be queued or listed until it "
                                              "is back.")
    elif not workers:
        # The API still works (tasks are recorded and queued), so this is 200: jobs only wait.
        body.update(status="degraded", reason="No worker is running: jobs wait in the queue until one starts. "
                                              "Start one with `depot worker` (or `make up`, which runs one).")
    return jsonify(body), 200 if redis_state == "ok" else 503


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


@bp.get("/vocabulary")
def states():  # type: ignore[no-untyped-def]
    """The task-state vocabulary, so the dashboard never retypes it."""
    return jsonify(vocabulary())
