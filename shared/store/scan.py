"""The scan job: bring the Redis index in line with the disk. ``quick`` walks every root with ``os.scandir`` and
compares (size, mtime_ns, inode, sidecar signature) against the index, so an unchanged file costs one stat and
one dict lookup; new or changed files are indexed with their sidecar summary and hashed (files larger than
``settings.lazy_hash_bytes`` are left for a full scan or verify). ``full`` rehashes everything. Files that
vanished are dropped, but a root that cannot be read at all is kept and reported in ``unreachable_roots``. One
scan per root at a time across hosts (a redis-py ``Lock``, held until its files are hashed); a root held by
another scan is reported in ``busy_roots``. Symbolic links inside a root are not followed, as the API refuses
paths that resolve outside their root and a link within the root is a second path to models the walk reaches
anyway (or a loop); they are counted in ``links_skipped`` with a sample in ``links_sample``. Progress (files,
bytes) streams through the job context, which also makes the job cancellable.

Directories the index has never seen (a first scan, a newly added library) are handed, in chunks of about
``_CHUNK_FILES`` files, to ``settings.scan_processes`` forked processes that stat them, read their sidecars and
write their documents, while this process keeps walking; reading sidecars is per-file Python work that one
process cannot do at the speed of the walk. billiard (Celery's own process library) is used because a prefork
worker's children are daemonic and the standard library refuses to fork from those."""
from __future__ import annotations

import gc
import os
import queue
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import billiard

from shared import keys
from shared.errors import DepotError, InvalidRequest
from shared.jobs import JobContext
from shared.media.gguf import CHECKPOINTS, is_gguf_name, misplacement
from shared.media.hashing import ALL, hash_file
from shared.services import Services
from shared.store import base_models
from shared.store import sidecar_files as sidecars
from shared.store.index import (
    StoreIndex,
    build_doc,
    keep_known,
    keep_shared,
    model_id,
    pack_dir,
    same_hashed_file,
    side_sig,
    split_id,
    stat_sig,
    unpack_dir,
)
from shared.store.layout import DIRECTORY_MODELS, PT_EXTENSIONS, Folder, StoreLayout

MODES = ("quick", "full")
_SIDECAR_SET = frozenset(sidecars.SIDECAR_SUFFIXES)
_LOCK_TTL_S = 60
_FLUSH = 1000
_CHUNK_FILES = 2000  # files of new directories per task of the scan processes
_LINKS_SAMPLE = 20


def submit_params(mode: str = "quick", folder: str | None = None, fetch_metadata: bool = False,
                  path_index: int | None = None) -> dict[str, Any]:
    """The task params of a scan (the API and beat build them here so both agree); ``path_index`` narrows a
    folder's scan to one of its roots (say, a NAS mount that is slow or offline is left out)."""
    if mode not in MODES:
        raise InvalidRequest(f"Scan mode must be one of {', '.join(MODES)}; got {mode!r}.")
    params = {"mode": mode, "folder": folder, "fetch_metadata": bool(fetch_metadata)}
    if path_index is not None:
        if folder is None:
            raise InvalidRequest("A scan's 'path_index' picks one root of a folder; give the 'folder' too.")
        params["path_index"] = path_index
    return params


def scan_roots(layout: StoreLayout, folder: str | None, path_index: int | None = None) -> list[tuple[Folder, int, str]]:
    """``(folder, path_index, root)`` of every root a scan covers: one folder's (else every folder's), or just
    its ``path_index``. An unknown folder or root is refused here, so the API answers before a task exists."""
    folders = [layout.folder(folder)] if folder else [layout.folder(n) for n in layout.names()]
    if path_index is not None:
        layout.root(folders[0].name, path_index)
    return [(f, pi, root) for f in folders for pi, root in enumerate(f.paths) if path_index in (None, pi)]


def idem_key(folder: str | None, path_index: int | None = None) -> str:
    return f"scan:{folder or 'all'}" + ("" if path_index is None else f":{path_index}")


@dataclass
class _Totals:
    files: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    hashed: int = 0
    bytes_hashed: int = 0
    lazy: int = 0
    processes: int = 0  # scan processes used (0: the scan did everything itself)
    links_skipped: int = 0
    links_sample: list[dict[str, Any]] = field(default_factory=list)
    unreachable_roots: list[dict[str, Any]] = field(default_factory=list)
    busy_roots: list[dict[str, Any]] = field(default_factory=list)
    to_hash: list[tuple[dict[str, Any], str, str]] = field(default_factory=list)
    walked: list[tuple[str, int, str]] = field(default_factory=list)  # (folder, path_index, root) fully walked


def run_scan(ctx: JobContext, services: Services) -> dict[str, Any]:
    """Scan the roots named by ``ctx.params`` (``folder``: one folder, else all; ``path_index``: one root of
    it) and return the counts."""
    params = submit_params(ctx.params.get("mode", "quick"), ctx.params.get("folder"),
                           ctx.params.get("fetch_metadata", False), ctx.params.get("path_index"))
    index = StoreIndex(services.redis, services.settings)
    totals = _Totals()
    locks = _RootLocks(services.redis)
    try:
        for folder, pi, root in scan_roots(index.layout, params["folder"], params.get("path_index")):
            _scan_root(ctx, index, folder, pi, root, params["mode"] == "full", totals, locks)
        _hash_pending(ctx, index, totals, locks)
        if params["folder"] in (None, CHECKPOINTS):
            _flag_indexed_ggufs(index)
    finally:
        locks.release()
    result = {k: getattr(totals, k) for k in ("files", "added", "changed", "removed", "hashed", "bytes_hashed",
                                               "lazy", "processes", "unreachable_roots", "busy_roots",
                                               "links_skipped", "links_sample")}
    if params["fetch_metadata"]:
        from shared.metadata.job import fetch_missing_metadata
        result["metadata"] = fetch_missing_metadata(ctx, services, index, params["folder"])
    return result


class _RootLocks:
    """A scan's hold on its roots: one redis-py Lock per root, taken before the walk and kept (renewed) until
    the scan has hashed the root's files, so a scan from another host finds the root busy rather than hashing
    the same files again. A crashed scan's locks expire after ``_LOCK_TTL_S``."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.held: list[Any] = []
        self.renewed = time.monotonic()

    def take(self, root: str) -> bool:
        lock = self.redis.lock(keys.lock(f"scan:{os.path.realpath(root)}"), timeout=_LOCK_TTL_S)
        if not lock.acquire(blocking=False):
            return False
        self.held.append(lock)
        return True

    def renew(self) -> None:
        if time.monotonic() - self.renewed > _LOCK_TTL_S / 4:
            for lock in self.held:
                lock.reacquire()
            self.renewed = time.monotonic()

    def release(self) -> None:
        for lock in self.held:
            try:
                lock.release()
            except Exception:  # noqa: BLE001 - an expired lock is harmless here; the next scan takes it
                pass
        self.held = []


def _scan_root(ctx: JobContext, index: StoreIndex, folder: Folder, pi: int, root: str, full: bool,
               totals: _Totals, locks: _RootLocks) -> None:
    if not locks.take(root):
        totals.busy_roots.append({"folder": folder.name, "path_index": pi, "path": root})
        return
    if not os.path.isdir(root) or not os.access(root, os.R_OK | os.X_OK):
        index.mark_unreachable(folder.name, pi, root, reachable=False)
        totals.unreachable_roots.append({"folder": folder.name, "path_index": pi, "path": root})
        return
    index.mark_unreachable(folder.name, pi, root, reachable=True)
    _RootScan(ctx, index, folder, pi, root, full, totals, locks).run()
    totals.walked.append((folder.name, pi, root))


class _RootScan:
    """Walks one root. Each directory's model lines are compared with the stored packed string first, so an
    unchanged directory costs one string compare; changed documents are written in batches and vanished ones
    dropped at the end."""

    def __init__(self, ctx: JobContext | None, index: StoreIndex, folder: Folder, pi: int, root: str, full: bool,
                 totals: _Totals, locks: _RootLocks | None, *, child: bool = False) -> None:
        self.ctx, self.index, self.folder, self.pi, self.root = ctx, index, folder, pi, root
        self.full, self.totals, self.locks = full, totals, locks
        # A scan process only ever gets directories the index does not know.
        self.child = child
        self.known_dirs, self.known_fp = (set(), {}) if child else index.dir_sigs(folder.name, pi)
        self.fps: dict[str, str] = {}
        self.visited: set[str] = set()
        self.failed_dirs: list[str] = []
        self.links: set[str] = set()  # a set: a small scan lists its new directories twice
        self.pending: list[tuple[dict[str, Any], bool]] = []  # (doc, needs hashing)
        self.packed: dict[str, str] = {}
        self.gone: list[str] = []
        self.lazy_limit = index.settings.lazy_hash_bytes
        self.dir_models = folder.name in DIRECTORY_MODELS
        self.exts = folder.extensions
        # Nothing in the index depends on a preview's size or time (only its name, which the directory
        # fingerprint covers), so previews are not statted: a third fewer stats on a typical library, which
        # on a network mount are round trips.
        self.unstatted = tuple(e for e in sidecars.PREVIEW_EXTS if e not in self.exts)
        self.writer = _Writer(threaded=not child)
        self.processes = 1 if child else (index.settings.scan_processes or os.cpu_count() or 1)
        self.new_dirs: list[str] = []
        self.new_files = 0
        self.pool: Any = None
        self.results: list[Any] = []

    def run(self) -> None:
        try:
            self._walk()
        finally:
            try:
                self._stop_pool()
            finally:
                self.writer.close()

    def _tick(self) -> None:
        """Keep the roots' locks and report progress (which raises if the user cancelled)."""
        assert self.ctx is not None and self.locks is not None
        self.locks.renew()
        self.ctx.progress(self.totals.files, None, files=self.totals.files, phase="walking")

    def _walk(self) -> None:
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            if self.processes > 1 and not self._known(rel_dir):
                self._new_directory(rel_dir, stack)
            else:
                self._directory(rel_dir, stack)
            self._tick()
            if len(self.pending) >= _FLUSH:
                self._flush()
        self._hand_out(final=True)
        self._collect()
        # Every directory passed through this process's listing, so its links are all of them.
        t = self.totals
        t.links_skipped += len(self.links)
        t.links_sample.extend({"folder": self.folder.name, "path_index": self.pi, "relpath": rel}
                              for rel in sorted(self.links)[:max(0, _LINKS_SAMPLE - len(t.links_sample))])
        stale_dirs = [d for d in self.known_dirs | set(self.known_fp) if d not in self.visited
                      and not any((d + "/").startswith(f) for f in self.failed_dirs)]
        for d in stale_dirs:
            self._drop(d, list(unpack_dir(self._old_lines(d))))
        self._flush()

    def _enter(self, rel_dir: str, stack: list[str], stat: bool = True,
               keep: bool = True) -> tuple[list[tuple[str, Any]], str] | None:
        """List one directory: its subdirectories go on ``stack``; returns its files as ``(name, stat result or
        None)`` (None for previews, and for every file unless ``stat``; an empty list unless ``keep``) and, when
        ``stat``, its fingerprint. None when it could not be read or is a directory model (both handled here).
        The fingerprint is summed while listing, so checking an unchanged directory (``keep=False``) holds no
        stat results: for a folder of 100,000 files that is a quarter of the time."""
        prefix = rel_dir + "/" if rel_dir else ""
        files: list[tuple[str, Any]] = []
        names: list[str] = []
        subdirs: list[str] = []
        size = mtime = ino = 0
        unstatted = self.unstatted if stat else ("",)
        try:
            # Listing through a directory descriptor makes each stat resolve one name rather than the whole
            # path from the root, which costs the kernel a third less per file here.
            fd = os.open(os.path.join(self.root, rel_dir) if rel_dir else self.root,
                         os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                with os.scandir(fd) as it:
                    for entry in it:
                        name = entry.name
                        if name[0] == ".":
                            continue  # hidden files and our own temp/partial files, as ComfyUI skips them
                        if entry.is_symlink():
                            self.links.add(prefix + name)
                            continue
                        if entry.is_dir():
                            subdirs.append(prefix + name)
                            continue
                        names.append(name)
                        st = None
                        if not name.endswith(unstatted):
                            st = entry.stat()
                            size, mtime, ino = size + st.st_size, mtime + st.st_mtime_ns, ino + st.st_ino
                        if keep:
                            files.append((name, st))
            finally:
                os.close(fd)
        except OSError:
            self.failed_dirs.append(prefix)  # keep what we knew below it rather than dropping it
            self.visited.add(rel_dir)
            return None
        if self.dir_models and rel_dir and "model_index.json" in names:
            self._directory_model(rel_dir)  # its inner folders belong to the model, not listed apart
            return None
        stack.extend(subdirs)
        self.visited.add(rel_dir)
        return files, _fingerprint(names, size, mtime, ino) if stat else ""

    def _new_directory(self, rel_dir: str, stack: list[str]) -> None:
        """A directory the index does not know: list its names only and queue it for the scan processes, which
        stat and read it."""
        listed = self._enter(rel_dir, stack, stat=False)
        if listed is None:
            return
        files = listed[0]
        if not files:
            self.fps[rel_dir] = f"0|{_fingerprint([], 0, 0, 0)}"  # only folders inside: known from now on
            return
        self.new_dirs.append(rel_dir)
        self.new_files += len(files)
        if self.new_files >= _CHUNK_FILES:
            self._hand_out()

    def _hand_out(self, final: bool = False) -> None:
        """Give the queued new directories to the scan processes (started by the first full chunk; a scan that
        never fills one does them here)."""
        if not self.new_dirs:
            return
        if self.pool is None and final:
            for rel_dir in self.new_dirs:
                self._directory(rel_dir, [])
        else:
            if self.pool is None:
                self.pool = billiard.get_context("fork").Pool(
                    self.processes, initializer=_child_init,
                    initargs=((self.index, self.folder, self.pi, self.root, self.full),))
                self.totals.processes = max(self.totals.processes, self.processes)
            self.results.append(self.pool.apply_async(_index_new_dirs, (self.new_dirs,)))
        self.new_dirs, self.new_files = [], 0

    def _collect(self) -> None:
        """Wait for the scan processes' chunks (they wrote their documents themselves) and add up their counts."""
        for res in self.results:
            while not res.ready():
                res.wait(0.2)
                self._tick()
            got = res.get()
            t = self.totals
            t.files, t.added, t.lazy = t.files + got["files"], t.added + got["added"], t.lazy + got["lazy"]
            t.to_hash.extend(got["to_hash"])
            self.failed_dirs.extend(got["failed_dirs"])
        self.results = []

    def _stop_pool(self) -> None:
        """Let the scan processes go without waiting for them: billiard's ``close`` waits for its supervisor
        thread's next tick (up to 0.1 s) and ``join`` polls for about a second, so both run on a thread. On an
        error or a cancel they are terminated."""
        pool, self.pool = self.pool, None
        if pool is None:
            return
        stop = pool.terminate if self.results else lambda: (pool.close(), pool.join())
        threading.Thread(target=stop, name="scan-pool-stop", daemon=True).start()

    def _directory(self, rel_dir: str, stack: list[str]) -> None:
        old_fp = None if self.full else self.known_fp.get(rel_dir)
        listed = self._enter(rel_dir, stack, keep=old_fp is None)
        if listed is None:
            return
        if old_fp is not None:
            count, _, old = old_fp.partition("|")
            if old == listed[1]:
                self.totals.files += int(count)  # nothing in this directory changed
                return
            listed = self._enter(rel_dir, [], keep=True)  # it changed: list it again, keeping the stats
            if listed is None:
                return
        files, fp = listed
        self.fps[rel_dir] = f"{self._classify(rel_dir, rel_dir + '/' if rel_dir else '', files)}|{fp}"

    def _split(self, files: list[tuple[str, os.stat_result]]
               ) -> tuple[list[tuple[str, str, os.stat_result]], dict[str, int], list[tuple[str, os.stat_result]]]:
        """``([(name, stem, stat)] of the models, {stem: its models}, [(name, stat)] of the other files)``, by
        ``Folder.holds``'s rule. Models are told apart by their whole name: ``x.safetensors`` and ``x.gguf`` are
        two, and share the sidecars of their stem."""
        models: list[tuple[str, str, os.stat_result]] = []
        per_stem: dict[str, int] = {}
        others: list[tuple[str, os.stat_result]] = []
        exts = self.exts
        for name, st in files:
            dot = name.rfind(".")
            ext = name[dot:].lower() if dot > 0 else ""
            if (ext in exts or not exts) and not (len(exts) != len(PT_EXTENSIONS) and sidecars.is_sidecar_name(name)):
                stem = name[:dot] if dot > 0 else name
                models.append((name, stem, st))
                per_stem[stem] = per_stem.get(stem, 0) + 1
            else:
                others.append((name, st))
        return models, per_stem, others

    def _classify(self, rel_dir: str, prefix: str, files: list[tuple[str, os.stat_result]]) -> int:
        """Index what changed in one directory; returns its number of models."""
        models, per_stem, others = self._split(files)
        attached: dict[str, list[tuple[str, int | None, int | None]]] = {}
        if models:
            for name, st in others:
                dot = name.find(".")
                while dot > 0:
                    if name[:dot] in per_stem and name[dot:] in _SIDECAR_SET:
                        attached.setdefault(name[:dot], []).append(
                            (name, st.st_size, st.st_mtime_ns) if st else (name, None, None))
                        break
                    dot = name.find(".", dot + 1)
        lines = {name: stat_sig(st.st_size, st.st_mtime_ns, st.st_ino,
                                side_sig(stem, attached.get(stem, []), per_stem[stem]))
                 for name, stem, st in models}
        self.totals.files += len(lines)
        packed = pack_dir(lines)
        old_packed = self._old_lines(rel_dir)
        if packed == (old_packed or "") and not self.full:
            return len(lines)
        old = unpack_dir(old_packed)
        for name, stem, st in models:
            sig = lines[name]
            if old.get(name) == sig and not self.full:
                continue
            was = old.get(name)
            stat_changed = was is None or was.rsplit(":", 1)[0] != sig.rsplit(":", 1)[0]
            self._index_file(prefix + name, name, stem, st, attached.get(stem, ()), per_stem[stem] > 1,
                             was is None, stat_changed)
        self._drop(rel_dir, [n for n in old if n not in lines], keep=bool(lines))
        if lines:
            self.packed[rel_dir] = packed
        return len(lines)

    def _known(self, rel_dir: str) -> bool:
        """Whether the index holds this directory's model lines or fingerprint."""
        return rel_dir in self.known_dirs or rel_dir in self.known_fp

    def _old_lines(self, rel_dir: str) -> str | None:
        if rel_dir not in self.known_dirs:
            return None
        return self.index.dir_lines(self.folder.name, self.pi, rel_dir)

    def _drop(self, rel_dir: str, names: list[str], keep: bool = False) -> None:
        prefix = rel_dir + "/" if rel_dir else ""
        if names:
            self.totals.removed += len(names)
            self.writer.submit(self.index.remove_ids, [model_id(self.folder.name, self.pi,
                                                                rel_dir if n == "." else prefix + n) for n in names],
                               edit_dirs=False)
        if not keep and self._known(rel_dir):
            self.gone.append(rel_dir)

    def _index_file(self, rel: str, name: str, stem: str, st: os.stat_result, side: Any, shared: bool, new: bool,
                    stat_changed: bool) -> None:
        sizes = {n: size for n, size, _ in side}
        directory = self.root + "/" + rel[:-len(name) - 1] if len(rel) > len(name) else self.root
        # A safetensors file without sidecars may still state its base model in its header.
        summary = (sidecars.summary_in(directory, name, stem, sizes, sizes)
                   if sizes or base_models.reads_header(name) else sidecars.EMPTY_SUMMARY)
        doc = build_doc(self.folder.name, self.pi, rel, st, summary, sidecars.preview_from_names(stem, sizes),
                        None, shared=shared)
        if self.folder.name == CHECKPOINTS and (misplaced := misplacement(CHECKPOINTS, self.root + "/" + rel)):
            doc["misplaced"] = misplaced
        if new:
            self.totals.added += 1
        elif stat_changed:
            self.totals.changed += 1
        self.pending.append((doc, stat_changed or self.full))

    def _directory_model(self, rel_dir: str) -> None:
        """A diffusers model: a directory holding model_index.json (its inner files are not listed)."""
        path = os.path.join(self.root, rel_dir)
        size, newest = 0, 0
        for dirpath, _dirs, names in os.walk(path):
            for n in names:
                st = os.stat(os.path.join(dirpath, n))
                size, newest = size + st.st_size, max(newest, st.st_mtime_ns)
        head = os.stat(os.path.join(path, "model_index.json"))
        stem = rel_dir.rpartition("/")[2]
        sig = f"{size}:{newest}:{head.st_ino}:dir"
        self.totals.files += 1
        # A directory model's line lives under its own directory, with the name "." (itself).
        self.visited.add(rel_dir)
        self.packed[rel_dir] = pack_dir({".": sig})
        was = unpack_dir(self._old_lines(rel_dir)).get(".")
        if was == sig and not self.full:
            return
        names = {n for n in os.listdir(os.path.dirname(path)) if n.startswith(stem + ".")}
        doc = build_doc(self.folder.name, self.pi, rel_dir, head, sidecars.read_summary(path, names),
                        sidecars.preview_from_names(stem, names), None, size=size, is_dir=True)
        doc["mtime_ns"] = newest
        self.totals.added += was is None
        self.totals.changed += was is not None
        self.pending.append((doc, False))

    def _flush(self) -> None:
        if self.pending:
            ids = [model_id(d["folder"], d["path_index"], d["relpath"]) for d, _ in self.pending]
            # A scan process's directories have no lines, so none of their models was ever indexed whole (at
            # most written by a scan cut off before its lines; such a model is simply indexed again).
            olds = {} if self.child else dict(zip(ids, self.index.docs_or_none(ids), strict=False))
            new = not any(olds.values())
            docs, queued = [], set()
            for mid, (doc, rehash) in zip(ids, self.pending, strict=False):
                old = olds.get(mid)
                if rehash and not self.full and same_hashed_file(doc, old):
                    # Its directory's lines missed it (a download published it while this directory was being
                    # read), but it is the file the index hashed: nothing is hashed again.
                    rehash = False
                if old and not rehash:
                    keep_known(doc, old)  # only sidecars changed
                else:
                    keep_shared(doc, old)  # a full scan's rebuild of the same bytes
                if rehash and not doc["dir"]:
                    if self.full or doc["size"] <= self.lazy_limit:
                        self.totals.to_hash.append((doc, mid, os.path.join(self.root, doc["relpath"])))
                        queued.add(mid)
                    else:
                        self.totals.lazy += 1
                docs.append(doc)
            self.writer.submit(self.index.put_docs, docs, new=new, queued=queued)
            self.pending = []
        # Directory lines are written after their documents (one writer, in order), so an interrupted scan
        # redoes the directory.
        self.writer.submit(self.index.write_dir_sigs, self.folder.name, self.pi, self.packed, self.fps, self.gone)
        self.packed, self.fps, self.gone = {}, {}, []


class _Writer:
    """Runs the scan's index writes in order on one background thread, so Redis (its own process) stores one
    batch while the walk reads and parses the next. At most two writes wait; the first failure is raised in
    the scanning thread by the next ``submit`` or by ``close``. ``threaded=False`` (a scan process, which has
    nothing else to do meanwhile) writes at once."""

    def __init__(self, threaded: bool = True) -> None:
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None] = \
            queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._loop, name="scan-writer", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                fn, args, kwargs = item
                try:
                    fn(*args, **kwargs)
                except BaseException as exc:  # noqa: BLE001 - handed to the scanning thread
                    self._error = exc

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._raise()
        if self._thread is None:
            fn(*args, **kwargs)
        else:
            self._queue.put((fn, args, kwargs))

    def close(self) -> None:
        """Wait for every submitted write (also when the scan stops early), then raise a failure if any."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


_CHILD: dict[str, Any] = {}


def _child_init(spec: tuple[StoreIndex, Folder, int, str, bool]) -> None:
    # Runs in each forked scan process; the index (and its Redis client, which reconnects after a fork)
    # comes from the parent's memory, not through pickling.
    _CHILD["spec"] = spec
    # The scan allocates tens of thousands of short-lived dicts and holds no cycles worth collecting; moving
    # what the fork inherited out of the collector's sight also keeps those pages shared.
    gc.freeze()
    gc.disable()


def _index_new_dirs(rel_dirs: list[str]) -> dict[str, Any]:
    """In a scan process: index a chunk of new directories, write their documents and directory signatures,
    and return the counts and the files left to hash."""
    index, folder, pi, root, full = _CHILD["spec"]
    totals = _Totals()
    scan = _RootScan(None, index, folder, pi, root, full, totals, None, child=True)
    for rel_dir in rel_dirs:
        scan._directory(rel_dir, [])
    scan._flush()
    return {"files": totals.files, "added": totals.added, "lazy": totals.lazy, "to_hash": totals.to_hash,
            "failed_dirs": scan.failed_dirs}


def _fingerprint(names: list[str], size: int, mtime: int, ino: int) -> str:
    """Every file of a directory in one short string: any added, removed or renamed file changes it, and so
    does any resized, rewritten or replaced one that was statted (the sums of their size, mtime_ns and inode,
    with a CRC of the sorted names)."""
    joined = "\0".join(sorted(names))
    return f"{len(names)}:{size}:{mtime}:{ino}:{zlib.crc32(joined.encode('utf-8', 'surrogateescape'))}"


def _flag_indexed_ggufs(index: StoreIndex) -> None:
    """Give GGUFs in checkpoints indexed before models carried ``misplaced`` their flag: a quick scan does not
    read their unchanged directories again."""
    docs = []
    for d in index.models(CHECKPOINTS):
        if "misplaced" not in d and is_gguf_name(d["relpath"]):
            try:
                path = index.layout.resolve(CHECKPOINTS, d["path_index"], d["relpath"])
            except DepotError:  # a root no longer configured: its models are the cleanup's
                continue
            docs.append({**d, "misplaced": misplacement(CHECKPOINTS, path)})
    index.put_docs(docs)


def _left_unhashed(index: StoreIndex, totals: _Totals) -> None:
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


def _hash_pending(ctx: JobContext, index: StoreIndex, totals: _Totals, locks: _RootLocks) -> None:
    """Hash new/changed files after the walk, so the listing is complete before the slow part starts (the
    roots stay locked meanwhile)."""
    _left_unhashed(index, totals)
    total = sum(doc["size"] for doc, _, _ in totals.to_hash)
    done_before = 0
    batch: list[dict[str, Any]] = []
    for doc, _mid, path in totals.to_hash:
        def progress(n: int, base: int = done_before) -> None:
            locks.renew()
            ctx.progress(base + n, total, phase="hashing", files=totals.files, bytes=base + n)
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

