"""Health: Redis and the live workers (host, queues, last heartbeat)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from shared.states import vocabulary
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
    body = {"status": "ok" if redis_state == "ok" else "degraded", "redis": redis_state,
            "host": depot().settings.host, "workers": workers}
    return jsonify(body), 200 if redis_state == "ok" else 503


@bp.get("/settings")
def public_settings():  # type: ignore[no-untyped-def]
    """The non-secret settings a client shows (keys have their own masked endpoint)."""
    s = depot().settings
    return jsonify({"host": s.host, "store": str(s.store), "nsfw_level": s.nsfw_level,
                    "flower_port": s.flower_port, "token_required": bool(s.api_token),
                    "read_token_required": s.read_token_required,
                    "download_hashes": list(s.download_hashes)})


@bp.get("/vocabulary")
def states():  # type: ignore[no-untyped-def]
    """The task-state vocabulary, so the dashboard never retypes it."""
    return jsonify(vocabulary())
