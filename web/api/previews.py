"""Thumbnails, preview regeneration, verification jobs and the repair action.

``GET /previews/<folder>/<path_index>/<relpath>?size=`` answers from the on-disk thumbnail cache (ETag = cache
key, so ``If-None-Match`` is answered from a ``stat``), serves videos as they are and a placeholder when a model
has no preview. ``POST /previews/regenerate`` and ``POST /verifications`` validate their model references and
queue a job (202 Task). ``POST /models/<ref>/repair`` re-downloads a model from its recorded source through the
download job, checked against the hash recorded for it."""
from __future__ import annotations

import os
import posixpath
from typing import Any

from flask import Blueprint, Response, jsonify, request, send_file

from shared.errors import Conflict, DepotError, InvalidPath, InvalidRequest, NotFound
from shared.downloads.publish import check_filename
from shared.previews.job import SOURCES
from shared.previews.targets import parse_ref
from shared.previews.thumbs import DEFAULT_SIZE, MAX_SIZE, MIN_SIZE, Thumbnailer
from shared.store.index import StoreIndex
from shared.store.paths import MAX_RELPATH, normalise_relpath
from shared.store.siblings import model_summary
from shared.store.sidecars import find_preview
from web.api.params import (choice_field, field, folder_field, int_arg, json_body, json_type, named,
                            only_fields, path_index_field, store_layout, text_field)
from web.context import depot

bp = Blueprint("previews", __name__)

#: Refs accepted in one request body; a whole folder is cheaper as ``folder``.
MAX_REFS = 10_000
VERIFY_MODES = ("sha256", "all")


def _thumbnailer() -> Thumbnailer:
    ctx = depot()
    if "thumbnailer" not in ctx.extras:
        ctx.extras["thumbnailer"] = Thumbnailer(ctx.settings.thumbs_dir, ctx.settings.thumbs_max_bytes)
    return ctx.extras["thumbnailer"]


@bp.get("/previews/<folder>/<int:path_index>/<path:relpath>")
def thumbnail(folder: str, path_index: int, relpath: str) -> Any:
    size = int_arg("size", DEFAULT_SIZE, lo=MIN_SIZE, hi=MAX_SIZE)
    model = store_layout().resolve(folder, path_index, relpath)
    if not os.path.exists(model):  # False, not an error, for a name the file system cannot hold
        raise NotFound(f"No model {folder}/{path_index}/{relpath}; GET /api/v1/models lists the store.")
    thumbs = _thumbnailer()
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


def _ref(item: Any, label: str) -> dict[str, Any]:
    """One ``{"folder","path_index","relpath"}`` of a ``models`` list, naming ``models[i].field`` when refused."""
    if not isinstance(item, dict):
        raise InvalidRequest(f"Field {label!r} must be an object {{\"folder\", \"path_index\", \"relpath\"}}, "
                             f"got {json_type(item)}.")
    prefix = label + "."
    only_fields(item, ("folder", "path_index", "relpath"), prefix)
    folder = folder_field(item, required=True, prefix=prefix)
    index = path_index_field(item, folder, default=0, prefix=prefix)
    rel = text_field(item, "relpath", max_len=MAX_RELPATH, required=True, prefix=prefix)
    named(prefix + "relpath", store_layout().resolve, folder, index, rel)
    parse_ref(item)  # the worker's own check, which must agree
    return {"folder": folder, "path_index": index, "relpath": normalise_relpath(rel)}


def _scope(body: dict[str, Any]) -> dict[str, Any]:
    """A job's scope: one folder, a list of models, or (neither) the whole store; never both."""
    folder = folder_field(body)
    models = field(body, "models", list)
    if folder is not None and models is not None:
        raise InvalidRequest("Give either 'folder' or 'models', not both (leave both out for the whole store).")
    if folder is not None:
        return {"folder": folder}
    if models is None:
        return {}
    if not models:
        raise InvalidRequest("Field 'models' is empty; name at least one model, or leave it out for the whole store.")
    if len(models) > MAX_REFS:
        raise InvalidRequest(f"Field 'models' lists {len(models)} models; at most {MAX_REFS} per request (use "
                             "'folder' for a whole folder).")
    return {"models": [_ref(item, f"models[{i}]") for i, item in enumerate(models)]}


def _submit_scoped(kind: str, option: str, choices: tuple[str, ...] | list[str], default: str) -> Any:
    """A job over a folder, a list of models or the whole store, with one validated option."""
    body = json_body(("folder", "models", option))
    params = _scope(body)
    params[option] = choice_field(body, option, choices, default)
    task, _created = depot().dispatcher.submit(kind, params)
    return jsonify(task), 202


@bp.post("/previews/regenerate")
def regenerate() -> Any:
    return _submit_scoped("preview", "source", SOURCES, "auto")


@bp.post("/verifications")
def verifications() -> Any:
    return _submit_scoped("verify", "mode", VERIFY_MODES, "sha256")


def _recorded_source(ref: dict[str, Any], model: Any) -> tuple[str | None, str | None]:
    """The (source URL, expected SHA256) recorded for a model: index entry, sidecars, then download tasks."""
    ctx = depot()
    entry = StoreIndex(ctx.services.redis, ctx.settings, store_layout()).lookup(
        ref["folder"], ref["path_index"], ref["relpath"]) or {}
    # The sidecars' hashes may be another model's of the same stem; model_summary leaves them out then.
    summary = model_summary(store_layout().folder(ref["folder"]), model, entry) if model.exists() else {}
    url = entry.get("source_url") or summary.get("source_url")
    sha = entry.get("sha256") or (entry.get("hashes") or {}).get("SHA256") or (summary.get("hashes") or {}).get("SHA256")
    if url and sha:
        return url, sha
    items, _cursor = ctx.services.records.page(state="succeeded", kind="download", limit=500)
    for task in items:
        result = task.get("result") or {}
        made = result.get("model") or {}
        if all(made.get(k) == ref[k] for k in ("folder", "path_index", "relpath")):
            url = url or (task.get("params") or {}).get("url")
            sha = sha or (result.get("hashes") or {}).get("SHA256")
            break
    return url, sha


@bp.post("/models/<folder>/<int:path_index>/<path:relpath>/repair")
def repair(folder: str, path_index: int, relpath: str) -> Any:
    json_body(())  # the recorded source says everything; a body with fields is refused rather than ignored
    model = store_layout().resolve(folder, path_index, relpath)
    relpath = normalise_relpath(relpath)
    ref = {"folder": folder, "path_index": path_index, "relpath": relpath}
    url, sha = _recorded_source(ref, model)
    if not url:
        raise Conflict(f"No download source is recorded for {folder}/{relpath}, so it cannot be repaired "
                       "automatically. Download it again with POST /api/v1/downloads and its URL.",
                       code="no_source_recorded")
    subdir, name = posixpath.split(relpath)
    try:
        check_filename(name)  # the download job saves under it: refuse now what it would refuse later
    except InvalidPath as exc:
        raise Conflict(f"{folder}/{relpath} cannot be re-downloaded under its own name: {exc.message} Rename it "
                       "first (PATCH with 'move_to').") from None
    params = {"url": url, "folder": folder, "path_index": path_index, "filename": name, "overwrite": True}
    if subdir:
        params["subfolder"] = subdir
    if sha:
        params["sha256"] = sha
    task, _created = depot().dispatcher.submit("download", params)
    return jsonify(task), 202
