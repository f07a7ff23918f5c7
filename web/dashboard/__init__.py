"""The web dashboard: one static page (plain HTML, CSS and ES modules, no CDN, no build step) served at ``/``.

Everything it shows comes from the JSON API and the WebSocket; the page itself holds no secrets, so it is served
without the token and asks for one only when the API answers 401.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, send_from_directory

STATIC_DIR = Path(__file__).resolve().with_name("static")

bp = Blueprint("dashboard", __name__, static_folder=str(STATIC_DIR), static_url_path="/static")


@bp.get("/")
def index() -> Response:
    resp = send_from_directory(STATIC_DIR, "index.html", max_age=0)
    # The shell is tiny; always revalidate so a redeploy is picked up on reload.
    resp.headers["Cache-Control"] = "no-cache"
    # Pictures may come from https hosts too: the preview picker shows Civitai's images where Civitai keeps them.
    resp.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data: blob: https:; "
                                               "media-src 'self' blob:; connect-src 'self' ws: wss:; "
                                               "style-src 'self'; script-src 'self'")
    return resp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
