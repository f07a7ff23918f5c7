"""Validation of client-supplied relative paths: nothing may point outside a store root. Windows separators
are normalised to ``/``; NUL bytes, absolute paths, drive letters, ``..`` components and symlinks that lead
out of the root are refused with ``InvalidPath``."""
from __future__ import annotations

import os
from pathlib import Path

from shared.errors import InvalidPath

_MAX_REL = 4096


def normalise_relpath(relpath: str) -> str:
    """Return ``relpath`` with ``/`` separators and no ``.`` parts, or raise ``InvalidPath``."""
    if not isinstance(relpath, str) or not relpath.strip():
        raise InvalidPath("The model path is empty; give a path relative to the folder root, e.g. 'sdxl/model.safetensors'.")
    if "\x00" in relpath or len(relpath) > _MAX_REL:
        raise InvalidPath("The model path contains a NUL byte or is too long; give a plain relative path.")
    text = relpath.replace("\\", "/")
    if text.startswith("/") or (len(text) >= 2 and text[1] == ":" and text[0].isalpha()):
        raise InvalidPath(f"{relpath!r} is absolute; give a path relative to the folder root.")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidPath(f"{relpath!r} climbs out of the folder with '..'; give a path inside the folder.")
    if not parts:
        raise InvalidPath(f"{relpath!r} names the folder itself; give a file path inside it.")
    return "/".join(parts)


def inside(root: Path, candidate: Path) -> Path:
    """Return ``candidate`` if its real location (symlinks resolved, as far as it exists) is within the real
    location of ``root``; raise ``InvalidPath`` otherwise."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(candidate)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise InvalidPath(f"{candidate} resolves outside its store root (a symlink escape); refusing.")
    return candidate
