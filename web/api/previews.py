"""Previews: thumbnails and preview regeneration.

``GET /previews/<folder>/<path_index>/<relpath>?size=`` answers from the on-disk thumbnail cache (ETag = cache
key, so ``If-None-Match`` is answered from a ``stat``), serves videos as they are and a placeholder when a model
has no preview. ``POST /previews/regenerate`` validates its model references and queues a preview job (202
Task)."""
from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Response, request, send_file

from shared.errors import DepotError, NotFound
from shared.media.thumbs import DEFAULT_SIZE, MAX_SIZE, MIN_SIZE
from shared.previews.job import SOURCES
from shared.store.sidecar_files import find_preview
from web.api.params import int_arg
from web.api.scope import submit_scoped
from web.context import depot

bp = Blueprint("previews", __name__)


@bp.get("/previews/<folder>/<int:path_index>/<path:relpath>")
def thumbnail(folder: str, path_index: int, relpath: str) -> Any:
    size = int_arg("size", DEFAULT_SIZE, lo=MIN_SIZE, hi=MAX_SIZE)
    model = depot().layout.resolve(folder, path_index, relpath)
    if not os.path.exists(model):  # False, not an error, for a name the file system cannot hold
        raise NotFound(f"No model {folder}/{path_index}/{relpath}; GET /api/v1/models lists the store.")
    thumbs = depot().thumbnailer
    preview = find_preview(model)
    try:
        etag = thumbs.etag(preview, size)
    except OSError:  # the preview vanished between lookup and stat
        preview, etag = None, thumbs.etag(None, size)
    if etag in request.if_none_match:
        resp = Response(status=304)
        resp.set_etag(etag)
        return resp
    try:
        thumb = thumbs.get(preview, size)
    except (DepotError, OSError):  # an unreadable preview gets the placeholder rather than an error
        thumb = thumbs.get(None, size)
    resp = send_file(thumb.path, mimetype=thumb.content_type, conditional=True, etag=thumb.etag,
                     max_age=0)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.post("/previews/regenerate")
def regenerate() -> Any:
    return submit_scoped("preview", "source", SOURCES, "auto")
