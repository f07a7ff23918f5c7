"""Changing a model in the store: move/rename, a new description and edits of its ``NAME.md`` (deleting is
``shared/library/trash.py``'s: a move into the trash). A move takes the model's
sidecars and previews along by the same-stem rules of ``siblings.py`` and keeps the index current, so the API and
any later caller change a model in one way only.

A move keeps what the index knew of the bytes (hashes, verification) through ``record_file(moved_from=...)``;
the models of the stem left behind are re-indexed (their sidecar signature counts the models of the stem)."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import Conflict, InvalidRequest, NotFound
from shared.store import siblings
from shared.store import sidecar_files as sidecars
from shared.store.edits import Edits, edited_markdown
from shared.store.index import ModelDoc, StoreIndex
from shared.store.paths import normalise_relpath


@dataclass(frozen=True)
class ModelRef:
    """One model of the store: ``folder``/``path_index``/``relpath`` (normalised) and its path on disk."""

    folder: str
    path_index: int
    relpath: str
    path: Path

    @classmethod
    def resolve(cls, index: StoreIndex, folder: str, path_index: int, relpath: str) -> ModelRef:
        """The model a client named, its path checked against its store root (``InvalidPath`` otherwise)."""
        path = index.layout.resolve(folder, path_index, relpath)
        return cls(folder, path_index, normalise_relpath(relpath), path)


def known_doc(index: StoreIndex, ref: ModelRef) -> ModelDoc:
    """The index document of ``ref``; a model file on disk that no scan has seen yet is indexed now."""
    doc = index.lookup(ref.folder, ref.path_index, ref.relpath)
    if doc is None and ref.path.is_file() and index.layout.folder(ref.folder).accepts(ref.path.name):
        index.record_file(ref.path)
        doc = index.lookup(ref.folder, ref.path_index, ref.relpath)
    if doc is None:
        raise NotFound(f"No model {ref.folder}/{ref.path_index}/{ref.relpath}; GET /api/v1/models lists what the "
                       "store holds.")
    return doc


def update_model(index: StoreIndex, ref: ModelRef, *, move_to: tuple[str, int, str] | None = None,
                 description: str | None = None, edits: Edits | None = None) -> dict[str, Any]:
    """Move ``ref`` to ``move_to`` (folder, path_index, relpath), replace its ``NAME.md`` with ``description``
    and/or apply ``edits`` to it (after the description); returns the model as it is now. A refused move or
    edit changes nothing."""
    doc = known_doc(index, ref)
    path = ref.path
    if edits:  # made before anything moves, so an edit refused (409) leaves the model where it was
        description = edited_markdown(description if description is not None else sidecars.read_description(path),
                                      edits)
    if move_to is not None:
        path = _move(index, ref, *move_to)
    if description is not None:
        sidecars.write_raw_description(path, description)
    moved = path != ref.path
    model = index.record_file(path, moved_from=doc if moved else None)
    if moved:
        index.refresh_siblings(ref.path)  # the models of its stem it left behind
    return model


def _move(index: StoreIndex, ref: ModelRef, t_folder: str, t_pi: int, t_rel: str) -> Path:
    path = ref.path
    target = index.layout.resolve(t_folder, t_pi, t_rel)
    if target == path:
        return path
    if not index.layout.folder(t_folder).accepts(target.name) and not path.is_dir():
        raise InvalidRequest(f"Field 'move_to.relpath': folder {t_folder!r} does not hold "
                             f"{os.path.splitext(target.name)[1]!r} files.")
    # Sidecars shared with a model of the same stem that stays are copied, not taken from it.
    moves = [(path, target, False)] + siblings.sidecar_moves(index.layout.folder(ref.folder), path, target)
    # Every destination is checked before the first file moves, so a refusal leaves the model whole.
    root = index.layout.root(t_folder, t_pi)
    for _src, dst, _copy in moves:
        index.layout.resolve(t_folder, t_pi, os.path.relpath(dst, root))
    clash = [str(dst) for _src, dst, _copy in moves if os.path.lexists(dst)]
    if clash:
        raise Conflict(f"Refusing to overwrite {', '.join(clash)}; delete or rename it first.")
    target.parent.mkdir(parents=True, exist_ok=True)
    for src, dst, copy in moves:
        if copy:
            shutil.copy2(src, dst)
        else:
            shutil.move(str(src), str(dst))
    index.remove(ref.folder, ref.path_index, ref.relpath)
    return target
