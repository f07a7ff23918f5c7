"""The verify job: is every model file what it claims to be? For one model, a list, a folder or the whole store
it runs the structural checks of the file's format (full safetensors validation, GGUF/zip/pickle magic, HTML or
JSON saved under a model name), then recomputes the hashes in one pass and compares them with every hash known
for the file (the store index — recorded at download time, incl. the Hugging Face LFS sha256 — and the
sidecars). Each file ends ``ok``, ``mismatch``, ``invalid`` or ``unknown`` (nothing to compare with: the hashes
are recorded for next time). Progress is in bytes and the job stops at once when cancelled. A bad file is never
deleted: the user repairs it (re-download from its recorded source)."""
from __future__ import annotations

from typing import Any

from shared.jobs import JobContext
from shared.media.formats import validate_file
from shared.media.hashing import ALL, SHA256_ONLY, hash_file
from shared.services import Services
from shared.store.index import ModelDoc, StoreIndex
from shared.store.layout import Folder, StoreLayout
from shared.store.siblings import model_summary
from shared.store.targets import Target, iter_targets

STATUSES = ("ok", "mismatch", "invalid", "unknown")
#: Index fields that may hold a SHA256 recorded by a download (Civitai file hash, Hugging Face LFS oid).
_AUTOV1_MIN_BYTES = 2 * 1024 * 1024


def known_hashes(target: Target, entry: ModelDoc | None, folder: Folder) -> dict[str, set[str]]:
    """Every hash recorded for a file, by algorithm name (upper-case hex); several sources may disagree. The
    sidecars' hashes count only for a file that never shared its stem with another model (they may be the
    other's: ``siblings.model_summary``)."""
    known: dict[str, set[str]] = {}

    def add(name: str, value: Any) -> None:
        if isinstance(value, str) and value.strip():
            known.setdefault(name, set()).add(value.strip().upper().removeprefix("0X"))

    indexed = (entry.get("hashes") if entry else None) or {}
    for source in (indexed, model_summary(folder, target.path, entry).get("hashes") or {}):
        for name, value in source.items():
            add({"SHA-256": "SHA256", "SHA256": "SHA256"}.get(str(name).upper(), str(name)), value)
    return known


def compare(computed: dict[str, str], known: dict[str, set[str]]) -> tuple[str, str | None]:
    """``ok`` when at least one recorded hash matches and none disagrees, ``mismatch`` naming the first that
    disagrees, ``unknown`` when nothing comparable is recorded."""
    matched = False
    for name, value in computed.items():
        for recorded in known.get(name, ()):
            n = min(len(recorded), len(value)) if name == "AutoV3" else len(value)
            if recorded[:n] != value[:n] or (name != "AutoV3" and len(recorded) != len(value)):
                return "mismatch", f"{name} is {value[:16]}… but {recorded[:16]}… was recorded for this file"
            matched = True
    return ("ok", None) if matched else ("unknown", None)


def _hash(ctx: JobContext, target: Target, algorithms: tuple[str, ...], base: int, total: int) -> dict[str, str]:
    def progress(done: int) -> None:
        ctx.progress(base + done, total, unit="bytes", file=target.ref["relpath"])

    digests = hash_file(target.path, algorithms, progress=progress)
    digests.setdefault("AutoV2", digests["SHA256"][:10])
    if target.path.stat().st_size < _AUTOV1_MIN_BYTES:
        digests.pop("AutoV1", None)  # Civitai records none below 2 MiB; other tools hash a short read
    return digests


def verify_one(ctx: JobContext, index: StoreIndex, target: Target, mode: str, base: int,
               total: int) -> dict[str, Any]:
    """Check one file and record the verdict in the index. Returns the per-file result."""
    ref = target.ref
    if target.problem:
        return {"model": ref, "status": "invalid", "reason": target.problem}
    fmt, reason = validate_file(target.path)
    digests: dict[str, str] = {}
    entry = index.lookup(ref["folder"], ref["path_index"], ref["relpath"])
    if reason:
        status = "invalid"
    else:
        digests = _hash(ctx, target, ALL if mode == "all" else SHA256_ONLY, base, total)
        status, reason = compare(digests, known_hashes(target, entry, index.layout.folder(ref["folder"])))
    if entry is None:  # added by hand and never scanned: index it now so the listing shows the verdict
        index.record_file(target.path, hashes=digests if status == "unknown" else None)
    elif status == "unknown":
        index.set_hashes(ref["folder"], ref["path_index"], ref["relpath"], digests)
    index.set_verify_status(ref["folder"], ref["path_index"], ref["relpath"], status, reason)
    out: dict[str, Any] = {"model": ref, "status": status, "reason": reason, "format": fmt}
    if digests:
        out["sha256"] = digests["SHA256"]
    return out


def _size(target: Target) -> int:
    try:
        return 0 if target.problem else target.path.stat().st_size
    except OSError:  # vanished since it was listed: verify_one reports it
        return 0


def run_verify(ctx: JobContext, services: Services) -> dict[str, Any]:
    """Job entry point. Params: ``models`` (list of refs) or ``folder`` (else the whole store), ``mode``
    (``sha256`` default, or ``all`` to recompute and compare every hash)."""
    mode = ctx.params.get("mode") or "sha256"
    layout = StoreLayout.from_settings(services.settings)
    targets = list(iter_targets(layout, ctx.params))
    sizes = [_size(t) for t in targets]
    total = sum(sizes)
    index = StoreIndex(services.redis, services.settings, layout)
    result: dict[str, Any] = {"checked": 0, **{s: 0 for s in STATUSES}, "bytes_hashed": 0, "files": []}
    done = 0
    ctx.progress(0, total, force=True, unit="bytes")
    for target, size in zip(targets, sizes, strict=False):
        try:
            item = verify_one(ctx, index, target, mode, done, total)
        except OSError as exc:  # vanished or unreadable mid-run: report it, keep going
            item = {"model": target.ref, "status": "invalid", "reason": f"cannot read the file: {exc}"}
        done += size
        result["checked"] += 1
        result[item["status"]] += 1
        result["bytes_hashed"] += size if "sha256" in item else 0
        result["files"].append(item)
        ctx.progress(done, total, unit="bytes")
    ctx.progress(done, total, force=True, unit="bytes")
    return result
