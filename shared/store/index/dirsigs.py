"""Directory signatures (what lets a quick scan skip an unchanged directory), the hashing backlog and the
unreachable roots: the index's bookkeeping for the scan."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, cast

import redis as redis_lib

from shared.config import Settings
from shared.store import sidecar_files as sidecars
from shared.store.index.keys import UNHASHED, UNREACHABLE, dirs_key, fp_key, pack_dir, unpack_dir
from shared.store.layout import StoreLayout


def stat_sig(size: int, mtime_ns: int, ino: int, side: str) -> str:
    return f"{size}:{mtime_ns}:{ino}:{side}"


class IndexDirs:
    """The bookkeeping half of ``StoreIndex``: directory signatures, the unhashed set, unreachable roots."""

    redis: redis_lib.Redis
    settings: Settings
    layout: StoreLayout

    def edit_dir_line(self, folder: str, path_index: int, relpath: str, sig: str | None) -> None:
        """Set (or drop) one model's line in its directory's signature entry (publishers outside a scan)."""
        rel_dir, _, name = relpath.rpartition("/")
        key = dirs_key(folder, path_index)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    lines = unpack_dir(cast(str | None, pipe.hget(key, rel_dir)))
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

    def unhashed(self) -> list[str]:
        """Ids a scan queued for hashing and did not hash (it was cancelled or its worker died)."""
        return sorted(cast(set[str], self.redis.smembers(UNHASHED)))

    def forget_unhashed(self, ids: list[str]) -> None:
        if ids:
            self.redis.srem(UNHASHED, *ids)

    def dir_sigs(self, folder: str, path_index: int) -> tuple[set[str], dict[str, str]]:
        """``(directories with model lines, directory -> fingerprint)`` of one root; the lines themselves are
        fetched per changed directory with ``dir_lines`` (an unchanged store never transfers them)."""
        return (set(cast(list[str], self.redis.hkeys(dirs_key(folder, path_index)))),
                cast(dict[str, str], self.redis.hgetall(fp_key(folder, path_index))))

    def dir_lines(self, folder: str, path_index: int, rel_dir: str) -> str | None:
        return cast(str | None, self.redis.hget(dirs_key(folder, path_index), rel_dir))

    def write_dir_sigs(self, folder: str, path_index: int, packed: dict[Any, Any], fps: dict[Any, Any],
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
    def mark_unreachable(self, folder: str, path_index: int, path: str, reachable: bool) -> None:
        field = f"{folder}/{path_index}"
        if reachable:
            self.redis.hdel(UNREACHABLE, field)
        elif not self.redis.hexists(UNREACHABLE, field):
            self.redis.hset(UNREACHABLE, field, json.dumps({"path": path, "since": time.time()}))

    def unreachable(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in cast(dict[str, str], self.redis.hgetall(UNREACHABLE)).items()}



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
