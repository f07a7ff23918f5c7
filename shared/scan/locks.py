"""A scan's hold on the roots it scans, shared by every host through Redis."""
from __future__ import annotations

import os
import time
from typing import Any

from shared import keys

LOCK_TTL_S = 60


class RootLocks:
    """A scan's hold on its roots: one redis-py Lock per root, taken before the walk and kept (renewed) until
    the scan has hashed the root's files, so a scan from another host finds the root busy rather than hashing
    the same files again. A crashed scan's locks expire after ``LOCK_TTL_S``."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.held: list[Any] = []
        self.renewed = time.monotonic()

    def take(self, root: str) -> bool:
        lock = self.redis.lock(keys.lock(f"scan:{os.path.realpath(root)}"), timeout=LOCK_TTL_S)
        if not lock.acquire(blocking=False):
            return False
        self.held.append(lock)
        return True

    def renew(self) -> None:
        if time.monotonic() - self.renewed > LOCK_TTL_S / 4:
            for lock in self.held:
                lock.reacquire()
            self.renewed = time.monotonic()

    def release(self) -> None:
        for lock in self.held:
            try:
                lock.release()
            except Exception:  # noqa: BLE001 - an expired lock is harmless here; the next scan takes it
                pass
        self.held = []
