"""The trash: deleting a model renames it and the sidecars that go with it into ``<root>/.trash/<id>/`` (the same
file system, so a 20 GB model is trashed and restored in a rename), where it stays restorable for
``trash_days`` before the hourly maintenance pass empties it.

Inside an entry the files are numbered (``0.trashed`` is the model, then its sidecars) and ``entry.json`` says
where each came from, with the model's index document, so a restore gets back its hashes and verification
without reading the bytes again. No tool lists a trashed file: our scan and ComfyUI skip hidden folders, and a
``.trashed`` name is no model extension that ComfyUI or ComfyUI-Model-Manager would take. The trash lives on
disk beside the models, so every host sees the same one and a Redis loss loses none of it."""
from __future__ import annotations

import errno
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, TypedDict, cast

import orjson

from shared.errors import Conflict, InvalidRequest, NotFound
from shared.files import write_atomic
from shared.store import siblings
from shared.store.index import ModelDoc, StoreIndex, to_model
from shared.store.layout import StoreLayout
from shared.store.ops import ModelRef

TRASH_DIR = ".trash"
SUFFIX = ".trashed"
ENTRY = "entry.json"
_ID = re.compile(r"[0-9a-f]{32}\Z")


class TrashEntry(TypedDict):
    """One trashed model: where it was, when it went, and the files that went with it."""

    id: str
    folder: str
    path_index: int
    relpath: str
    deleted_at: float
    #: each trashed file's path inside the root it came from (the model first)
    files: list[str]
    size: int
    model: dict[str, Any] | None
    doc: ModelDoc | None


def _move(src: Path | str, dst: Path | str) -> None:
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(str(src), str(dst))  # a subfolder mounted from another file system: copied once


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.lstat().st_size


def trash_model(index: StoreIndex, ref: ModelRef) -> TrashEntry:
    """Move the model ``ref`` (and the sidecars no other model of its stem still needs) into its root's trash
    and drop it from the index; ``NotFound`` when neither the index nor the disk has it."""
    path = ref.path
    doc = index.lookup(ref.folder, ref.path_index, ref.relpath)
    if not os.path.lexists(path):
        if doc is None:
            raise NotFound(f"No model {ref.folder}/{ref.path_index}/{ref.relpath}.")
        index.remove(ref.folder, ref.path_index, ref.relpath)  # the file went by other means: forget it
        raise NotFound(f"{ref.folder}/{ref.relpath} is no longer on disk (it was removed outside the depot); "
                       "the library no longer lists it.")
    root = index.layout.root(ref.folder, ref.path_index)
    files = [path, *siblings.sidecars_to_delete(index.layout.folder(ref.folder), path)]
    entry = TrashEntry(id=uuid.uuid4().hex, folder=ref.folder, path_index=ref.path_index, relpath=ref.relpath,
                       deleted_at=time.time(), files=[os.path.relpath(f, root) for f in files], size=_size(path),
                       model=to_model(doc) if doc else None, doc=doc)
    box = root / TRASH_DIR / entry["id"]
    box.mkdir(parents=True)
    # The entry is written first: a crash half-way leaves an entry whose missing files restore skips, never a
    # file in the trash that nothing names.
    write_atomic(box / ENTRY, orjson.dumps(entry))
    moved: list[tuple[Path, Path]] = []
    try:
        for i, src in enumerate(files):
            _move(src, box / f"{i}{SUFFIX}")
            moved.append((src, box / f"{i}{SUFFIX}"))
    except OSError:
        for src, dst in reversed(moved):  # a refused move leaves the model whole where it was
            os.rename(dst, src)
        shutil.rmtree(box, ignore_errors=True)
        raise
    index.remove(ref.folder, ref.path_index, ref.relpath)
    index.refresh_siblings(path)
    return entry


def _roots(layout: StoreLayout) -> list[Path]:
    seen: dict[str, Path] = {}
    for _folder, _pi, root in layout.roots():
        seen.setdefault(os.path.realpath(root), root)
    return list(seen.values())


def _read(box: Path) -> TrashEntry | None:
    try:
        data = orjson.loads((box / ENTRY).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return cast(TrashEntry, data) if isinstance(data, dict) and data.get("id") == box.name else None


def entries(layout: StoreLayout) -> list[tuple[Path, TrashEntry]]:
    """Every trashed model of every root, newest first, with the folder that holds it."""
    out = []
    for root in _roots(layout):
        try:
            boxes = [b for b in (root / TRASH_DIR).iterdir() if _ID.match(b.name)]
        except OSError:
            continue
        out += [(b, e) for b in boxes if (e := _read(b)) is not None]
    return sorted(out, key=lambda pair: -pair[1]["deleted_at"])


def public(entry: TrashEntry, days: float) -> dict[str, Any]:
    """An entry as the API shows it (without the index document), with when it will be emptied."""
    out: dict[str, Any] = {k: v for k, v in entry.items() if k != "doc"}
    out["expires_at"] = entry["deleted_at"] + days * 86400
    return out


def find(layout: StoreLayout, entry_id: str) -> tuple[Path, TrashEntry]:
    if not _ID.match(entry_id):
        raise InvalidRequest(f"{entry_id[:40]!r} is not a trash id; GET /api/v1/trash lists them.")
    for root in _roots(layout):
        box = root / TRASH_DIR / entry_id
        if (entry := _read(box)) is not None:
            return box, entry
    raise NotFound(f"Nothing in the trash has id {entry_id}; it was restored or emptied. GET /api/v1/trash "
                   "lists what is there.")


def restore(index: StoreIndex, entry_id: str) -> dict[str, Any]:
    """Put a trashed model and its sidecars back where they were and index it again (its hashes and
    verification kept); ``Conflict`` when any of their paths has been taken since."""
    box, entry = find(index.layout, entry_id)
    root = box.parent.parent
    pairs = [(box / f"{i}{SUFFIX}", root / rel) for i, rel in enumerate(entry["files"])]
    pairs = [(src, dst) for src, dst in pairs if os.path.lexists(src)]
    if not pairs or pairs[0][1] != root / entry["files"][0]:
        raise Conflict("This trash entry has lost its model file; DELETE /api/v1/trash/<id> empties it.")
    taken = [os.path.relpath(dst, root) for _src, dst in pairs if os.path.lexists(dst)]
    if taken:
        raise Conflict(f"Cannot restore {entry['relpath']}: {', '.join(taken)} is taken by another file since it "
                       "was deleted. Move or delete that file first, then restore again.")
    pairs[0][1].parent.mkdir(parents=True, exist_ok=True)
    for src, dst in pairs:
        _move(src, dst)
    shutil.rmtree(box, ignore_errors=True)
    return index.record_file(pairs[0][1], moved_from=entry.get("doc"))


def remove(layout: StoreLayout, entry_id: str) -> None:
    box, _entry = find(layout, entry_id)
    shutil.rmtree(box)


def empty(layout: StoreLayout, older_than_days: float | None = None) -> list[TrashEntry]:
    """Delete for good every trashed model (or those deleted more than ``older_than_days`` ago)."""
    cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
    gone = []
    for box, entry in entries(layout):
        if cutoff is None or entry["deleted_at"] < cutoff:
            shutil.rmtree(box, ignore_errors=True)
            gone.append(entry)
    return gone
