"""Indexing one directory of a root: list it (fingerprint summed while listing), compare its model lines with the
index, build the documents of what changed and write them in batches. The walk of a root (``walk.RootScan``) and
the forked scan processes (``pool.ChildScan``) both index directories this way; they differ in where the
directories come from and in what the index already knows."""
from __future__ import annotations

import os
import zlib
from typing import Any

from shared.media.gguf import CHECKPOINTS, misplacement
from shared.scan.totals import Totals
from shared.scan.writer import Writer
from shared.store import base_models
from shared.store import sidecar_files as sidecars
from shared.store.index import (
    ModelDoc,
    StoreIndex,
    build_doc,
    keep_known,
    keep_shared,
    model_id,
    pack_dir,
    same_hashed_file,
    side_sig,
    stat_sig,
    unpack_dir,
)
from shared.store.layout import DIRECTORY_MODELS, PT_EXTENSIONS, Folder

_SIDECAR_SET = frozenset(sidecars.SIDECAR_SUFFIXES)


class DirectoryIndexer:
    """Indexes directories of one root. ``known_dirs`` / ``known_fp``: the directories whose model lines and
    fingerprints the index holds; ``threaded``: write on a background thread while the caller goes on."""

    def __init__(self, index: StoreIndex, folder: Folder, pi: int, root: str, full: bool, totals: Totals, *,
                 known_dirs: set[str], known_fp: dict[str, str], threaded: bool) -> None:
        self.index, self.folder, self.pi, self.root = index, folder, pi, root
        self.full, self.totals = full, totals
        self.known_dirs, self.known_fp = known_dirs, known_fp
        self.fps: dict[str, str] = {}
        self.visited: set[str] = set()
        self.failed_dirs: list[str] = []
        self.links: set[str] = set()  # a set: a small scan lists its new directories twice
        self.pending: list[tuple[ModelDoc, bool]] = []  # (doc, needs hashing)
        self.packed: dict[str, str] = {}
        self.gone: list[str] = []
        self.lazy_limit = index.settings.lazy_hash_bytes
        self.dir_models = folder.name in DIRECTORY_MODELS
        self.exts = folder.extensions
        # Nothing in the index depends on a preview's size or time (only its name, which the directory
        # fingerprint covers), so previews are not statted: a third fewer stats on a typical library, which
        # on a network mount are round trips.
        self.unstatted = tuple(e for e in sidecars.PREVIEW_EXTS if e not in self.exts)
        self.writer = Writer(threaded=threaded)

    def indexed_docs(self, ids: list[str]) -> dict[str, ModelDoc | None]:
        """The index's documents of these ids (the old state the new documents are compared with)."""
        return dict(zip(ids, self.index.docs_or_none(ids), strict=False))

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
        return files, fingerprint(names, size, mtime, ino) if stat else ""

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
        beside = {n for n in os.listdir(os.path.dirname(path)) if n.startswith(stem + ".")}
        doc = build_doc(self.folder.name, self.pi, rel_dir, head, sidecars.read_summary(path, beside),
                        sidecars.preview_from_names(stem, beside), None, size=size, is_dir=True)
        doc["mtime_ns"] = newest
        self.totals.added += was is None
        self.totals.changed += was is not None
        self.pending.append((doc, False))

    def _flush(self) -> None:
        if self.pending:
            ids = [model_id(d["folder"], d["path_index"], d["relpath"]) for d, _ in self.pending]
            # A scan process's directories have no lines, so none of their models was ever indexed whole (at
            # most written by a scan cut off before its lines; such a model is simply indexed again).
            olds = self.indexed_docs(ids)
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
            self.writer.submit(self.index.put_docs, docs, queued=queued)
            self.pending = []
        # Directory lines are written after their documents (one writer, in order), so an interrupted scan
        # redoes the directory.
        self.writer.submit(self.index.write_dir_sigs, self.folder.name, self.pi, self.packed, self.fps, self.gone)
        self.packed, self.fps, self.gone = {}, {}, []


def fingerprint(names: list[str], size: int, mtime: int, ino: int) -> str:
    """Every file of a directory in one short string: any added, removed or renamed file changes it, and so
    does any resized, rewritten or replaced one that was statted (the sums of their size, mtime_ns and inode,
    with a CRC of the sorted names)."""
    joined = "\0".join(sorted(names))
    return f"{len(names)}:{size}:{mtime}:{ino}:{zlib.crc32(joined.encode('utf-8', 'surrogateescape'))}"
