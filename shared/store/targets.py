"""Which model files a maintenance job (verify, previews) works on: a list of refs, one folder, or the whole
store. Folders are walked on disk (not only the index), so models added by hand are included; temp files,
hidden files, previews and sidecars are skipped, and a directory listed under two folders is visited once."""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import DepotError, InvalidRequest
from shared.store.layout import StoreLayout

#: Never model files, even in folders that accept every extension.
_NOT_MODELS = frozenset({".md", ".txt", ".json", ".info", ".yaml", ".yml", ".tmp", ".part", ".webp", ".png",
                         ".jpg", ".jpeg", ".gif", ".bmp", ".mp4", ".webm", ".html"})


@dataclass(frozen=True)
class Target:
    """One model file: its ref (``{"folder","path_index","relpath"}``), absolute path, and why it cannot be
    worked on (``problem``) when the ref points at nothing."""

    ref: dict[str, Any]
    path: Path
    problem: str | None = None


def parse_ref(item: Any) -> tuple[str, int, str]:
    """Validate one ``{"folder","path_index","relpath"}`` object (InvalidRequest when malformed)."""
    if not isinstance(item, dict):
        raise InvalidRequest("Each model reference must be an object {\"folder\", \"path_index\", \"relpath\"}.")
    folder, index, rel = item.get("folder"), item.get("path_index", 0), item.get("relpath")
    if not isinstance(folder, str) or not isinstance(rel, str) or not rel:
        raise InvalidRequest("A model reference needs string fields 'folder' and 'relpath'.")
    if isinstance(index, bool) or not isinstance(index, int):
        raise InvalidRequest("A model reference's 'path_index' must be a whole number.")
    return folder, index, rel


def _walk(layout: StoreLayout, folder: str, index: int, root: Path, seen: set[str]) -> Iterator[Target]:
    spec = layout.folder(folder)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            suffix = os.path.splitext(name)[1].lower()
            if name.startswith(".") or suffix in _NOT_MODELS or not spec.accepts(name):
                continue
            path = Path(dirpath) / name
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            rel = path.relative_to(root).as_posix()
            yield Target({"folder": folder, "path_index": index, "relpath": rel}, path)


def iter_targets(layout: StoreLayout, params: dict[str, Any]) -> Iterator[Target]:
    """The files named by a job's params: ``models`` (list of refs), else ``folder``, else every folder."""
    models = params.get("models")
    if models:
        for item in models:
            ref_folder, index, rel = parse_ref(item)
            ref = {"folder": ref_folder, "path_index": index, "relpath": rel}
            try:
                path = layout.resolve(ref_folder, index, rel)
            except DepotError as exc:
                yield Target(ref, Path(rel), exc.message)
                continue
            yield Target(ref, path, None if path.is_file() else "the file does not exist")
        return
    folder = params.get("folder")
    if folder is not None:
        layout.folder(folder)  # NotFound names the valid way to list folders
    seen: set[str] = set()
    for name, index, root in layout.roots():
        if (folder is None or name == folder) and root.is_dir():
            yield from _walk(layout, name, index, root, seen)
