"""Shared-store hygiene: partial downloads (``.NAME.HOST.TASK.aN.part`` beside their target) left behind by a
host that died are removed once they are older than ``stale_partial_s`` and nobody can still want them.

Coordination is through Redis only, never file locks or ``exists()`` on the share (both lie on NFS): a partial is
removed only while this job itself holds the download lease on its target path (the same redis-py ``Lock`` the
downloader takes, so no download can adopt the file while it goes), and only when its task is not resumable
(a queued, running, paused or lost task will adopt its partial on its next attempt)."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

from redis.exceptions import LockError

from shared.errors import NotFound
from shared.partials import candidate_targets, download_lock_name, is_partial_name
from shared.services import Services
from shared.states import ACTIVE
from shared.store.layout import StoreLayout

log = logging.getLogger(__name__)

_ACTIVE = {s.value for s in ACTIVE}


def iter_partials(layout: StoreLayout) -> Iterator[Path]:
    seen: set[str] = set()
    for _folder, _index, root in layout.roots():
        real = os.path.realpath(root)
        if real in seen or not os.path.isdir(root):
            continue
        seen.add(real)
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                if is_partial_name(name):
                    yield Path(dirpath) / name


def _resumable(services: Services, task_id: str) -> bool:
    try:
        return services.records.get(task_id)["state"] in _ACTIVE
    except NotFound:
        return False


def _remove_if_stale(services: Services, part: Path, cutoff: float) -> bool:
    task_id, targets = candidate_targets(part)
    if not targets or _resumable(services, task_id):
        return False
    with ExitStack() as held:
        for target in targets:
            lock = services.redis.lock(download_lock_name(target), timeout=60, blocking=False, thread_local=False)
            if not lock.acquire(blocking=False):
                return False  # a download is writing (or adopting) this target right now
            held.callback(_release, lock)
        try:
            if part.stat().st_mtime > cutoff:
                return False
            part.unlink()
        except FileNotFoundError:
            return False
    log.info("event=stale_partial_removed path=%s task_id=%s", part, task_id)
    return True


def _release(lock: object) -> None:
    try:
        lock.release()  # type: ignore[attr-defined]
    except LockError:
        pass


def clean_stale_partials(services: Services) -> int:
    """Remove stale, unleased partial files under every store root; returns how many were removed."""
    settings = services.settings
    layout = StoreLayout(settings.store, tuple(settings.extra_model_paths))
    cutoff = time.time() - settings.stale_partial_s
    removed = 0
    for part in iter_partials(layout):
        try:
            if part.stat().st_mtime > cutoff:
                continue
        except FileNotFoundError:
            continue
        removed += _remove_if_stale(services, part, cutoff)
    return removed
