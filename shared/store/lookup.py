"""Lookups of the model index by what a workflow knows of a model: its folder and relative path, its file name
(or stem) anywhere in a folder, its SHA256 (whole, or the 10/12-hex prefixes A1111 prints: AutoV2 and TI hashes),
its AutoV3 or AutoV1, or the Civitai version it was downloaded from.

Each process keeps these tables in memory, built once from the index documents (``depot:store:doc``, read in
``HSCAN`` chunks so Redis is never blocked by one huge reply) and then kept current from the index's change log
(``depot:store:changes``: "gen NUL id NUL id ..." per change, see shared/store/index.py): a process a few changes
behind re-reads only the documents that changed. Nothing here touches the disk."""
from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import orjson
import redis as redis_lib

from shared.store.index import CHANGES, DOC, GEN

_SCAN_CHUNK = 2000
#: How many change-log entries a process may be behind and still catch up (the log keeps 64).
_CATCH_UP_ENTRIES = 64
_CIVITAI_VERSION = re.compile(r"(?:[?&]modelVersionId=|/api/download/models/|/model-versions/)(\d+)")


@dataclass(frozen=True)
class Entry:
    """What the lookups need of one indexed model."""

    id: str
    folder: str
    path_index: int
    relpath: str
    sha256: str | None
    autov3: str | None
    autov1: str | None
    civitai_version: int | None

    @property
    def basename(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]

    @property
    def order(self) -> tuple[str, int, str]:
        return self.folder, self.path_index, self.relpath


def entry_of(mid: str, doc: dict[str, Any]) -> Entry:
    hashes = doc.get("hashes") or {}
    version = _CIVITAI_VERSION.search(doc.get("source_url") or "")
    return Entry(mid, doc["folder"], doc["path_index"], doc["relpath"], _upper(hashes.get("SHA256")),
                 _upper(hashes.get("AutoV3")), _upper(hashes.get("AutoV1")),
                 int(version.group(1)) if version else None)


def stem(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return base[:dot] if dot > 0 else base


class Tables:
    """The lookup tables of one generation. Every key is stored under its folder and under ``None`` (any
    folder), so a reference without a folder is looked up the same way."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self._by: dict[str, dict[Any, set[str]]] = {k: {} for k in (
            "rel", "name", "name_ci", "stem", "sha", "sha10", "sha12", "v3", "v1", "civitai")}

    def __len__(self) -> int:
        return len(self.entries)

    def _keys(self, e: Entry) -> Iterator[tuple[str, Any]]:
        for folder in (e.folder, None):
            yield "rel", (folder, e.relpath)
            yield "name", (folder, e.basename)
            yield "name_ci", (folder, e.basename.lower())
            yield "stem", (folder, stem(e.basename).lower())
        if e.sha256:
            yield "sha", e.sha256
            yield "sha10", e.sha256[:10]
            yield "sha12", e.sha256[:12]
        if e.autov3:
            yield "v3", e.autov3
        if e.autov1:
            yield "v1", e.autov1
        if e.civitai_version is not None:
            yield "civitai", e.civitai_version

    def put(self, e: Entry) -> None:
        self.drop(e.id)
        self.entries[e.id] = e
        for table, key in self._keys(e):
            self._by[table].setdefault(key, set()).add(e.id)

    def drop(self, mid: str) -> None:
        old = self.entries.pop(mid, None)
        if old is None:
            return
        for table, key in self._keys(old):
            ids = self._by[table].get(key)
            if ids is not None:
                ids.discard(mid)
                if not ids:
                    del self._by[table][key]

    def _get(self, table: str, key: Any) -> list[Entry]:
        return sorted((self.entries[i] for i in self._by[table].get(key, ())), key=lambda e: e.order)

    def by_relpath(self, folder: str | None, relpath: str) -> list[Entry]:
        return self._get("rel", (folder, relpath))

    def by_name(self, folder: str | None, name: str, *, ignore_case: bool = False) -> list[Entry]:
        return self._get("name_ci", (folder, name.lower())) if ignore_case else self._get("name", (folder, name))

    def by_stem(self, folder: str | None, name: str) -> list[Entry]:
        return self._get("stem", (folder, name.lower()))

    def by_hash(self, kind: str, value: str) -> list[Entry]:
        """``SHA256`` (whole, or a 10/12-hex prefix), ``AutoV2`` (= SHA256[:10]), ``AutoV3``, ``AutoV1``."""
        value = value.upper()
        if kind == "AutoV2" or (kind == "SHA256" and len(value) == 10):
            return self._get("sha10", value)
        if kind == "SHA256":
            return self._get("sha", value) if len(value) == 64 else \
                self._get("sha12", value) if len(value) == 12 else []
        return self._get({"AutoV3": "v3", "AutoV1": "v1"}.get(kind, ""), value) if kind in ("AutoV3", "AutoV1") \
            else []

    def by_civitai_version(self, version: int) -> list[Entry]:
        return self._get("civitai", version)


class ModelLookup:
    """The tables for one process (thread-safe; ``reading()`` holds them still while a request matches)."""

    def __init__(self, redis: redis_lib.Redis) -> None:
        self.redis = redis
        self._tables = Tables()
        self._gen: str | None = None
        self._lock = threading.Lock()
        self.full_builds = 0  # times this process read every document (the rest were caught up)

    @contextmanager
    def reading(self) -> Iterator[Tables]:
        """The tables brought up to the index's current generation, locked for the caller."""
        gen = self.redis.get(GEN)
        with self._lock:
            if gen != self._gen:
                if not self._catch_up(gen):
                    self._build(gen)
            yield self._tables

    def _build(self, gen: str | None) -> None:
        # Documents read after ``gen`` are at least that new; a later generation re-reads what changed since.
        tables = Tables()
        for mid, raw in self.redis.hscan_iter(DOC, count=_SCAN_CHUNK):
            tables.put(entry_of(mid, orjson.loads(raw)))
        self._tables, self._gen = tables, gen
        self.full_builds += 1

    def _catch_up(self, gen: str | None) -> bool:
        found = changes_between(self.redis, self._gen, gen)
        if found is None:
            return False
        self._apply(found[0])
        self._gen = found[1]
        return True

    def _apply(self, ids: Iterable[str]) -> None:
        ids = sorted(ids)
        for start in range(0, len(ids), _SCAN_CHUNK):
            batch = ids[start:start + _SCAN_CHUNK]
            for mid, raw in zip(batch, self.redis.hmget(DOC, batch)):
                if raw:
                    self._tables.put(entry_of(mid, orjson.loads(raw)))
                else:
                    self._tables.drop(mid)


def changes_between(redis: redis_lib.Redis, have: str | None, want: str | None) -> tuple[set[str], str] | None:
    """The ids changed since generation ``have`` (through ``want`` at least, and any later change already
    logged) and the generation that brings, or None when the log cannot tell (no earlier generation, too far
    behind, trimmed, or an entry missing)."""
    if not (have and want and have.isdigit() and want.isdigit()):
        return None
    first, last = int(have), int(want)
    if not 0 < last - first <= _CATCH_UP_ENTRIES:
        return None
    changed: set[str] = set()
    expect = first + 1
    for entry in redis.lrange(CHANGES, -_CATCH_UP_ENTRIES, -1):
        g, _, joined = entry.partition("\0")
        if not g.isdigit() or int(g) <= first:
            continue
        if int(g) != expect:
            return None  # trimmed past ``have``, or an entry is missing
        expect += 1
        changed.update(joined.split("\0"))
    return (changed, str(expect - 1)) if expect > last else None


def _upper(value: Any) -> str | None:
    return str(value).upper() if value else None
