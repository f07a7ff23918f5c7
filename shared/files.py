"""Small file-system primitives for a shared store: capped whole-file reads, atomic whole-file writes and
directory fsync."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str, *, mode: int = 0o644, fsync: bool = False) -> Path:
    """Write ``data`` to a temp file beside ``path`` and rename it over ``path``: readers on any host see the old
    file or the new one, never a half-written one. ``mode`` is applied explicitly because temp files start 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_capped(path: str | Path, cap: int, size: int | None = None) -> bytes | None:
    """The whole file, or None when it holds more than ``cap`` bytes. ``size`` (from a directory listing)
    saves the ``fstat``. Plain ``os`` calls: scans read tens of thousands of small files, and a file object
    costs several times the read itself."""
    if size is not None and size > cap:
        return None
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if size is None:
            size = os.fstat(fd).st_size
            if size > cap:
                return None
        parts = [os.read(fd, size + 1)]
        total = len(parts[0])
        # One read normally returns the whole file; read on after a short read or when the file grew since
        # its size was taken, until its end or past the cap.
        while parts[-1] and total != size and total <= cap:
            parts.append(os.read(fd, min(cap + 1 - total, 1 << 20)))
            total += len(parts[-1])
    finally:
        os.close(fd)
    if total > cap:
        return None
    return parts[0] if len(parts) == 1 else b"".join(parts)
