"""The model store over HTTP: folders, listing/search, model detail, move/rename/description, delete,
duplicates, and scan submission. Every path from a client is validated against its store root."""
from __future__ import annotations

import os
import posixpath
import shutil
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, request

from shared.errors import Conflict, InvalidPath, InvalidRequest, NotFound
from shared.store import siblings, sidecars
from shared.store.index import SORTS, StoreIndex, to_model
from shared.store.paths import normalise_relpath
from shared.store.scan import MODES, idem_key, scan_roots, submit_params
from web.api.params import (choice_arg, choice_field, field, folder_arg, folder_field, int_arg, json_body, named,
                            only_fields, path_index_field, relpath_field)
from web.context import depot

bp = Blueprint("models", __name__)


def store_index() -> StoreIndex:
    """One index per web process (it caches search rows between requests)."""
    ctx = depot()
    index = ctx.extras.get("store_index")
    if index is None:
        index = ctx.extras["store_index"] = StoreIndex(ctx.services.redis, ctx.settings)
    return index


def _path_index(raw: str) -> int:
    """The ``path_index`` part of a model URL: ASCII digits only (no sign, spaces or other scripts' digits)."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 5):
        raise InvalidPath(f"The URL's 'path_index' must be a whole number such as 0, got {raw[:40]!r}.")
    return int(raw)


def _ref(folder: str, path_index: str, relpath: str) -> tuple[str, int, str, Path]:
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
    folder = folder_arg()
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
    body = json_body(("move_to", "description"))
    move_to = field(body, "move_to", dict)
    if move_to is not None:
        move_to = _move_target(move_to, folder, _path_index(path_index))
    description = field(body, "description", str)
    if move_to is None and description is None:
        raise InvalidRequest("Nothing to change: send 'move_to' {folder, path_index, relpath} and/or 'description'.")
    folder, pi, rel, path = _ref(folder, path_index, relpath)
    doc = _doc_or_index(folder, pi, rel, path)
    before = path
    if move_to is not None:
        path = _move(path, folder, pi, rel, *move_to)
    if description is not None:
        sidecars.write_raw_description(path, description)
    # A moved file keeps what the index knew of its bytes (hashes, verification).
    model = store_index().record_file(path, moved_from=doc if path != before else None)
    if path != before:
        store_index().refresh_siblings(before)  # the models of its stem it left behind
    return jsonify(model)


def _move_target(move_to: dict[str, Any], folder: str, pi: int) -> tuple[str, int, str]:
    """(folder, path_index, relpath) of a move (folder and root default to the model's), each field checked
    before anything is looked up or moved."""
    only_fields(move_to, ("folder", "path_index", "relpath"), "move_to.")
    t_folder = folder_field(move_to, default=folder, prefix="move_to.")
    t_pi = path_index_field(move_to, t_folder, default=pi, prefix="move_to.")
    t_rel = relpath_field(move_to, "relpath", required=True, prefix="move_to.")
    named("move_to.relpath", sidecars.check_model_name, posixpath.basename(t_rel))
    return t_folder, t_pi, t_rel


def _move(path: Path, folder: str, pi: int, rel: str, t_folder: str, t_pi: int, t_rel: str) -> Path:
    index = store_index()
    target = index.layout.resolve(t_folder, t_pi, t_rel)
    if target == path:
        return path
    if not index.layout.folder(t_folder).accepts(target.name) and not path.is_dir():
        raise InvalidRequest(f"Field 'move_to.relpath': folder {t_folder!r} does not hold "
                             f"{os.path.splitext(target.name)[1]!r} files.")
    # Sidecars shared with a model of the same stem that stays are copied, not taken from it.
    moves = [(path, target, False)] + siblings.sidecar_moves(index.layout.folder(folder), path, target)
    # Every destination is checked before the first file moves, so a refusal leaves the model whole.
    root = index.layout.root(t_folder, t_pi)
    for _src, dst, _copy in moves:
        index.layout.resolve(t_folder, t_pi, os.path.relpath(dst, root))
    clash = [str(dst) for _src, dst, _copy in moves if os.path.lexists(dst)]
    if clash:
        raise Conflict(f"Refusing to overwrite {', '.join(clash)}; delete or rename it first.")
    target.parent.mkdir(parents=True, exist_ok=True)
    for src, dst, copy in moves:
        if copy:
            shutil.copy2(src, dst)
        else:
            shutil.move(str(src), str(dst))
    index.remove(folder, pi, rel)
    return target


@bp.delete("/models/<folder>/<path_index>/<path:relpath>")
def model_delete(folder: str, path_index: str, relpath: str):  # type: ignore[no-untyped-def]
    json_body(())
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
    return jsonify(store_index().duplicates(folder_arg()))


@bp.post("/scans")
def submit_scan():  # type: ignore[no-untyped-def]
    body = json_body(("folder", "path_index", "mode", "fetch_metadata"))
    folder = folder_field(body)
    path_index = path_index_field(body, folder)
    params = submit_params(choice_field(body, "mode", MODES, "quick"), folder,
                           field(body, "fetch_metadata", bool, default=False), path_index)
    scan_roots(store_index().layout, folder, path_index)
    task, _created = depot().dispatcher.submit("scan", params, idem_key=idem_key(folder, path_index))
    return jsonify(task), 202
