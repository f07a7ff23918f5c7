"""Reading the index: documents, listing pages and search from this process's rows (caught up from the change
log), duplicates."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, cast

from redis.client import NEVER_DECODE

from shared.errors import NotFound
from shared.store.index.dirsigs import IndexDirs
from shared.store.index.docs import ModelDoc, load_doc, model_json, to_model
from shared.store.index.filters import Filters
from shared.store.index.keys import (
    _BATCH,
    _CATCH_UP_MOVES,
    _CATCH_UP_READS,
    _CHANGES_KEPT,
    CHANGES,
    DOC,
    GEN,
    SHA_OF,
    Q,
    model_id,
)
from shared.store.index.rows import Rows
from shared.store.index.words import give_back_memory
from shared.store.paths import normalise_relpath


class IndexReads(IndexDirs):
    """The reading half of ``StoreIndex``."""

    _cache: Rows
    _cache_lock: threading.Lock
    full_reloads: int
    _duplicates: tuple[str | None, frozenset[str]] | None

    def _require(self, folder: str, path_index: int, relpath: str) -> ModelDoc:
        doc = self.lookup(folder, path_index, relpath)
        if doc is None:
            raise NotFound(f"No model {folder}/{path_index}/{relpath} in the index; run a scan if it is on disk.")
        return doc

    def lookup(self, folder: str, path_index: int, relpath: str) -> ModelDoc | None:
        """The raw index document (``to_model`` turns it into a ``Model``), or None."""
        raw = self.redis.hget(DOC, model_id(folder, path_index, normalise_relpath(relpath)))
        return load_doc(raw) if raw else None

    def docs(self, ids: list[str]) -> list[ModelDoc]:
        return [load_doc(r) for r in self.redis.hmget(DOC, ids) if r] if ids else []

    def docs_or_none(self, ids: list[str]) -> list[ModelDoc | None]:
        return [load_doc(r) if r else None for r in self.redis.hmget(DOC, ids)] if ids else []

    def folder_counts(self) -> dict[str, int]:
        """How many models each folder holds (folders without any are left out)."""
        return self._rows().counts()

    def models(self, folder: str | None = None) -> Iterator[ModelDoc]:
        """Every indexed document (optionally of one folder), in id order, fetched in batches."""
        ids = self._rows().ids(folder)
        for start in range(0, len(ids), _BATCH):
            yield from self.docs(ids[start:start + _BATCH])
    def facets(self, folder: str | None = None) -> dict[str, Any]:
        """Models per base model, type and subfolder (``Rows.facets``)."""
        return self._rows().facets(folder)

    def listing_json(self, *, folder: str | None = None, q: str | None = None, sort: str = "name",
                     order: str = "asc", offset: int = 0, limit: int = 100,
                     filters: Filters | None = None) -> tuple[bytes, int]:
        """One page of ``Model``s as comma-joined JSON (UTF-8) and the total; ``q`` is the search, ``filters`` the
        rest of ``Filters``."""
        f = replace(filters or Filters(), q=q)
        ids, total = self._page_ids(folder, sort, order, offset, limit, f)
        raws = self.redis.execute_command("HMGET", DOC, *ids, **{NEVER_DECODE: True}) if ids else []
        # One JSON per model in Redis (the document); a page's Models are made from it, ~10 µs each
        return b",".join(model_json(raw) for raw in raws if raw), total

    def matching_ids(self, *, folder: str | None = None, q: str | None = None,
                     filters: Filters | None = None) -> list[str]:
        """Every id a listing with these filters holds, in name order (a bulk action on a search)."""
        ids, _total = self._page_ids(folder, "name", "asc", 0, 10**12, replace(filters or Filters(), q=q))
        return ids

    def _page_ids(self, folder: str | None, sort: str, order: str, offset: int, limit: int,
                  filters: Filters) -> tuple[list[str], int]:
        """The ids of one page and the total, from this process's sorted copy of the rows (those ``filters``
        keep)."""
        ordered = self._rows().matching(folder, sort, filters)
        total = len(ordered)
        if order == "desc":
            page = ordered[max(0, total - offset - limit):max(0, total - offset)][::-1]
        else:
            page = ordered[offset:offset + limit]
        return [r[0] for r in page], total

    def _rows(self) -> Rows:
        gen = cast(str | None, self.redis.get(GEN))
        with self._cache_lock:
            if self._cache.gen != gen:
                caught_up = self._catch_up(self._cache, gen)
                if caught_up is None:
                    # The rows are read after gen, so they are at least that new; a later gen re-reads what
                    # changed since, which converges. What changed is found by comparing: when it is little,
                    # it is moved into place as a catch-up does, and the sorted orders stay.
                    self.full_reloads += 1
                    cache, latest = self._cache, cast(dict[str, str], self.redis.hgetall(Q))
                    if not cache.rows:
                        caught_up = Rows.load(gen, latest)
                    else:
                        changed = cache.changes(latest)
                        caught_up = (cache.updated(gen, changed)
                                     if len(changed) * (cache.order_count() + 1) <= _CATCH_UP_MOVES
                                     else cache.rebuilt(gen, changed))
                    del latest, cache
                    give_back_memory()
                self._cache = caught_up
            return self._cache

    def _catch_up(self, cache: Rows, gen: str | None) -> Rows | None:
        """``cache`` brought to ``gen`` from the change log, or None when the log cannot tell (too far behind,
        trimmed, a change made without an entry, or too many models changed)."""
        if not (gen and gen.isdigit() and cache.gen and cache.gen.isdigit()):
            return None
        have, want = int(cache.gen), int(gen)
        if not 0 < want - have <= _CHANGES_KEPT:
            return None
        changed: set[str] = set()
        expect = have + 1
        for entry in cast(list[str], self.redis.lrange(CHANGES, have - want, -1)):
            g, _, joined = entry.partition("\0")
            if g != str(expect):
                return None  # a newer write landed meanwhile, or an entry is missing
            expect += 1
            changed.update(joined.split("\0"))
        if expect != want + 1 or len(changed) > _CATCH_UP_READS:
            return None
        ids = sorted(changed)
        rows = cast(list[str | None], self.redis.hmget(Q, ids))
        # Rows written again the same (a scan recording hashes) move nothing: only the others count
        moved = cache.differing(dict(zip(ids, rows, strict=False)))
        if len(moved) * (cache.order_count() + 1) > _CATCH_UP_MOVES:
            return None
        return cache.updated(gen, moved)

    def _sha_groups(self) -> dict[str, list[str]]:
        """The ids of each SHA256 the index knows."""
        groups: dict[str, list[str]] = {}
        for mid, sha in cast(dict[str, str], self.redis.hgetall(SHA_OF)).items():
            groups.setdefault(sha, []).append(mid)
        return groups

    def duplicate_ids(self) -> frozenset[str]:
        """Every model whose SHA256 another model shares (the library's "duplicates" filter), kept until the
        index changes: it reads the SHA256 of every model."""
        gen = cast(str | None, self.redis.get(GEN))
        known = self._duplicates
        if known is not None and gen is not None and known[0] == gen:
            return known[1]
        # Read after gen, so at least that new (a later gen reads again)
        ids = frozenset(mid for ids in self._sha_groups().values() if len(ids) > 1 for mid in ids)
        self._duplicates = (gen, ids)
        return ids

    def duplicates(self, folder: str | None = None) -> list[dict[str, Any]]:
        groups = self._sha_groups()
        out = []
        for sha, ids in sorted(groups.items()):
            if len(ids) > 1 and (folder is None or any(i.startswith(folder + "/") for i in ids)):
                out.append({"sha256": sha, "models": [to_model(d) for d in self.docs(sorted(ids))]})
        return out
