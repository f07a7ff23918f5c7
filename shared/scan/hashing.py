"""Hashing after the walk: the files the walk queued, and those an earlier scan queued but never hashed."""
from __future__ import annotations

import os

from shared.jobs import JobContext
from shared.media.hashing import ALL, hash_file
from shared.scan.locks import RootLocks
from shared.scan.totals import Totals
from shared.store.index import ModelDoc, StoreIndex, split_id


def left_unhashed(index: StoreIndex, totals: Totals) -> None:
    """Queue the files of the walked roots that an earlier scan queued for hashing but never hashed (it was
    cancelled, or its worker died): their directories look unchanged, so the walk alone would not see them."""
    queued = {mid for _, mid, _ in totals.to_hash}
    roots = {(folder, pi): root for folder, pi, root in totals.walked}
    ids = [mid for mid in index.unhashed() if mid not in queued and split_id(mid)[:2] in roots]
    stale = []
    for mid, doc in zip(ids, index.docs_or_none(ids), strict=False):
        if doc and not doc.get("hashed") and doc["size"] <= index.settings.lazy_hash_bytes:
            totals.to_hash.append((doc, mid, os.path.join(roots[split_id(mid)[:2]], doc["relpath"])))
        else:
            stale.append(mid)  # gone, hashed since, or now past the lazy limit (a full scan hashes it)
    index.forget_unhashed(stale)


def hash_pending(ctx: JobContext, index: StoreIndex, totals: Totals, locks: RootLocks) -> None:
    """Hash new/changed files after the walk, so the listing is complete before the slow part starts (the
    roots stay locked meanwhile)."""
    left_unhashed(index, totals)
    total = sum(doc["size"] for doc, _, _ in totals.to_hash)
    done_before = 0
    batch: list[ModelDoc] = []
    for doc, _mid, path in totals.to_hash:
        def progress(n: int, base: int = done_before) -> None:
            locks.renew()
            ctx.progress(base + n, total, phase="hashing", files=totals.files, bytes=base + n, unit="bytes")
        try:
            st = os.stat(path)
            hashes = hash_file(path, ALL, progress=progress)
        except FileNotFoundError:
            continue  # vanished while we were busy; the next scan drops it
        if (st.st_size, st.st_mtime_ns) != (doc["size"], doc["mtime_ns"]):
            continue  # changed while hashing: the next scan sees it as changed
        doc["hashes"], doc["hashed"] = {**doc["hashes"], **hashes}, True
        totals.hashed += 1
        totals.bytes_hashed += doc["size"]
        done_before += doc["size"]
        batch.append(doc)
        if len(batch) >= 100:
            index.put_docs(batch)
            batch = []
    index.put_docs(batch)
    totals.to_hash = []
