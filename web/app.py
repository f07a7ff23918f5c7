"""The Flask app factory: settings → one Redis client → Celery (for enqueueing) → blueprints."""
from __future__ import annotations

import logging

from flask import Flask, abort, request

from shared.config import Settings, load_settings
from shared.services import Services
from web import auth, dashboard, errors, ws
from web.api import register as register_api
from web.context import WebContext
from workers.celery_app import make_celery
from workers.dispatch import Dispatcher

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    services = Services.build(settings)
    celery = make_celery(settings)
    ctx = WebContext(settings, services, celery, Dispatcher(celery, services.records, host=settings.host), {})
    app.extensions["depot"] = ctx
    if not settings.api_token:
        log.warning("event=open_api message=DEPOT_API_TOKEN is not set: anyone who can reach this server can "
                    "start downloads and delete models")
    errors.register(app)

    @app.before_request
    def _limit_body() -> None:
        # Reject oversized bodies up front, even on routes that never read them; a route may allow more
        # (``BODY_LIMITS`` of its API module), and the limit also caps a body sent without a length.
        limit = app.config.get("DEPOT_BODY_LIMITS", {}).get(request.endpoint, settings.max_body_bytes)
        request.max_content_length = limit
        if (request.content_length or 0) > limit:
            abort(413)

    auth.register(app, settings.api_token, settings.read_token_required)
    register_api(app)
    ws.init_app(app)
    dashboard.init_app(app)
    return app
