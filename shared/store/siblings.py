"""Models that share a stem. ComfyUI lists every file of a model extension, so ``x.safetensors`` and ``x.gguf``
(or ``x.ckpt``) in one directory are two models, each known by its full relative path. The sidecars and
previews named after the stem (``x.md``, ``x.webp``, ``x.civitai.info``…) belong to every model of that stem:

- each shows their metadata and preview, but not the hashes a sidecar records: those describe one file and
  nothing says which, so a model's hashes are its own (computed from it, or recorded when it was downloaded).
  The index keeps this (``stem_shared``) for as long as the file's bytes are unchanged, also once it is alone
  with the sidecars or with copies of them;
- moving or renaming one copies the sidecars to its new name while another model of the stem stays behind,
  so both keep their metadata; the last one takes them along;
- deleting one leaves the sidecars to the others; deleting the last one deletes them."""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from shared.store.layout import Folder
from shared.store.sidecar_files import read_summary, sidecar_paths, stem_of


def sibling_names(folder: Folder, name: str, names: Iterable[str]) -> list[str]:
    """The other models of ``name``'s stem among ``names`` (one directory's files), sorted."""
    stem = stem_of(name)
    return sorted(n for n in names if n != name and n.startswith(stem) and stem_of(n) == stem and folder.holds(n))


def _file_names(directory: Path) -> list[str]:
    """The regular files of a directory, as the scan sees them (links and subdirectories are not models)."""
    try:
        with os.scandir(directory) as it:
            return [e.name for e in it if e.is_file(follow_symlinks=False)]
    except OSError:
        return []


def siblings(folder: Folder, path: Path) -> list[Path]:
    """The other models of ``path``'s stem in its directory (``path`` itself need not exist any more)."""
    if path.is_dir():
        return []  # a directory model (diffusers) has no extension to differ by
    return [path.parent / n for n in sibling_names(folder, path.name, _file_names(path.parent))]


def own_summary(summary: dict[str, Any], shared: bool) -> dict[str, Any]:
    """``summary`` as it applies to one model: without the sidecars' hashes when the stem is ``shared``."""
    return {**summary, "hashes": {}} if shared and summary.get("hashes") else summary


def model_summary(folder: Folder, path: Path, doc: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The sidecar summary of one model (``read_summary``), without hashes that may be another file's: while
    other models share the stem, or when its index document ``doc`` says it once did (``stem_shared``)."""
    shared = bool(doc and doc.get("stem_shared")) or bool(siblings(folder, path))
    return own_summary(read_summary(path), shared)


def sidecar_moves(folder: Folder, path: Path, target: Path) -> list[tuple[Path, Path, bool]]:
    """Where ``path``'s sidecars go when the model moves to ``target``: ``(source, destination, copy)``. They are
    copied while another model of the stem stays behind and moved otherwise; a sidecar already named for the
    target (only the extension changed) stays where it is."""
    copy = bool(siblings(folder, path))
    old, new = len(stem_of(path.name)), stem_of(target.name)
    moves = [(s, target.parent / (new + s.name[old:]), copy) for s in sidecar_paths(path)]
    return [(src, dst, copy) for src, dst, copy in moves if dst != src]


def sidecars_to_delete(folder: Folder, path: Path) -> list[Path]:
    """The sidecars that go with a deleted model: none while another model of its stem remains."""
    return [] if siblings(folder, path) else sidecar_paths(path)


def sharing(folder: Folder, path: Path) -> dict[str, list[str]]:
    """What a model shares, for its detail: ``siblings`` (file names of the other models of its stem) and
    ``sidecars`` (file names of the stem's sidecars and previews, which all of them show)."""
    return {"siblings": [p.name for p in siblings(folder, path)],
            "sidecars": sorted(p.name for p in sidecar_paths(path))}
