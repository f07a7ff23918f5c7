"""Writing the index: documents in batched transactions with the change log, one file after a publish, hashes and
verify verdicts, removals."""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shared.errors import NotFound
from shared.keys import EVENTS_CHANNEL
from shared.media.gguf import misplacement
from shared.store import sidecar_files as sidecars
from shared.store.index.dirsigs import _side_sig, stat_sig
from shared.store.index.docs import (
    ModelDoc,
    _search_row,
    build_doc,
    display_name,
    keep_known,
    keep_shared,
    pack_doc,
    same_file,
    same_hashed_file,
    to_model,
)
from shared.store.index.keys import (
    _BATCH,
    _CHANGES_KEPT,
    _LOG_CHANGE,
    CHANGES,
    DOC,
    GEN,
    LEGACY_SHA_SETS,
    MODEL_JSON,
    SHA_OF,
    UNHASHED,
    Q,
    model_id,
    split_id,
)
from shared.store.index.reads import IndexReads
from shared.store.paths import normalise_relpath
from shared.store.siblings import sibling_names


class IndexWrites(IndexReads):
    """The writing half of ``StoreIndex``."""

    def put_docs(self, docs: Iterable[ModelDoc], *, queued: frozenset[str] | set[str] = frozenset()) -> int:
        """Write documents in batches, each one transaction of a few multi-member commands. ``queued``: ids the
        scan will hash, recorded with their documents so a cancel or a crash before the hash is not forgotten;
        a hashed document leaves that record."""
        docs = list(docs)
        for start in range(0, len(docs), _BATCH):
            self._put_batch(docs[start:start + _BATCH], queued)
        return len(docs)

    def _put_batch(self, docs: list[ModelDoc], queued: frozenset[str] | set[str]) -> None:
        # A repeated id keeps its last document (the end state of writing them in order).
        by_id: dict[str, ModelDoc] = {}
        for d in docs:
            by_id[model_id(d["folder"], d["path_index"], d["relpath"])] = d
        ids = list(by_id)
        # Field maps for HSET (typed loosely: redis-py's mapping type is invariant in its keys)
        doc_map: dict[Any, Any] = {}
        q_map: dict[Any, Any] = {}
        sha_map: dict[Any, Any] = {}
        no_sha: list[str] = []
        for mid, d in by_id.items():
            name = display_name(d)
            doc_map[mid] = pack_doc(d)
            q_map[mid] = _search_row(mid, d, name, name.lower())
            if sha := (d.get("hashes") or {}).get("SHA256"):
                sha_map[mid] = sha
            else:
                no_sha.append(mid)
        if not by_id:
            return
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(DOC, mapping=doc_map)
        pipe.hset(Q, mapping=q_map)
        if sha_map:
            pipe.hset(SHA_OF, mapping=sha_map)
        if no_sha:
            pipe.hdel(SHA_OF, *no_sha)
        if queued and (waiting := [mid for mid in ids if mid in queued]):
            pipe.sadd(UNHASHED, *waiting)
        if hashed := [mid for mid, d in by_id.items() if d.get("hashed")]:
            pipe.srem(UNHASHED, *hashed)
        self._changed(pipe, ids)
        pipe.execute()

    def _changed(self, pipe: Any, ids: list[str]) -> None:
        """Queue the ``gen`` bump and its change-log entry on a write's transaction (ids never hold NUL). EVAL
        rather than a registered script: a pipeline holding one first asks Redis whether it knows it, a round
        trip per batch."""
        pipe.eval(_LOG_CHANGE, 2, GEN, CHANGES, "\0".join(ids), _CHANGES_KEPT, EVENTS_CHANNEL)

    def drop_legacy_keys(self) -> int:
        """Delete what an older version kept beside the documents and nothing reads now: each model's ``Model``
        JSON and a set of ids per SHA256 (about 40 % of the index's memory). Returns the keys deleted."""
        gone = self.redis.delete(MODEL_JSON)
        batch: list[str] = []
        for key in self.redis.scan_iter(match=LEGACY_SHA_SETS, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                gone += self.redis.unlink(*batch)
                batch = []
        return gone + (self.redis.unlink(*batch) if batch else 0)

    def remove_ids(self, ids: Iterable[str], *, edit_dirs: bool = True) -> int:
        """Drop models from the index; ``edit_dirs=False`` when the caller (the scan) rewrites the directory
        signatures itself."""
        ids = list(ids)
        if not ids:
            return 0
        pipe = self.redis.pipeline(transaction=True)
        for key in (DOC, Q, SHA_OF):
            pipe.hdel(key, *ids)
        pipe.srem(UNHASHED, *ids)
        self._changed(pipe, ids)
        pipe.execute()
        for mid in ids if edit_dirs else ():
            folder, pi, rel = split_id(mid)
            self.edit_dir_line(folder, pi, rel, None)
        return len(ids)
    def record_file(self, path: Path, *, hashes: dict[str, str] | None = None,
                    moved_from: ModelDoc | None = None) -> dict[str, Any]:
        """Index one file (after a download or move publishes it) and return its ``Model``; ``moved_from``: the
        document of the model it was before a move, whose hashes and verification it keeps. The indexed models
        that share its stem are brought up to date too."""
        ref = self.layout.locate(path)
        if ref is None:
            raise NotFound(f"{path} is not inside any model folder of the store.")
        path = Path(path)
        names = set(os.listdir(path.parent))
        doc = self._record(ref, path, names, hashes, moved_from=moved_from)
        assert doc is not None
        self._refresh(ref, path, names)
        return to_model(doc)

    def refresh_siblings(self, path: Path) -> None:
        """Re-index the indexed models that share ``path``'s stem in its directory, after ``path`` was moved away
        or deleted (their sidecar signature counts the models of the stem)."""
        ref = self.layout.locate(path)
        try:
            names = set(os.listdir(Path(path).parent))
        except OSError:
            return  # its directory went too: so did every sibling
        if ref is not None:
            self._refresh(ref, Path(path), names)

    def _refresh(self, ref: dict[str, Any], path: Path, names: set[str]) -> None:
        rel_dir = ref["relpath"].rpartition("/")[0]
        for name in sibling_names(self.layout.folder(ref["folder"]), path.name, names):
            sib = {**ref, "relpath": f"{rel_dir}/{name}" if rel_dir else name}
            self._record(sib, path.parent / name, names, None, only_known=True)

    def _record(self, ref: dict[str, Any], path: Path, names: set[str], hashes: dict[str, str] | None, *,
                only_known: bool = False, moved_from: ModelDoc | None = None) -> ModelDoc | None:
        """Index one file from its directory's listing ``names``. ``only_known``: only a model the index holds
        whose file is unchanged since (another is left to the next scan, which hashes it); None otherwise."""
        old = moved_from or (None if hashes else self.lookup(ref["folder"], ref["path_index"], ref["relpath"]))
        if only_known and old is None:
            return None
        try:
            st = path.stat()
        except FileNotFoundError:
            if only_known:
                return None
            raise
        stem = sidecars.stem_of(path.name)
        models = 1 + len(sibling_names(self.layout.folder(ref["folder"]), path.name, names))
        preview = sidecars.preview_from_names(stem, names)
        doc = build_doc(ref["folder"], ref["path_index"], ref["relpath"], st, sidecars.read_summary(path, names),
                        preview, hashes, shared=models > 1)
        if preview is not None:
            with contextlib.suppress(OSError):
                doc["preview_v"] = os.stat(path.parent / preview).st_mtime_ns // 1000
        if misplaced := misplacement(ref["folder"], path):
            doc["misplaced"] = misplaced
        if old is not None and (same_file(doc, old, inode=False) if moved_from is not None
                                else same_hashed_file(doc, old) or only_known and same_file(doc, old)):
            keep_known(doc, old)  # the same bytes: e.g. only a sidecar was written, or the file was moved
        elif only_known:
            return None
        elif not hashes:
            keep_shared(doc, old)
        self.put_docs([doc])
        self.edit_dir_line(ref["folder"], ref["path_index"], ref["relpath"],
                           stat_sig(st.st_size, st.st_mtime_ns, st.st_ino, _side_sig(stem, path.parent, names, models)))
        return doc

    def set_hashes(self, folder: str, path_index: int, relpath: str, hashes: dict[str, str]) -> None:
        doc = self._require(folder, path_index, relpath)
        doc["hashes"], doc["hashed"] = {**(doc.get("hashes") or {}), **hashes}, True
        self.put_docs([doc])

    def set_verify_status(self, folder: str, path_index: int, relpath: str, status: str,
                          reason: str | None = None) -> None:
        doc = self._require(folder, path_index, relpath)
        doc["verify_status"], doc["verify_reason"], doc["verified_at"] = status, reason, time.time()
        # Its search row changes too (the verdict is a filter), so web processes catch up on it like any change.
        self.put_docs([doc])

    def remove(self, folder: str, path_index: int, relpath: str) -> bool:
        mid = model_id(folder, path_index, normalise_relpath(relpath))
        return bool(self.redis.hexists(DOC, mid)) and self.remove_ids([mid]) == 1
