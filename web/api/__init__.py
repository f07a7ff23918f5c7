"""The JSON API under /api/v1. Each module owns one area and exposes a blueprint named ``bp`` (and, when a route
takes bodies over the default limit, ``BODY_LIMITS``: endpoint -> bytes)."""
from __future__ import annotations

import importlib

from flask import Flask

#: One line per area; the route table of each is in its module.
API_MODULES = [
    "web.api.health",
    "web.api.tasks",
    "web.api.models",
    "web.api.comfyui",
    "web.api.previews",
    "web.api.downloads",
    "web.api.workflows",
]


def register(app: Flask) -> None:
    for name in API_MODULES:
        module = importlib.import_module(name)
        app.register_blueprint(module.bp, url_prefix="/api/v1")
        app.config.setdefault("DEPOT_BODY_LIMITS", {}).update(getattr(module, "BODY_LIMITS", {}))
