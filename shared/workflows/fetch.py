"""Fetch what a workflow is missing, once for the whole fleet: one download per missing reference that has a
source, into the folder and relative path the workflow names (so it loads unchanged), with the workflow's own
SHA256 checked inline by the download, each through ``submit_download`` (its idempotency key makes concurrent
fetches of one workflow share one transfer per file); then one ``workflow`` task that tracks those downloads.

Knows no Celery: the caller passes its dispatcher's ``submit``."""
from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass, field
from typing import Any

from shared.config import Settings
from shared.downloads.submit import Submit, submit_download
from shared.errors import DepotError
from shared.store.layout import StoreLayout
from shared.upstream.http import HttpClient
from shared.workflows.check import Result
from shared.workflows.refs import Reference

#: States of a reference that a fetch downloads (``mismatch``: the file of that name has other bytes than the
#: workflow's hash says, so the right file is fetched beside it only when the workflow names a source).
FETCHED_STATES = ("missing",)


@dataclass
class Started:
    """What a fetch started: the workflow task (None when nothing needed fetching), its downloads and what it
    could not fetch, with why."""

    task: dict[str, Any] | None
    created: bool
    children: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def download_params(ref: Reference) -> dict[str, Any]:
    """The ``POST /downloads`` fields that put this reference's file where the workflow looks for it."""
    assert ref.source is not None
    params: dict[str, Any] = {"url": ref.source.url}
    if ref.folder:
        params["folder"] = ref.folder
    relpath = ref.relpath or ref.source.filename
    if relpath:
        subfolder, filename = posixpath.split(relpath)
        params["filename"] = filename
        if subfolder:
            params["subfolder"] = subfolder
    sha = ref.expected_hash if ref.hash_type == "SHA256" else None
    if not (sha and len(sha) == 64):
        # A workflow that names only a short hash (AutoV2/AutoV3) still gets its file checked in full: the
        # Civitai version found by that hash lists the file's SHA256
        sha = ref.source.sha256
    if sha and len(sha) == 64:
        params["sha256"] = sha.lower()
    return params


def start_fetch(settings: Settings, layout: StoreLayout, result: Result, submit: Submit, *,
                title: str = "workflow", http: HttpClient | None = None) -> Started:
    """Submit a download per fetchable reference of ``result``, then the workflow task over them."""
    children: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for ref in result.references:
        if ref.state not in FETCHED_STATES:
            continue
        if ref.source is None:
            skipped.append({"name": ref.name, "folder": ref.folder, "code": "no_source",
                            "message": "The workflow gives no URL for this model and Civitai does not know its "
                                       "hash: download it yourself (Add model) or add it to the store."})
            continue
        try:
            task, created = submit_download(settings, layout, download_params(ref), submit, http=http)
        except DepotError as exc:
            skipped.append({"name": ref.name, "folder": ref.folder, "code": exc.code, "message": exc.message})
            continue
        children.append({"task_id": task["id"], "name": ref.name, "folder": ref.folder,
                         "relpath": ref.relpath, "created": created})
    if not children:
        return Started(None, False, children, skipped)
    ids = sorted(c["task_id"] for c in children)
    # The same set of downloads is one workflow task: a second fetch of the workflow while the first runs
    # gets the live task back.
    key = "workflow:" + hashlib.sha256(",".join(ids).encode()).hexdigest()[:32]
    params = {"title": title, "children": [{k: c[k] for k in ("task_id", "name", "folder", "relpath")}
                                           for c in children],
              "skipped": skipped}
    task, created = submit("workflow", params, idem_key=key)
    return Started(task, created, children, skipped)
