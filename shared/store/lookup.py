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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, cast

import orjson
import redis as redis_lib

from shared.store.index import CHANGES, DOC, GEN

_SCAN_CHUNK = 2000
#: How many change-log entries a process may be behind and still catch up (the log keeps 64).
_CATCH_UP_ENTRIES = 64
_CIVITAI_VERSION = re.compile(r"(?:[?&]modelVersionId=|/api/download/models/|/model-versions/)(\d+)")


class Entry(NamedTuple):
    """What the lookups know of one indexed model (made on demand: the tables keep plain tuples)."""

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


#: One model as the tables keep it, beside its id ("folder/path_index/relpath", which gives the rest):
#: (SHA256, AutoV3, AutoV1, Civitai version).
Row = tuple["str | None", "str | None", "str | None", "int | None"]


def row_of(doc: dict[str, Any]) -> Row:
    hashes = doc.get("hashes") or {}
    version = _CIVITAI_VERSION.search(doc.get("source_url") or "")
    return (_upper(hashes.get("SHA256")), _upper(hashes.get("AutoV3")), _upper(hashes.get("AutoV1")),
            int(version.group(1)) if version else None)


def _entry(mid: str, row: Row) -> Entry:
    folder, pi, relpath = mid.split("/", 2)
    return Entry(mid, folder, int(pi), relpath, *row)


class Tables:
    """The lookup tables of one generation. Everything is kept as strings and plain tuples in flat dicts
    (``key -> id`` or ``key -> (id, ...)``) so that 100,000 models cost the garbage collector nothing to
    traverse and a lookup is one dict probe. Keys: the lower-cased file name in its folder, SHA256[:10] (AutoV2),
    SHA256[:12] (A1111 TI hashes; a whole SHA256 is checked against the row), AutoV3, AutoV1, Civitai version."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self._by: dict[str, Any] = {}
        self._folders: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.rows)

    @staticmethod
    def _keys(mid: str, row: Row) -> list[str]:
        sha, v3, v1, version = row
        keys = [f"n\0{mid[:mid.index('/')]}\0{mid.rsplit('/', 1)[-1].lower()}"]
        if sha:
            keys += [f"a\0{sha[:10]}", f"b\0{sha[:12]}"]
        if v3:
            keys.append(f"3\0{v3}")
        if v1:
            keys.append(f"1\0{v1}")
        if version is not None:
            keys.append(f"c\0{version}")
        return keys

    def put(self, mid: str, row: Row) -> None:
        if mid in self.rows:
            self.drop(mid)
        self.rows[mid] = row
        folder = mid[:mid.index("/")]
        self._folders[folder] = self._folders.get(folder, 0) + 1
        by = self._by
        for key in self._keys(mid, row):
            have = by.get(key)
            if have is None:
                by[key] = mid
            elif isinstance(have, str):
                by[key] = (have, mid)
            else:
                by[key] = (*have, mid)

    def drop(self, mid: str) -> None:
        row = self.rows.pop(mid, None)
        if row is None:
            return
        folder = mid[:mid.index("/")]
        left = self._folders[folder] - 1
        if left:
            self._folders[folder] = left
        else:
            del self._folders[folder]
        for key in self._keys(mid, row):
            have = self._by.get(key)
            if have == mid:
                del self._by[key]
            elif isinstance(have, tuple):
                rest = tuple(i for i in have if i != mid)
                self._by[key] = rest[0] if len(rest) == 1 else rest

    def _get(self, key: str) -> list[Entry]:
        have = self._by.get(key)
        if have is None:
            return []
        if isinstance(have, str):
            return [_entry(have, self.rows[have])]
        return sorted((_entry(i, self.rows[i]) for i in have), key=lambda e: e.order)

    def named(self, folder: str | None, name: str) -> list[Entry]:
        """Every file called ``name`` in any letter case, in ``folder`` (None: in any folder), in ComfyUI's
        order; the caller narrows to the exact name or relative path."""
        lower = name.lower()
        folders = [folder] if folder is not None else sorted(self._folders)
        return [e for f in folders for e in self._get(f"n\0{f}\0{lower}")]

    def by_bare_name(self, folder: str | None, name: str, extensions: tuple[str, ...]) -> list[Entry]:
        """A name given without its extension (``embedding:x``, ``<lora:x>``, A1111's ``Model: x``): the file
        with one of ``extensions`` added, or a directory model of exactly that name."""
        found = [e for ext in extensions for e in self.named(folder, name + ext)]
        return found + self.named(folder, name)

    def by_hash(self, kind: str, value: str) -> list[Entry]:
        """``SHA256`` (whole, or a 10/12-hex prefix), ``AutoV2`` (= SHA256[:10]), ``AutoV3``, ``AutoV1``."""
        value = value.upper()
        if kind == "AutoV2" or (kind == "SHA256" and len(value) == 10):
            return self._get(f"a\0{value}")
        if kind == "SHA256" and len(value) in (12, 64):
            return [e for e in self._get(f"b\0{value[:12]}") if e.sha256 and e.sha256.startswith(value)]
        if kind in ("AutoV3", "AutoV1"):
            return self._get(f"{kind[-1]}\0{value}")
        return []

    def by_civitai_version(self, version: int) -> list[Entry]:
        return self._get(f"c\0{version}")


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
        gen = cast(str | None, self.redis.get(GEN))
        with self._lock:
            if gen != self._gen:
                if not self._catch_up(gen):
                    self._build(gen)
            yield self._tables

    def _build(self, gen: str | None) -> None:
        # Documents read after ``gen`` are at least that new; a later generation re-reads what changed since.
        tables = Tables()
        loads, put = orjson.loads, tables.put
        for mid, raw in self.redis.hscan_iter(DOC, count=_SCAN_CHUNK):
            put(mid, row_of(loads(raw)))
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
            for mid, raw in zip(batch, self.redis.hmget(DOC, batch), strict=False):
                if raw:
                    self._tables.put(mid, row_of(orjson.loads(raw)))
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
    for entry in cast(list[str], redis.lrange(CHANGES, -_CATCH_UP_ENTRIES, -1)):
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
