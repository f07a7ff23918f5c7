"""The JSON API under /api/v1: its route table. Each area is one module named for its URL area, exposing a
blueprint ``bp`` (and, when a route takes bodies over the default limit, ``BODY_LIMITS``: endpoint -> bytes).
``tests/test_routes.py`` holds this table to the routes the app serves."""
from __future__ import annotations

import importlib

from flask import Flask

M = "/models/<folder>/<path_index>/<relpath>"  # one model: its folder, root (path_index) and path in that root
T = "/tasks/<task_id>"

#: area module (``web.api.<area>``) -> the routes it serves, under /api/v1 (converters left out).
ROUTES: dict[str, tuple[str, ...]] = {
    "health":        ("GET /health",),
    "vocabulary":    ("GET /vocabulary",),
    "settings":      ("GET /settings", "PUT /settings/nsfw_level", "GET /settings/keys", "PUT /settings/keys/<name>"),
    "tasks":         ("GET /tasks", f"GET {T}", f"GET {T}/events", f"POST {T}/pause", f"POST {T}/resume",
                      f"POST {T}/cancel", f"POST {T}/retry", f"DELETE {T}"),
    "models":        ("GET /folders", "GET /models", f"GET {M}", f"PATCH {M}", f"DELETE {M}", f"POST {M}/repair",
                      "GET /duplicates", "GET /facets", f"GET {M}/civitai_images", f"PUT {M}/preview",
                      f"DELETE {M}/preview"),
    "scans":         ("POST /scans",),
    "verifications": ("POST /verifications",),
    "previews":      ("GET /previews/<folder>/<path_index>/<relpath>", "POST /previews/regenerate"),
    "downloads":     ("GET /resolve", "POST /downloads"),
    "comfyui":       ("GET /comfyui/extra_model_paths.yaml",),
    "workflows":     ("POST /workflows/resolve", "POST /workflows/fetch"),
    "bulk":          ("POST /bulk",),
    "uploads":       ("POST /uploads", "GET /uploads/<upload_id>", "PATCH /uploads/<upload_id>",
                      "DELETE /uploads/<upload_id>", "POST /uploads/inspect"),
    "trash":         ("GET /trash", "GET /trash/<entry_id>", "POST /trash/<entry_id>/restore",
                      "DELETE /trash/<entry_id>"),
}
# Besides these: the WebSocket GET /api/v1/ws (web/ws.py) and the dashboard under / (web/dashboard/).


def register(app: Flask) -> None:
    for area in ROUTES:
        module = importlib.import_module(f"web.api.{area}")
        app.register_blueprint(module.bp, url_prefix="/api/v1")
        app.config.setdefault("DEPOT_BODY_LIMITS", {}).update(getattr(module, "BODY_LIMITS", {}))
