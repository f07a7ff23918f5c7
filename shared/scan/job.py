"""The scan job: its params, the roots it covers, and the run over them (walk, then hash)."""
from __future__ import annotations

import os
from typing import Any

from shared.errors import DepotError, InvalidRequest
from shared.jobs import JobContext
from shared.media.gguf import CHECKPOINTS, is_gguf_name, misplacement
from shared.scan.hashing import hash_pending
from shared.scan.locks import RootLocks
from shared.scan.totals import Totals
from shared.scan.walk import RootScan
from shared.services import Services
from shared.store.index import ModelDoc, StoreIndex
from shared.store.layout import Folder, StoreLayout

MODES = ("quick", "full")


def submit_params(mode: str = "quick", folder: str | None = None, fetch_metadata: bool = False,
                  path_index: int | None = None) -> dict[str, Any]:
    """The task params of a scan (the API and beat build them here so both agree); ``path_index`` narrows a
    folder's scan to one of its roots (say, a NAS mount that is slow or offline is left out)."""
    if mode not in MODES:
        raise InvalidRequest(f"Scan mode must be one of {', '.join(MODES)}; got {mode!r}.")
    params: dict[str, Any] = {"mode": mode, "folder": folder, "fetch_metadata": bool(fetch_metadata)}
    if path_index is not None:
        if folder is None:
            raise InvalidRequest("A scan's 'path_index' picks one root of a folder; give the 'folder' too.")
        params["path_index"] = path_index
    return params


def scan_roots(layout: StoreLayout, folder: str | None, path_index: int | None = None) -> list[tuple[Folder, int, str]]:
    """``(folder, path_index, root)`` of every root a scan covers: one folder's (else every folder's), or just
    its ``path_index``. An unknown folder or root is refused here, so the API answers before a task exists."""
    folders = [layout.folder(folder)] if folder else [layout.folder(n) for n in layout.names()]
    if path_index is not None:
        layout.root(folders[0].name, path_index)
    return [(f, pi, root) for f in folders for pi, root in enumerate(f.paths) if path_index in (None, pi)]


def idem_key(folder: str | None, path_index: int | None = None) -> str:
    return f"scan:{folder or 'all'}" + ("" if path_index is None else f":{path_index}")


def run_scan(ctx: JobContext, services: Services) -> dict[str, Any]:
    """Scan the roots named by ``ctx.params`` (``folder``: one folder, else all; ``path_index``: one root of
    it) and return the counts."""
    params = submit_params(ctx.params.get("mode", "quick"), ctx.params.get("folder"),
                           ctx.params.get("fetch_metadata", False), ctx.params.get("path_index"))
    index = StoreIndex(services.redis, services.settings)
    totals = Totals()
    locks = RootLocks(services.redis)
    try:
        for folder, pi, root in scan_roots(index.layout, params["folder"], params.get("path_index")):
            _scan_root(ctx, index, folder, pi, root, params["mode"] == "full", totals, locks)
        hash_pending(ctx, index, totals, locks)
        if params["folder"] in (None, CHECKPOINTS):
            _flag_indexed_ggufs(index)
    finally:
        locks.release()
    result = {k: getattr(totals, k) for k in ("files", "added", "changed", "removed", "hashed", "bytes_hashed",
                                               "lazy", "processes", "unreachable_roots", "busy_roots",
                                               "links_skipped", "links_sample")}
    if params["fetch_metadata"]:
        from shared.metadata.job import fetch_missing_metadata
        result["metadata"] = fetch_missing_metadata(ctx, services, index, params["folder"])
    return result


def _scan_root(ctx: JobContext, index: StoreIndex, folder: Folder, pi: int, root: str, full: bool,
               totals: Totals, locks: RootLocks) -> None:
    if not locks.take(root):
        totals.busy_roots.append({"folder": folder.name, "path_index": pi, "path": root})
        return
    if not os.path.isdir(root) or not os.access(root, os.R_OK | os.X_OK):
        index.mark_unreachable(folder.name, pi, root, reachable=False)
        totals.unreachable_roots.append({"folder": folder.name, "path_index": pi, "path": root})
        return
    index.mark_unreachable(folder.name, pi, root, reachable=True)
    RootScan(ctx, index, folder, pi, root, full, totals, locks).run()
    totals.walked.append((folder.name, pi, root))


def _flag_indexed_ggufs(index: StoreIndex) -> None:
    """Give GGUFs in checkpoints indexed before models carried ``misplaced`` their flag: a quick scan does not
    read their unchanged directories again."""
    docs: list[ModelDoc] = []
    for d in index.models(CHECKPOINTS):
        if "misplaced" not in d and is_gguf_name(d["relpath"]):
            try:
                path = index.layout.resolve(CHECKPOINTS, d["path_index"], d["relpath"])
            except DepotError:  # a root no longer configured: its models are the cleanup's
                continue
            d["misplaced"] = misplacement(CHECKPOINTS, path)
            docs.append(d)
    index.put_docs(docs)
