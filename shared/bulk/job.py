"""The bulk job: one action over many models, with one progress for the batch. The selection is a list of
model references or a search (folder, search text and the library's filters), resolved when the job runs, so
"select all 40,000 matches" sends a query, not 40,000 names.

Actions: ``move`` (into a folder and subfolder, each keeping its file name and sidecars), ``delete`` (into the
trash, restorable), ``tag`` / ``untag`` (tags added to or removed from each ``NAME.md``), ``favorite`` /
``unfavorite``, ``metadata`` (looked up on Civitai by SHA256 in batches) and ``updates`` (newer versions on
Civitai, ``library/updates.py``). A model that fails (its target
taken, it vanished) is reported in the result and the others go on; a cancel stops between two models."""
from __future__ import annotations

import posixpath
from typing import Any

from shared.errors import DepotError
from shared.jobs import JobContext
from shared.library import trash
from shared.library.updates import check_updates
from shared.metadata.job import fetch_metadata
from shared.services import Services
from shared.store import ops
from shared.store.edits import Edits
from shared.store.index import Filters, StoreIndex, model_id, split_id

ACTIONS = ("move", "delete", "tag", "untag", "favorite", "unfavorite", "metadata", "updates")


def selection(index: StoreIndex, params: dict[str, Any]) -> list[str]:
    """The ids a bulk task covers: its ``models`` list, or what its ``query`` matches now."""
    if params.get("models") is not None:
        return [model_id(r["folder"], r["path_index"], r["relpath"]) for r in params["models"]]
    query = params.get("query") or {}
    filters = Filters(base=query.get("base_model"), kind=query.get("type"), subdir=query.get("dir"),
                      tag=query.get("tag"), favorite=bool(query.get("favorite")), update=bool(query.get("update")),
                      verify=query.get("verify"),
                      no_preview=None if query.get("preview") is None else not query["preview"],
                      ids=index.duplicate_ids() if query.get("duplicates") else None)
    return index.matching_ids(folder=query.get("folder"), q=query.get("q"), filters=filters)


def _edits(action: str, tags: list[str], current: list[str]) -> Edits:
    if action == "tag":
        have = {t.lower() for t in current}
        return Edits(tags=current + [t for t in tags if t.lower() not in have])
    if action == "untag":
        drop = {t.lower() for t in tags}
        return Edits(tags=[t for t in current if t.lower() not in drop])
    return Edits(favorite=action == "favorite")


def _one(index: StoreIndex, action: str, params: dict[str, Any], folder: str, pi: int, rel: str) -> None:
    ref = ops.ModelRef.resolve(index, folder, pi, rel)
    if action == "delete":
        trash.trash_model(index, ref)
    elif action == "move":
        to = params["to"]
        name = posixpath.basename(rel)
        target = posixpath.join(to["subfolder"], name) if to.get("subfolder") else name
        ops.update_model(index, ref, move_to=(to["folder"], to.get("path_index", 0), target))
    else:
        doc = ops.known_doc(index, ref)
        edits = _edits(action, params.get("tags") or [], list(doc.get("tags") or []))
        if edits != Edits(tags=list(doc.get("tags") or [])):
            ops.update_model(index, ref, edits=edits)


def run_bulk(ctx: JobContext, services: Services) -> dict[str, Any]:
    """Apply ``params["action"]`` to every selected model; returns ``{"models", "done", "failed", "errors"}``
    (``errors``: the first 100 failures, each with the model and why)."""
    index = StoreIndex(services.redis, services.settings)
    action = ctx.params["action"]
    ids = selection(index, ctx.params)
    total = len(ids)
    ctx.progress(0, total, force=True, unit="models")
    if action == "metadata":
        found = fetch_metadata(ctx, services, index, (d for d in index.docs_or_none(ids) if d is not None))
        return {"models": total, "done": found["found"], "failed": 0, "errors": [], "metadata": found}
    if action == "updates":
        checked = check_updates(ctx, services, index, (d for d in index.docs_or_none(ids) if d is not None))
        return {"models": total, "done": checked["checked"], "failed": 0, "errors": [], "updates": checked}
    done, errors = 0, []
    for i, mid in enumerate(ids):
        ctx.progress(i, total, unit="models")  # also where a cancel or pause stops the batch
        folder, pi, rel = split_id(mid)
        try:
            _one(index, action, ctx.params, folder, pi, rel)
            done += 1
        except DepotError as exc:
            errors.append({"model": {"folder": folder, "path_index": pi, "relpath": rel}, "code": exc.code,
                           "message": exc.message})
    ctx.progress(total, total, force=True, unit="models")
    return {"models": total, "done": done, "failed": len(errors), "errors": errors[:100]}
