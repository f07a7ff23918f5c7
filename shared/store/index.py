"""The model index in Redis. Listing and search never walk the disk; the scan job and the publishers
(downloads, moves) keep it current. A model's id is ``<folder>/<path_index>/<relpath>`` (relpath with ``/``), so
``x.safetensors`` and ``x.gguf`` in one directory are two models; they share the sidecars of their stem
(``shared.store.siblings``), which their documents mark ``stem_shared`` and their directory lines end ``+2``.

| key                                      | type   | content                                                       |
|------------------------------------------|--------|---------------------------------------------------------------|
| depot:store:doc                          | HASH   | id -> compact JSON document (stat, hashes, sidecar summary,   |
|                                          |        | preview file name, verify_status/verified_at/verify_reason)   |
| depot:store:dirs:{folder}:{path_index}   | HASH   | directory relpath ("" = root) -> the sorted lines              |
|                                          |        | "name TAB size:mtime_ns:inode:sidecar-signature" of its models |
| depot:store:dirfp:{folder}:{path_index}  | HASH   | directory relpath -> "models|fingerprint" of every file in it |
|                                          |        | (count, size/mtime/inode sums, crc of names): an unchanged    |
|                                          |        | directory costs the scan one string compare                   |
| depot:store:model                        | HASH   | id -> the contract ``Model`` as ready-to-send JSON (listing   |
|                                          |        | pages are assembled from these strings without parsing)       |
| depot:store:q                            | HASH   | id -> "size TAB created TAB modified TAB lower(name) TAB text" |
|                                          |        | for sorting and search (text = lower-cased path, name,        |
|                                          |        | trigger words, base model); each process keeps these rows and |
|                                          |        | the sorted id lists built from them until ``gen`` changes     |
| depot:store:sha256                       | HASH   | id -> SHA256 (duplicates)                                     |
| depot:store:sha:{SHA256}                 | SET    | ids with that SHA256                                          |
| depot:store:unhashed                     | SET    | ids a scan queued for hashing and has not hashed yet; the    |
|                                          |        | next scan of their root hashes them (after a cancel or crash) |
| depot:store:gen                          | STRING | bumped on every change (invalidates search caches)            |
| depot:store:changes                      | LIST   | "gen NUL id NUL id ..." per change, the last _CHANGES_KEPT:   |
|                                          |        | a process a few changes behind re-reads only those rows       |
| depot:store:unreachable                  | HASH   | "folder/path_index" -> JSON {"path","since"}                  |
"""
from __future__ import annotations

import bisect
import json
import operator
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import redis as redis_lib
from redis.client import NEVER_DECODE

from shared.config import Settings
from shared.errors import NotFound
from shared.media.gguf import misplacement
from shared.store import sidecar_files as sidecars
from shared.store.layout import StoreLayout
from shared.store.paths import normalise_relpath
from shared.store.siblings import sibling_names

P = "depot:store:"
DOC, Q, SHA_OF, GEN, UNREACHABLE = P + "doc", P + "q", P + "sha256", P + "gen", P + "unreachable"
MODEL_JSON = P + "model"
CHANGES = P + "changes"
UNHASHED = P + "unhashed"
SORTS = ("name", "size", "created", "modified")
_BATCH = 1000
_CHANGES_KEPT = 64
# Catching up moves each changed row in the id list and in every sorted order built so far, a memmove of the
# whole list each time; past this many moves, re-reading every row is quicker.
_CATCH_UP_MOVES = 5000
# Bumps ``gen`` and logs which models that generation changed, in one step (the new gen is only known inside
# Redis, and a reader must never see the one without the other).
_LOG_CHANGE = """local g = redis.call('INCR', KEYS[1])
redis.call('RPUSH', KEYS[2], g .. '\\0' .. ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
return g"""


def model_id(folder: str, path_index: int, relpath: str) -> str:
    return f"{folder}/{path_index}/{relpath}"


def split_id(mid: str) -> tuple[str, int, str]:
    folder, pi, rel = mid.split("/", 2)
    return folder, int(pi), rel


def dirs_key(folder: str, path_index: int) -> str:
    return f"{P}dirs:{folder}:{path_index}"


def fp_key(folder: str, path_index: int) -> str:
    return f"{P}dirfp:{folder}:{path_index}"


def pack_dir(lines: dict[str, str]) -> str:
    return "\n".join(f"{name}\t{sig}" for name, sig in sorted(lines.items()))


def unpack_dir(packed: str | None) -> dict[str, str]:
    if not packed:
        return {}
    return dict(line.split("\t", 1) for line in packed.split("\n"))


def sha_key(sha: str) -> str:
    return f"{P}sha:{sha.upper()}"


def stat_sig(size: int, mtime_ns: int, ino: int, side: str) -> str:
    return f"{size}:{mtime_ns}:{ino}:{side}"


def display_name(doc: dict[str, Any]) -> str:
    return doc.get("title") or sidecars.stem_of(doc["relpath"].rsplit("/", 1)[-1])


def to_model(doc: dict[str, Any]) -> dict[str, Any]:
    """The contract's ``Model`` for an index document."""
    return _to_model(doc, display_name(doc))


def preview_url(folder: str, path_index: int, relpath: str) -> str:
    """The thumbnail route of a model, every path segment percent-encoded: a file name may hold ``%``, ``#``,
    ``?``, spaces or any Unicode, which a browser would otherwise read as an escape, a fragment or a query.
    (Quoting the whole path with ``/`` kept gives exactly the per-segment encoding: no segment holds a ``/``;
    a name's undecodable bytes, kept as lone surrogates, are sent as their own bytes.)"""
    return "/api/v1/previews/" + quote(f"{folder}/{path_index}/{relpath}", safe="/", errors="surrogateescape")


def _to_model(doc: dict[str, Any], name: str) -> dict[str, Any]:
    folder, pi, rel = doc["folder"], doc["path_index"], doc["relpath"]
    return {"folder": folder, "path_index": pi, "relpath": rel, "name": name,
            "size": doc["size"], "created_at": doc["ctime_ns"] / 1e9, "modified_at": doc["mtime_ns"] / 1e9,
            "preview_url": preview_url(folder, pi, rel),
            "sha256": (doc.get("hashes") or {}).get("SHA256"), "base_model": doc.get("base_model"),
            "trigger_words": list(doc.get("trigger_words") or []), "source": doc.get("source"),
            "source_url": doc.get("source_url"), "verify_status": doc.get("verify_status"),
            "preview": doc.get("preview"), "misplaced": doc.get("misplaced")}


def build_doc(folder: str, path_index: int, relpath: str, st: os.stat_result, summary: dict[str, Any],
              preview: str | None, hashes: dict[str, str] | None, *, size: int | None = None,
              is_dir: bool = False, shared: bool = False) -> dict[str, Any]:
    """An index document from a stat and the sidecar summary (the description text is not kept). ``shared``:
    other models share the stem's sidecars, so the hashes they record are not taken as this file's."""
    known = {} if shared else dict(summary.get("hashes") or {})
    known.update(hashes or {})
    return {"folder": folder, "path_index": path_index, "relpath": relpath, "title": summary.get("name"),
            "size": st.st_size if size is None else size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "ino": st.st_ino, "hashes": known, "hashed": bool(hashes), "base_model": summary.get("base_model"),
            "trigger_words": summary.get("trigger_words") or [], "source": summary.get("source"),
            "source_url": summary.get("source_url"), "preview": preview, "dir": is_dir,
            "verify_status": None, "verified_at": None, "verify_reason": None,
            **({"stem_shared": True} if shared else {})}


_VERIFY_FIELDS = ("verify_status", "verified_at", "verify_reason")


def same_file(doc: dict[str, Any], old: dict[str, Any] | None, *, inode: bool = True) -> bool:
    """Whether ``old`` (the indexed document) describes the very file ``doc`` was just built from: the same
    size, mtime_ns and inode, as a quick scan judges files (``inode=False``: a move across file systems)."""
    return bool(old and (old["size"], old["mtime_ns"]) == (doc["size"], doc["mtime_ns"])
                and (not inode or old.get("ino") == doc["ino"]))


def same_hashed_file(doc: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """Whether ``old`` was hashed from the very file ``doc`` was just built from."""
    return bool(old and old.get("hashed")) and same_file(doc, old)


def keep_shared(doc: dict[str, Any], old: dict[str, Any] | None, *, inode: bool = True) -> None:
    """A file that has shared its stem's sidecars with another model keeps that mark (``stem_shared``) while
    its bytes are the same, even once it is alone with them (the other was moved or deleted): the hashes they
    record may be the other file's. ``doc`` must not hold hashes of its own yet."""
    if old and old.get("stem_shared") and not doc.get("stem_shared") and same_file(doc, old, inode=inode):
        doc["stem_shared"], doc["hashes"] = True, {}


def keep_known(doc: dict[str, Any], old: dict[str, Any]) -> None:
    """Carry ``old``'s hashes and verification over to ``doc``, rebuilt for the same bytes (new sidecars)."""
    keep_shared(doc, old, inode=False)
    doc["hashes"], doc["hashed"] = {**doc["hashes"], **(old.get("hashes") or {})}, old.get("hashed")
    for k in _VERIFY_FIELDS:
        doc[k] = old.get(k)


_COMPACT = json.JSONEncoder(separators=(",", ":"))


def _dumps(obj: Any) -> bytes | str:
    """Compact JSON; orjson is several times faster, but refuses the lone surrogates that undecodable bytes
    in a file name become, which the standard encoder escapes."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return _COMPACT.encode(obj)


def _model_json(doc: dict[str, Any]) -> bytes | str:
    return _dumps(to_model(doc))


def _search_row(mid: str, doc: dict[str, Any], name: str, lower: str) -> str:
    text = " ".join([mid.split("/", 2)[2], name, " ".join(doc.get("trigger_words") or []),
                     doc.get("base_model") or ""]).lower().replace("\t", " ")
    return f"{doc['size']}\t{doc['ctime_ns']}\t{doc['mtime_ns']}\t{lower}\t{text}"


def _token_matcher(token: str):  # type: ignore[no-untyped-def]
    if "*" not in token:
        return lambda text: token in text
    pattern = re.compile(".*".join(re.escape(p) for p in token.split("*")))
    return lambda text: pattern.search(text) is not None


class StoreIndex:
    """Reads and writes the model index; one per process (it caches search rows)."""

    def __init__(self, redis: redis_lib.Redis, settings: Settings, layout: StoreLayout | None = None) -> None:
        self.redis = redis
        self.settings = settings
        self.layout = layout or StoreLayout.from_settings(settings)
        self._cache: _Rows = _Rows("", [])
        self._cache_lock = threading.Lock()
        self.full_reloads = 0  # times this process re-read every search row (the rest were caught up)

    # --- writing ------------------------------------------------------------------------------------

    def put_docs(self, docs: Iterable[dict[str, Any]], *, new: bool = False,
                 queued: frozenset[str] | set[str] = frozenset()) -> int:
        """Write documents in batches, each one transaction of a few multi-member commands. ``new=True`` (the
        scan's never-seen directories) skips reading the old SHA256s, as there are none. ``queued``: ids the
        scan will hash, recorded with their documents so a cancel or a crash before the hash is not forgotten;
        a hashed document leaves that record."""
        docs = list(docs)
        for start in range(0, len(docs), _BATCH):
            self._put_batch(docs[start:start + _BATCH], new, queued)
        return len(docs)

    def _put_batch(self, docs: list[dict[str, Any]], new: bool, queued: frozenset[str] | set[str]) -> None:
        # A repeated id keeps its last document (the end state of writing them in order).
        by_id: dict[str, dict[str, Any]] = {}
        for d in docs:
            by_id[model_id(d["folder"], d["path_index"], d["relpath"])] = d
        ids = list(by_id)
        old_shas = [None] * len(ids) if new else self.redis.hmget(SHA_OF, ids)
        doc_map, model_map, q_map, sha_map = {}, {}, {}, {}
        pipe = self.redis.pipeline(transaction=True)
        for (mid, d), old in zip(by_id.items(), old_shas, strict=False):
            name = display_name(d)
            doc_map[mid] = _dumps(d)
            model_map[mid] = _dumps(_to_model(d, name))
            q_map[mid] = _search_row(mid, d, name, name.lower())
            sha = (d.get("hashes") or {}).get("SHA256") or ""
            if old and old != sha:
                pipe.srem(sha_key(old), mid)
            if sha and sha != old:
                sha_map[mid] = sha
                pipe.sadd(sha_key(sha), mid)
            elif old and not sha:
                pipe.hdel(SHA_OF, mid)
        if by_id:
            pipe.hset(DOC, mapping=doc_map)
            pipe.hset(MODEL_JSON, mapping=model_map)
            pipe.hset(Q, mapping=q_map)
            if sha_map:
                pipe.hset(SHA_OF, mapping=sha_map)
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
        pipe.eval(_LOG_CHANGE, 2, GEN, CHANGES, "\0".join(ids), _CHANGES_KEPT)

    def remove_ids(self, ids: Iterable[str], *, edit_dirs: bool = True) -> int:
        """Drop models from the index; ``edit_dirs=False`` when the caller (the scan) rewrites the directory
        signatures itself."""
        ids = list(ids)
        if not ids:
            return 0
        shas = self.redis.hmget(SHA_OF, ids)
        pipe = self.redis.pipeline(transaction=True)
        for mid, sha in zip(ids, shas, strict=False):
            if sha:
                pipe.srem(sha_key(sha), mid)
        for key in (DOC, Q, MODEL_JSON, SHA_OF):
            pipe.hdel(key, *ids)
        pipe.srem(UNHASHED, *ids)
        self._changed(pipe, ids)
        pipe.execute()
        for mid in ids if edit_dirs else ():
            folder, pi, rel = split_id(mid)
            self.edit_dir_line(folder, pi, rel, None)
        return len(ids)

    def edit_dir_line(self, folder: str, path_index: int, relpath: str, sig: str | None) -> None:
        """Set (or drop) one model's line in its directory's signature entry (publishers outside a scan)."""
        rel_dir, _, name = relpath.rpartition("/")
        key = dirs_key(folder, path_index)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    lines = unpack_dir(pipe.hget(key, rel_dir))
                    if sig is None and name not in lines:
                        return
                    if sig is None:
                        lines.pop(name, None)
                    else:
                        lines[name] = sig
                    pipe.multi()
                    if lines:
                        pipe.hset(key, rel_dir, pack_dir(lines))
                    else:
                        pipe.hdel(key, rel_dir)
                    pipe.hdel(fp_key(folder, path_index), rel_dir)  # the next scan re-reads this directory
                    pipe.execute()
                    return
                except redis_lib.WatchError:
                    continue

    def record_file(self, path: Path, *, hashes: dict[str, str] | None = None,
                    moved_from: dict[str, Any] | None = None) -> dict[str, Any]:
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
                only_known: bool = False, moved_from: dict[str, Any] | None = None) -> dict[str, Any] | None:
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
        doc = build_doc(ref["folder"], ref["path_index"], ref["relpath"], st, sidecars.read_summary(path, names),
                        sidecars.preview_from_names(stem, names), hashes, shared=models > 1)
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
        doc.update(verify_status=status, verify_reason=reason, verified_at=time.time())
        mid = model_id(folder, path_index, normalise_relpath(relpath))
        # Only the document and its Model change (no sort or search row, no SHA256), so ``gen`` is left
        # alone: a verify of the whole store would otherwise make every web process re-read every row.
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(DOC, mid, _dumps(doc))
        pipe.hset(MODEL_JSON, mid, _model_json(doc))
        pipe.execute()

    def remove(self, folder: str, path_index: int, relpath: str) -> bool:
        mid = model_id(folder, path_index, normalise_relpath(relpath))
        return bool(self.redis.hexists(DOC, mid)) and self.remove_ids([mid]) == 1

    # --- reading ------------------------------------------------------------------------------------

    def _require(self, folder: str, path_index: int, relpath: str) -> dict[str, Any]:
        doc = self.lookup(folder, path_index, relpath)
        if doc is None:
            raise NotFound(f"No model {folder}/{path_index}/{relpath} in the index; run a scan if it is on disk.")
        return doc

    def lookup(self, folder: str, path_index: int, relpath: str) -> dict[str, Any] | None:
        """The raw index document (``to_model`` turns it into a ``Model``), or None."""
        raw = self.redis.hget(DOC, model_id(folder, path_index, normalise_relpath(relpath)))
        return json.loads(raw) if raw else None

    def docs(self, ids: list[str]) -> list[dict[str, Any]]:
        return [json.loads(r) for r in self.redis.hmget(DOC, ids) if r] if ids else []

    def docs_or_none(self, ids: list[str]) -> list[dict[str, Any] | None]:
        return [json.loads(r) if r else None for r in self.redis.hmget(DOC, ids)] if ids else []

    def find_by_sha256(self, sha: str) -> list[dict[str, Any]]:
        # The set is kept next to the documents but outside the read of the old SHA256, so a document is
        # checked against it rather than trusted.
        sha = sha.upper()
        return [to_model(d) for d in self.docs(sorted(self.redis.smembers(sha_key(sha))))
                if (d.get("hashes") or {}).get("SHA256") == sha]

    def models(self, folder: str | None = None) -> Iterator[dict[str, Any]]:
        """Every indexed document (optionally of one folder), in id order, fetched in batches."""
        ids = self._rows().ids(folder)
        for start in range(0, len(ids), _BATCH):
            yield from self.docs(ids[start:start + _BATCH])

    def unhashed(self) -> list[str]:
        """Ids a scan queued for hashing and did not hash (it was cancelled or its worker died)."""
        return sorted(self.redis.smembers(UNHASHED))

    def forget_unhashed(self, ids: list[str]) -> None:
        if ids:
            self.redis.srem(UNHASHED, *ids)

    def dir_sigs(self, folder: str, path_index: int) -> tuple[set[str], dict[str, str]]:
        """``(directories with model lines, directory -> fingerprint)`` of one root; the lines themselves are
        fetched per changed directory with ``dir_lines`` (an unchanged store never transfers them)."""
        return set(self.redis.hkeys(dirs_key(folder, path_index))), self.redis.hgetall(fp_key(folder, path_index))

    def dir_lines(self, folder: str, path_index: int, rel_dir: str) -> str | None:
        return self.redis.hget(dirs_key(folder, path_index), rel_dir)

    def write_dir_sigs(self, folder: str, path_index: int, packed: dict[str, str], fps: dict[str, str],
                       gone: list[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        if packed:
            pipe.hset(dirs_key(folder, path_index), mapping=packed)
        if fps:
            pipe.hset(fp_key(folder, path_index), mapping=fps)
        if gone:
            pipe.hdel(dirs_key(folder, path_index), *gone)
            pipe.hdel(fp_key(folder, path_index), *gone)
        pipe.execute()

    def listing_json(self, *, folder: str | None = None, q: str | None = None, sort: str = "name",
                     order: str = "asc", offset: int = 0, limit: int = 100) -> tuple[bytes, int]:
        """One page of ``Model``s as comma-joined JSON (UTF-8, as stored: never decoded, parsed or re-encoded on
        the hot path) and the total."""
        ids, total = self._page_ids(folder, q, sort, order, offset, limit)
        rows = self.redis.execute_command("HMGET", MODEL_JSON, *ids, **{NEVER_DECODE: True}) if ids else []
        return b",".join(r for r in rows if r), total

    def _page_ids(self, folder: str | None, q: str | None, sort: str, order: str, offset: int,
                  limit: int) -> tuple[list[str], int]:
        """The ids of one page and the total, from this process's sorted copy of the rows."""
        tokens = [t for t in (q or "").lower().split() if t.strip("*")]
        ordered = self._rows().ordered(folder, sort)
        if tokens:
            matchers = [_token_matcher(t) for t in tokens]
            ordered = [(mid, row) for mid, row in ordered
                       if all(m(text) for text in (row.split("\t", 4)[4],) for m in matchers)]
        total = len(ordered)
        if order == "desc":
            page = ordered[max(0, total - offset - limit):max(0, total - offset)][::-1]
        else:
            page = ordered[offset:offset + limit]
        return [mid for mid, _ in page], total

    def _rows(self) -> _Rows:
        gen = self.redis.get(GEN)
        with self._cache_lock:
            if self._cache.gen != gen:
                caught_up = self._catch_up(self._cache, gen)
                if caught_up is None:
                    # The rows are read after gen, so they are at least that new; a later gen re-reads what
                    # changed since, which converges.
                    self.full_reloads += 1
                    caught_up = _Rows(gen, sorted(self.redis.hgetall(Q).items()))
                self._cache = caught_up
            return self._cache

    def _catch_up(self, cache: _Rows, gen: str | None) -> _Rows | None:
        """``cache`` brought to ``gen`` from the change log, or None when the log cannot tell (too far behind,
        trimmed, a change made without an entry, or too many models changed)."""
        if not (gen and gen.isdigit() and cache.gen and cache.gen.isdigit()):
            return None
        have, want = int(cache.gen), int(gen)
        if not 0 < want - have <= _CHANGES_KEPT:
            return None
        changed: set[str] = set()
        expect = have + 1
        for entry in self.redis.lrange(CHANGES, have - want, -1):
            g, _, joined = entry.partition("\0")
            if g != str(expect):
                return None  # a newer write landed meanwhile, or an entry is missing
            expect += 1
            changed.update(joined.split("\0"))
        if expect != want + 1 or len(changed) * (cache.order_count() + 1) > _CATCH_UP_MOVES:
            return None
        ids = sorted(changed)
        return cache.updated(gen, dict(zip(ids, self.redis.hmget(Q, ids), strict=False)))

    def duplicates(self, folder: str | None = None) -> list[dict[str, Any]]:
        groups: dict[str, list[str]] = {}
        for mid, sha in self.redis.hgetall(SHA_OF).items():
            groups.setdefault(sha, []).append(mid)
        out = []
        for sha, ids in sorted(groups.items()):
            if len(ids) > 1 and (folder is None or any(i.startswith(folder + "/") for i in ids)):
                out.append({"sha256": sha, "models": [to_model(d) for d in self.docs(sorted(ids))]})
        return out

    # --- unreachable roots --------------------------------------------------------------------------

    def mark_unreachable(self, folder: str, path_index: int, path: str, reachable: bool) -> None:
        field = f"{folder}/{path_index}"
        if reachable:
            self.redis.hdel(UNREACHABLE, field)
        elif not self.redis.hexists(UNREACHABLE, field):
            self.redis.hset(UNREACHABLE, field, json.dumps({"path": path, "since": time.time()}))

    def unreachable(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.redis.hgetall(UNREACHABLE).items()}


#: Sort keys read from a search row ("size TAB created TAB modified TAB lower(name) TAB text") without
#: splitting all of it (a process re-reads every row after each index change).
_SORT_KEY = {
    "size": lambda r: int(r[1][:r[1].index("\t")]),
    "created": lambda r: int(r[1].split("\t", 2)[1]),
    "modified": lambda r: int(r[1].split("\t", 3)[2]),
    "name": lambda r: r[1].split("\t", 4)[3],
}


_row_id = operator.itemgetter(0)


class _Rows:
    """One generation of the search rows, kept per process: the id-ordered ``(id, row)`` pairs and, built on
    first use, each (folder, sort) order of them, so paging is a slice. ``updated`` makes the next generation
    from a few changed rows without sorting again."""

    def __init__(self, gen: str | None, rows: list[tuple[str, str]]) -> None:
        self.gen, self.rows = gen, rows
        self._orders: dict[tuple[str | None, str], list[tuple[str, str]]] = {}
        self._lock = threading.Lock()

    def order_count(self) -> int:
        with self._lock:
            return len(self._orders)

    def updated(self, gen: str, changed: dict[str, str | None]) -> _Rows:
        """The rows of ``gen``: these ids now have these rows (None: removed)."""
        rows = list(self.rows)
        old: dict[str, str] = {}
        for mid, row in sorted(changed.items()):
            i = bisect.bisect_left(rows, mid, key=_row_id)
            if i < len(rows) and rows[i][0] == mid:
                old[mid] = rows[i][1]
                if row is None:
                    del rows[i]
                else:
                    rows[i] = (mid, row)
            elif row is not None:
                rows.insert(i, (mid, row))
        new = _Rows(gen, rows)
        with self._lock:
            orders = dict(self._orders)
        for (folder, sort), order in orders.items():
            new._orders[(folder, sort)] = _reordered(order, folder, sort, old, changed)
        return new

    def ids(self, folder: str | None) -> list[str]:
        prefix = f"{folder}/" if folder else ""
        return [mid for mid, _ in self.rows if mid.startswith(prefix)]

    def ordered(self, folder: str | None, sort: str) -> list[tuple[str, str]]:
        with self._lock:
            got = self._orders.get((folder, sort))
            if got is None:
                prefix = f"{folder}/" if folder else ""
                got = [r for r in self.rows if r[0].startswith(prefix)] if prefix else list(self.rows)
                # Ties fall back to the id: the rows are already in id order and Python's sort is stable.
                got.sort(key=_SORT_KEY[sort])
                self._orders[(folder, sort)] = got
            return got


def _reordered(order: list[tuple[str, str]], folder: str | None, sort: str, old: dict[str, str],
               changed: dict[str, str | None]) -> list[tuple[str, str]]:
    """One (folder, sort) order with the changed rows moved: it is sorted by (sort key, id), as a stable sort
    of id-ordered rows leaves it, so each row is found and placed by bisection."""
    sort_key = _SORT_KEY[sort]

    def key(r: tuple[str, str]) -> tuple[Any, str]:
        return sort_key(r), r[0]

    out = list(order)
    prefix = f"{folder}/" if folder else ""
    for mid, row in changed.items():
        if not mid.startswith(prefix):
            continue
        if mid in old:
            i = bisect.bisect_left(out, key((mid, old[mid])), key=key)
            if i < len(out) and out[i][0] == mid:
                del out[i]
        if row is not None:
            bisect.insort(out, (mid, row), key=key)
    return out


def _side_sig(stem: str, directory: Path, names: set[str], models: int = 1) -> str:
    """The sidecar signature of one model, computed from the disk and the directory's ``names`` (the scan
    computes it from its listing)."""
    parts: list[tuple[str, int | None, int | None]] = []
    for suffix in sidecars.TRAVELLING_SUFFIXES:
        if stem + suffix in names:
            try:
                st = os.stat(directory / (stem + suffix))
            except OSError:
                continue
            parts.append((stem + suffix, st.st_size, st.st_mtime_ns))
    parts.extend((n, None, None) for n in sidecars.preview_candidates(stem) if n in names)
    return side_sig(stem, parts, models)


def side_sig(stem: str, parts: list[tuple[str, int | None, int | None]], models: int = 1) -> str:
    """Count, total size and newest mtime of a model's sidecars, then the suffixes of its previews (entries
    without a size): a preview counts by name only, as nothing in the index depends on its bytes. When
    ``models`` (of the stem, in the directory) share them, ``+models`` ends it, so a model whose sibling comes
    or goes is indexed again (the sidecars' hashes are its own only when it is alone)."""
    count = total = 0
    newest: int | None = None
    previews: list[str] = []
    for name, size, mtime in parts:
        if size is None:
            previews.append(name[len(stem):])
        else:
            count, total = count + 1, total + size
            newest = mtime if newest is None or mtime > newest else newest  # type: ignore[operator]
    head = f"{count}-{total}-{newest}" if count else "0"
    if previews:
        head += "".join(sorted(previews)) if len(previews) > 1 else previews[0]
    return head if models == 1 else f"{head}+{models}"
