"""``GET /health``: Redis and the live workers (host, queues, last heartbeat); answered without a token."""
from __future__ import annotations

from flask import Blueprint, jsonify

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
