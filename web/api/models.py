"""The model store over HTTP: folders, listing/search, model detail, move/rename/description, delete,
duplicates, and scan submission. Every path from a client is validated against its store root."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, request

from shared.errors import Conflict, InvalidPath, InvalidRequest, NotFound
from shared.store import siblings, sidecars
from shared.store.index import SORTS, StoreIndex, to_model
from shared.store.paths import normalise_relpath
from shared.store.scan import idem_key, scan_roots, submit_params
from web.api.params import choice_arg, field, int_arg, json_body
from web.context import depot

bp = Blueprint("models", __name__)


def store_index() -> StoreIndex:
    """One index per web process (it caches search rows between requests)."""
    ctx = depot()
    index = ctx.extras.get("store_index")
    if index is None:
        index = ctx.extras["store_index"] = StoreIndex(ctx.services.redis, ctx.settings)
    return index


def _path_index(raw: Any) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidPath(f"path_index must be a whole number, got {raw!r}.") from None
    if isinstance(raw, bool):
        raise InvalidPath("path_index must be a whole number.")
    return value


def _ref(folder: str, path_index: Any, relpath: str) -> tuple[str, int, str, Path]:
    index = store_index()
    pi = _path_index(path_index)
    path = index.layout.resolve(folder, pi, relpath)
    return folder, pi, normalise_relpath(relpath), path


def _doc_or_index(folder: str, pi: int, rel: str, path: Path) -> dict[str, Any]:
    index = store_index()
    doc = index.lookup(folder, pi, rel)
    if doc is None and path.is_file() and index.layout.folder(folder).accepts(path.name):
        index.record_file(path)  # on disk but not yet scanned: index it now
        doc = index.lookup(folder, pi, rel)
    if doc is None:
        raise NotFound(f"No model {folder}/{pi}/{rel}; GET /api/v1/models lists what the store holds.")
    return doc


@bp.get("/folders")
def folders():  # type: ignore[no-untyped-def]
    index = store_index()
    down = index.unreachable()
    out = []
    for f in index.layout.folders():
        f["unreachable"] = [i for i in range(len(f["paths"])) if f"{f['name']}/{i}" in down]
        out.append(f)
    return jsonify(out)


@bp.get("/models")
def list_models():  # type: ignore[no-untyped-def]
    index = store_index()
    folder = request.args.get("folder") or None
    if folder is not None:
        index.layout.folder(folder)
    q = request.args.get("q") or None
    if q is not None and len(q) > 500:
        raise InvalidRequest("Query parameter 'q' is too long (500 characters at most).")
    sort = choice_arg("sort", SORTS, "name")
    order = choice_arg("order", ("asc", "desc"), "asc")
    joined, total = index.listing_json(folder=folder, q=q, sort=sort, order=order, offset=int_arg("offset", 0),
                                       limit=int_arg("limit", 100, lo=0, hi=1000))
    # The index keeps each Model as JSON text, so a page is joined, not re-encoded.
    return Response(b'{"items":[' + joined + b'],"total":' + str(total).encode() + b"}", mimetype="application/json")


@bp.get("/models/<folder>/<path_index>/<path:relpath>")
def model_detail(folder: str, path_index: str, relpath: str):  # type: ignore[no-untyped-def]
    folder, pi, rel, path = _ref(folder, path_index, relpath)
    doc = _doc_or_index(folder, pi, rel, path)
    model = to_model(doc)
    model["hashes"] = doc.get("hashes") or {}
    model["metadata"] = siblings.model_summary(store_index().layout.folder(folder), path, doc)
    model["description"] = sidecars.read_description(path)
    model["safetensors_metadata"] = sidecars.read_safetensors_metadata(path) if path.is_file() else None
    model["verified_at"], model["verify_reason"] = doc.get("verified_at"), doc.get("verify_reason")
    # Other models of the same stem beside it show the same sidecars and preview (CONTRACT §4).
    shares = siblings.sharing(store_index().layout.folder(folder), path)
    rel_dir = rel.rpartition("/")[0]
    model["siblings"] = [f"{rel_dir}/{n}" if rel_dir else n for n in shares["siblings"]]
    model["sidecars"] = shares["sidecars"]
    return jsonify(model)


@bp.patch("/models/<folder>/<path_index>/<path:relpath>")
def model_update(folder: str, path_index: str, relpath: str):  # type: ignore[no-untyped-def]
    body = json_body()
    folder, pi, rel, path = _ref(folder, path_index, relpath)
    doc = _doc_or_index(folder, pi, rel, path)
    move_to = field(body, "move_to", dict)
    description = field(body, "description", str)
    if move_to is None and description is None:
        raise InvalidRequest("Nothing to change: send 'move_to' {folder, path_index, relpath} and/or 'description'.")
    before = path
    if move_to is not None:
        path = _move(path, folder, pi, rel, move_to)
    if description is not None:
        sidecars.write_raw_description(path, description)
    # A moved file keeps what the index knew of its bytes (hashes, verification).
    model = store_index().record_file(path, moved_from=doc if path != before else None)
    if path != before:
        store_index().refresh_siblings(before)  # the models of its stem it left behind
    return jsonify(model)


def _move(path: Path, folder: str, pi: int, rel: str, move_to: dict[str, Any]) -> Path:
    index = store_index()
    t_folder = field(move_to, "folder", str, default=folder)
    t_pi = _path_index(move_to.get("path_index", pi))
    t_rel = field(move_to, "relpath", str, required=True)
    target = index.layout.resolve(t_folder, t_pi, t_rel)
    if target == path:
        return path
    if not index.layout.folder(t_folder).accepts(target.name) and not path.is_dir():
        raise InvalidRequest(f"Folder {t_folder!r} does not hold {os.path.splitext(target.name)[1]!r} files.")
    # Sidecars shared with a model of the same stem that stays are copied, not taken from it.
    moves = [(path, target, False)] + siblings.sidecar_moves(index.layout.folder(folder), path, target)
    clash = [str(dst) for _src, dst, _copy in moves if os.path.lexists(dst)]
    if clash:
        raise Conflict(f"Refusing to overwrite {', '.join(clash)}; delete or rename it first.")
    target.parent.mkdir(parents=True, exist_ok=True)
    for src, dst, copy in moves:
        index.layout.resolve(t_folder, t_pi, os.path.relpath(dst, index.layout.root(t_folder, t_pi)))
        if copy:
            shutil.copy2(src, dst)
        else:
            shutil.move(str(src), str(dst))
    index.remove(folder, pi, rel)
    return target


@bp.delete("/models/<folder>/<path_index>/<path:relpath>")
def model_delete(folder: str, path_index: str, relpath: str):  # type: ignore[no-untyped-def]
    folder, pi, rel, path = _ref(folder, path_index, relpath)
    doc = store_index().lookup(folder, pi, rel)
    if doc is None and not os.path.lexists(path):
        raise NotFound(f"No model {folder}/{pi}/{rel}.")
    for side in siblings.sidecars_to_delete(store_index().layout.folder(folder), path):
        side.unlink(missing_ok=True)  # none while a model of the same stem remains: they are its too
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    store_index().remove(folder, pi, rel)
    store_index().refresh_siblings(path)
    return "", 204


@bp.get("/duplicates")
def duplicates():  # type: ignore[no-untyped-def]
    folder = request.args.get("folder") or None
    if folder is not None:
        store_index().layout.folder(folder)
    return jsonify(store_index().duplicates(folder))


@bp.post("/scans")
def submit_scan():  # type: ignore[no-untyped-def]
    body = json_body()
    folder, path_index = field(body, "folder", str), field(body, "path_index", int)
    params = submit_params(field(body, "mode", str, default="quick"), folder,
                           field(body, "fetch_metadata", bool, default=False), path_index)
    scan_roots(store_index().layout, folder, path_index)
    task, _created = depot().dispatcher.submit("scan", params, idem_key=idem_key(folder, path_index))
    return jsonify(task), 202
