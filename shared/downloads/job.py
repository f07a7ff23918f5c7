"""The download job: follow the task's plan (made when it was submitted, ``submit.py``, so every attempt fetches
the same artifact), take the lease on the target path, adopt this task's partial from an earlier attempt,
transfer with inline hashing, verify (sha256, safetensors structure), choose a GGUF's folder from its header
(``routing.py``), publish atomically, then preview, ``NAME.md`` sidecar and the store index entry. Pause keeps
the partial; cancel removes it; a content error removes it."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from shared.downloads.describe import save_download_preview, write_md
from shared.downloads.plan import Plan
from shared.downloads.publish import (
    TargetLease,
    adopt_partial,
    check_free_space,
    publish,
    relocate_partial,
    remove_partials,
    target_path,
)
from shared.downloads.resolve import key_for
from shared.downloads.routing import route
from shared.downloads.segment_file import SegmentMap
from shared.downloads.segments import SplitOptions
from shared.downloads.submit import plan_for
from shared.downloads.transfer import Transfer, sleep_checking
from shared.errors import BadContent, Conflict, HashMismatch, JobInterrupted
from shared.jobs import JobContext
from shared.media.formats import validate_safetensors
from shared.media.hashing import ALL, SHA256_ONLY, hash_file
from shared.partials import partial_for
from shared.services import Services
from shared.states import TaskState
from shared.store.index import StoreIndex
from shared.store.layout import StoreLayout
from shared.upstream.http import HttpClient
from shared.upstream.origin_gate import OriginGate
from shared.upstream.urls import SOURCE_NAMES

_SAFETENSORS = (".safetensors", ".sft")


def run_download(ctx: JobContext, services: Services) -> dict[str, Any]:
    """Entry point called by the worker. Returns ``{"model", "already_present", "hashes"}``."""
    settings, params = services.settings, ctx.params
    http = HttpClient(settings)
    # Every download is planned when it is submitted (``submit.py``); a task queued without a plan (by an older
    # version, still in Redis) is resolved here, as it was then.
    plan = Plan.from_dict(params["plan"]) if params.get("plan") else plan_for(settings, http, params)
    layout = StoreLayout.from_settings(settings)
    index = StoreIndex(services.redis, settings, layout)
    folder, path_index, relpath, target = target_path(layout, plan, params)
    target.parent.mkdir(parents=True, exist_ok=True)
    ctx.log(f"downloading {plan.source} {plan.filename} to {folder}/{relpath}")
    with TargetLease(services.redis, target, settings) as lease:
        present = _already_present(target, plan, params, index)
        if present is not None:
            remove_partials(target, ctx.task_id)
            return present
        hashes = _fetch(ctx, services, http, plan, target, lease)
        part = partial_for(target, ctx.host, ctx.task_id, ctx.attempt)
        where = route(part, target.name, folder, chosen=bool(params.get("folder")))
        if where is not None:
            ctx.log(("warning: " if where.warning else "") + where.note)
        if where is None or where.folder == folder:
            result = _publish(ctx, services, http, plan, params, index, part, target, hashes)
        else:
            # The header sends the file to another folder: same name, that folder's first path.
            folder, _pi, relpath, routed = target_path(layout, plan, {**params, "folder": where.folder,
                                                                       "path_index": 0})
            routed.parent.mkdir(parents=True, exist_ok=True)
            with TargetLease(services.redis, routed, settings):
                part = relocate_partial(part, partial_for(routed, ctx.host, ctx.task_id, ctx.attempt))
                result = _publish(ctx, services, http, plan, params, index, part, routed, hashes)
    if where is not None:
        result["gguf"] = where.as_result(params.get("folder") or plan.folder)
    if not result["already_present"]:
        ctx.log(f"published {folder}/{relpath} ({hashes.get('SHA256', '')[:12]})")
    return result


def _publish(ctx: JobContext, services: Services, http: HttpClient, plan: Plan, params: dict[str, Any],
             index: StoreIndex, part: Path, target: Path, hashes: dict[str, str]) -> dict[str, Any]:
    """Under the target's lease: give the verified ``part`` the model name (unless that file is already
    there), then the preview, the ``NAME.md`` sidecar and the index entry."""
    if target.exists() and not params.get("overwrite"):
        present = _compare_existing(part, target, hashes, index)
        if present is not None:
            return present
    publish(part, target, ctx.fence)
    nsfw_level = services.nsfw_level()
    save_download_preview(http, nsfw_level, plan, target, ctx.log)
    write_md(target, plan, hashes, nsfw_level, chosen=bool(params.get("filename")))
    model = index.record_file(target, hashes=hashes)
    if checked := _checked_against(plan):
        # The bytes were checked against their source's hash on the way in: that is a verification, said once,
        # the same way a verify job says it
        index.set_verify_status(model["folder"], model["path_index"], model["relpath"], "ok", checked)
        model["verify_status"] = "ok"
    return {"model": model, "already_present": False, "hashes": hashes}


def _checked_against(plan: Plan) -> str | None:
    """What ``_verify`` held the downloaded bytes to, in words; None when nothing was known to hold them to."""
    where = SOURCE_NAMES.get(plan.source)
    if plan.sha256:
        return f"SHA256 matches {where}" if where else "SHA256 matches the one given"
    if plan.hashes.get("BLAKE3"):
        return "BLAKE3 matches Civitai"
    return None


def _fetch(ctx: JobContext, services: Services, http: HttpClient, plan: Plan, target: Path,
           lease: TargetLease) -> dict[str, str]:
    settings = services.settings
    part = partial_for(target, ctx.host, ctx.task_id, ctx.attempt)
    have = adopt_partial(target, ctx.task_id, part)

    def save_map(text: str) -> None:
        services.records.save_segments(ctx.task_id, ctx.attempt, text)  # fenced: a stale attempt writes nothing

    split = SplitOptions(settings.download_connections, settings.segment_bytes,
                         OriginGate(services.redis, settings.origin_connections), save_map)
    # A partial written by several connections is as long as the whole file; its map says what is in it
    saved = SegmentMap.loads(services.records.segments(ctx.task_id)) if have else None
    if saved is not None and split.connections < 2:
        part.unlink()  # one stream now: its bytes cannot be told from the holes without the map's help
        have, saved = 0, None
    if saved is not None:
        have = sum(e - s for s, e in saved.done)
        ctx.log(f"resuming: {have} of {saved.total} bytes are here")
    elif have:
        ctx.log(f"resuming from byte {have}")
    check_free_space(target.parent, None if plan.size is None else plan.size - have)

    def progress(done: int, total: int | None, **extra: Any) -> None:
        lease.check()
        ctx.progress(done, total, unit="bytes", **extra)

    transfer = Transfer(http, plan, key_for(settings, plan.key_name), part, chunk_bytes=settings.chunk_bytes,
                        algorithms=settings.download_hashes,
                        retries=settings.download_retries, progress=progress, sleep=sleep_checking(ctx.check),
                        log=ctx.log, unreachable_s=settings.unreachable_s, split=split, saved_map=saved)
    try:
        outcome = transfer.run()
        _verify(plan, part, outcome.hashes)
    except JobInterrupted as exc:
        if exc.state == TaskState.CANCELLED.value:
            remove_partials(target, ctx.task_id)
        raise
    except BadContent:
        # Resuming would only append to bytes that are not the model: start over next time
        remove_partials(target, ctx.task_id)
        raise
    ctx.progress(outcome.size, outcome.size, force=True, unit="bytes")
    return outcome.hashes


def _verify(plan: Plan, part: Path, hashes: dict[str, str]) -> None:
    got = hashes.get("SHA256", "").lower()
    if plan.sha256 and got != plan.sha256.lower():
        raise HashMismatch(f"The downloaded file's SHA256 {got[:16]}… differs from the expected "
                           f"{plan.sha256[:16]}…; nothing was saved. The upstream file may have changed or been "
                           "corrupted: retry, or check the expected hash.")
    blake = plan.hashes.get("BLAKE3")
    if not plan.sha256 and blake and hashes.get("BLAKE3", "").upper() != blake.upper():
        raise HashMismatch("The downloaded file's BLAKE3 differs from the one Civitai publishes; nothing was saved.")
    if plan.filename.lower().endswith(_SAFETENSORS):
        ok, reason = validate_safetensors(part)
        if not ok:
            raise BadContent(f"The downloaded file is not a valid safetensors file ({reason}); nothing was saved.")


def _existing_sha(target: Path, index: StoreIndex) -> str:
    ref = index.layout.locate(target)
    doc = index.lookup(ref["folder"], ref["path_index"], ref["relpath"]) if ref else None
    st = target.stat()
    if doc and doc.get("hashed") and doc.get("size") == st.st_size and doc.get("mtime_ns") == st.st_mtime_ns:
        sha = (doc.get("hashes") or {}).get("SHA256")
        if sha:
            return str(sha).lower()
    return hash_file(target, SHA256_ONLY)["SHA256"].lower()


def _present_result(target: Path, index: StoreIndex) -> dict[str, Any]:
    hashes = hash_file(target, ALL)
    model = index.record_file(target, hashes=hashes)
    return {"model": model, "already_present": True, "hashes": hashes}


def _already_present(target: Path, plan: Plan, params: dict[str, Any], index: StoreIndex) -> dict[str, Any] | None:
    """Before any transfer: the same file is already there → done; a different one → conflict (unless
    overwrite). Without an expected hash the comparison waits until the bytes are in."""
    if not target.exists() or not plan.sha256:
        return None
    if _existing_sha(target, index) == plan.sha256.lower():
        return _present_result(target, index)
    if params.get("overwrite"):
        return None
    raise Conflict(f"A different file already exists at {target.name}. Delete or rename it, choose another file "
                   "name, or download with overwrite=true.")


def _compare_existing(part: Path, target: Path, hashes: dict[str, str], index: StoreIndex) -> dict[str, Any] | None:
    same = _existing_sha(target, index) == hashes.get("SHA256", "").lower()
    os.unlink(part)
    if same:
        return _present_result(target, index)
    raise Conflict(f"A different file already exists at {target.name}; the download was discarded. Delete or "
                   "rename it, choose another file name, or download with overwrite=true.")
