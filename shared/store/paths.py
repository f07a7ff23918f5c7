"""Validation of client-supplied relative paths: nothing may point outside a store root. Windows separators
are normalised to ``/``; NUL bytes, absolute paths, drive letters, ``..`` components and symlinks that lead
out of the root are refused with ``InvalidPath``."""
from __future__ import annotations

import os
import re
from pathlib import Path

from shared.errors import InvalidPath

#: The longest relative path (UTF-8 bytes): with its root it stays under Linux's PATH_MAX (4096).
MAX_RELPATH = 3072
#: The longest file or directory name (bytes) ext4, XFS, btrfs, ZFS and NFS/SMB mounts of them accept.
NAME_MAX = 255
#: Characters no new name may hold: C0 controls (CR/LF split log lines and headers) and DEL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalise_relpath(relpath: str) -> str:
    """Return ``relpath`` with ``/`` separators and no ``.`` parts, or raise ``InvalidPath``."""
    if not isinstance(relpath, str) or not relpath.strip():
        raise InvalidPath("The model path is empty; give a path relative to the folder root, "
                          "e.g. 'sdxl/model.safetensors'.")
    if "\x00" in relpath or len(relpath) > MAX_RELPATH or _name_bytes(relpath) > MAX_RELPATH:
        raise InvalidPath(f"The model path contains a NUL byte or is longer than {MAX_RELPATH} bytes; give a "
                          "plain relative path.")
    text = relpath.replace("\\", "/")
    if text.startswith("/") or (len(text) >= 2 and text[1] == ":" and text[0].isalpha()):
        raise InvalidPath(f"{relpath!r} is absolute; give a path relative to the folder root.")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidPath(f"{relpath!r} climbs out of the folder with '..'; give a path inside the folder.")
    if not parts:
        raise InvalidPath(f"{relpath!r} names the folder itself; give a file path inside it.")
    for p in parts:
        if _name_bytes(p) > NAME_MAX:
            raise InvalidPath(f"The path part {p[:40]!r}... is {_name_bytes(p)} bytes long; a file or folder name "
                              f"holds at most {NAME_MAX} bytes.")
    return "/".join(parts)


def _name_bytes(name: str) -> int:
    return len(name.encode("utf-8", "surrogatepass"))


def check_name(name: str) -> str:
    """A name about to be created in the store (a file, or a directory on its way): one path part, no control
    characters, not hidden (scans skip dot names, so the model would vanish), at most ``NAME_MAX`` bytes.
    Raises ``InvalidPath``. Existing names are only looked up, never checked this way, so odd names already
    on disk stay reachable."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidPath("The name is empty; give a file name such as 'model.safetensors'.")
    if "/" in name or "\\" in name:
        raise InvalidPath(f"{name!r} holds a slash; give a plain name (folders go in the path).")
    if _CONTROL.search(name):
        raise InvalidPath(f"{name!r} holds a control character (a line break, tab or NUL); remove it.")
    if name.startswith("."):
        raise InvalidPath(f"{name!r} starts with a dot: hidden names are skipped by scans; remove the dot.")
    if _name_bytes(name) > NAME_MAX:
        raise InvalidPath(f"{name[:40]!r}... is {_name_bytes(name)} bytes long; a name holds at most {NAME_MAX} "
                          "bytes (UTF-8).")
    return name


def new_relpath(relpath: str) -> str:
    """``normalise_relpath`` for a path about to be created: every part must pass ``check_name`` as well."""
    rel = normalise_relpath(relpath)
    for part in rel.split("/"):
        check_name(part)
    return rel


def inside(root: Path, candidate: Path) -> Path:
    """Return ``candidate`` if its real location (symlinks resolved, as far as it exists) is within the real
    location of ``root``; raise ``InvalidPath`` otherwise."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(candidate)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise InvalidPath(f"{candidate} resolves outside its store root (a symlink escape); refusing.")
    return candidate
