"""The forked scan processes: each indexes chunks of directories the index has never seen, writing their documents
and directory signatures itself, and returns its counts and the files left to hash. billiard (Celery's own
process library) is used because a prefork worker's children are daemonic and the standard library refuses to
fork from those."""
from __future__ import annotations

import gc
from typing import Any

from shared.scan.directory import DirectoryIndexer
from shared.scan.totals import Totals
from shared.store.index import ModelDoc, StoreIndex
from shared.store.layout import Folder


class ChildScan(DirectoryIndexer):
    """A scan process's indexer: it only ever gets directories the index does not know, so it knows no lines or
    fingerprints, reads no old documents, and writes at once (it has nothing else to do meanwhile)."""

    def __init__(self, index: StoreIndex, folder: Folder, pi: int, root: str, full: bool, totals: Totals) -> None:
        super().__init__(index, folder, pi, root, full, totals, known_dirs=set(), known_fp={}, threaded=False)

    def indexed_docs(self, ids: list[str]) -> dict[str, ModelDoc | None]:
        # None of these directories' models was ever indexed whole (at most written by a scan cut off before
        # its lines; such a model is simply indexed again).
        return {}


_CHILD: dict[str, Any] = {}


def child_init(spec: tuple[StoreIndex, Folder, int, str, bool]) -> None:
    # Runs in each forked scan process; the index (and its Redis client, which reconnects after a fork)
    # comes from the parent's memory, not through pickling.
    _CHILD["spec"] = spec
    # The scan allocates tens of thousands of short-lived dicts and holds no cycles worth collecting; moving
    # what the fork inherited out of the collector's sight also keeps those pages shared.
    gc.freeze()
    gc.disable()


def index_new_dirs(rel_dirs: list[str]) -> dict[str, Any]:
    """In a scan process: index a chunk of new directories, write their documents and directory signatures,
    and return the counts and the files left to hash."""
    index, folder, pi, root, full = _CHILD["spec"]
    totals = Totals()
    scan = ChildScan(index, folder, pi, root, full, totals)
    for rel_dir in rel_dirs:
        scan._directory(rel_dir, [])
    scan._flush()
    return {"files": totals.files, "added": totals.added, "lazy": totals.lazy, "to_hash": totals.to_hash,
            "failed_dirs": scan.failed_dirs}
