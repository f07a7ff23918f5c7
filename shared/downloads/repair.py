"""Repair: download a model again from the source recorded for it, over its own file, checked against the hash
recorded for it. It is an ordinary download (``submit.py``): planned before the task exists, under the
artifact's idempotency key."""
from __future__ import annotations

import posixpath
from typing import Any

from shared.config import Settings
from shared.downloads.publish import check_filename
from shared.downloads.submit import Submit, submit_download
from shared.errors import Conflict, InvalidPath, InvalidRequest
from shared.records import TaskRecords
from shared.store.index import StoreIndex
from shared.store.ops import ModelRef
from shared.store.siblings import model_summary
from shared.upstream.http import HttpClient

#: How many of the latest succeeded downloads are searched for a model whose index entry and sidecars name no
#: source.
RECENT_DOWNLOADS = 500


def recorded_source(index: StoreIndex, records: TaskRecords, ref: ModelRef) -> tuple[str | None, str | None]:
    """The (source URL, expected SHA256) recorded for a model: index entry, sidecars, then download tasks."""
    entry = index.lookup(ref.folder, ref.path_index, ref.relpath)
    # The sidecars' hashes may be another model's of the same stem; model_summary leaves them out then.
    summary = model_summary(index.layout.folder(ref.folder), ref.path, entry) if ref.path.exists() else {}
    url = (entry and entry.get("source_url")) or summary.get("source_url")
    sha = (entry and (entry.get("hashes") or {}).get("SHA256")) or (summary.get("hashes") or {}).get("SHA256")
    if url and sha:
        return url, sha
    items, _cursor = records.page(state="succeeded", kind="download", limit=RECENT_DOWNLOADS)
    for task in items:
        result = task.get("result") or {}
        made = result.get("model") or {}
        if (made.get("folder"), made.get("path_index"), made.get("relpath")) == (ref.folder, ref.path_index,
                                                                                   ref.relpath):
            url = url or (task.get("params") or {}).get("url")
            sha = sha or (result.get("hashes") or {}).get("SHA256")
            break
    return url, sha


def repair_params(ref: ModelRef, url: str, sha: str | None) -> dict[str, Any]:
    """The download that puts the model's recorded source back under its own name."""
    subdir, name = posixpath.split(ref.relpath)
    try:
        check_filename(name)  # the download job saves under it: refuse now what it would refuse later
    except InvalidPath as exc:
        raise Conflict(f"{ref.folder}/{ref.relpath} cannot be re-downloaded under its own name: {exc.message} "
                       "Rename it first (PATCH with 'move_to').") from None
    params: dict[str, Any] = {"url": url, "folder": ref.folder, "path_index": ref.path_index, "filename": name,
                              "overwrite": True}
    if subdir:
        params["subfolder"] = subdir
    if sha:
        params["sha256"] = sha
    return params


def submit_repair(settings: Settings, index: StoreIndex, records: TaskRecords, ref: ModelRef, submit: Submit, *,
                  http: HttpClient | None = None) -> tuple[dict[str, Any], bool]:
    """Queue the repair of ``ref``; ``Conflict`` when no source is recorded or the recorded one cannot give its
    bytes back (the client sent nothing to correct, so never a 400)."""
    url, sha = recorded_source(index, records, ref)
    if not url:
        raise Conflict(f"No download source is recorded for {ref.folder}/{ref.relpath}, so it cannot be repaired "
                       "automatically. Download it again with POST /api/v1/downloads and its URL.",
                       code="no_source_recorded")
    params = repair_params(ref, url, sha)
    try:
        return submit_download(settings, index.layout, params, submit, http=http)
    except (InvalidRequest, InvalidPath) as exc:
        raise Conflict(f"The source recorded for {ref.folder}/{ref.relpath} ({url}) cannot be downloaded again: "
                       f"{exc.message}") from None
