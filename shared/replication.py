"""Replica fences: ``WAIT`` after the writes someone is told have happened, so a failover cannot take them back.

Redis replicates asynchronously: a write the master acknowledged can be lost if the master dies before its
replica received it, and Sentinel then promotes that replica. A fence is one pipeline, ``INCR`` of a fence key
then ``WAIT 1 <timeout>``, on one connection. ``WAIT`` covers what that connection wrote, and the replication
stream is ordered, so the fence's own write being on the replica means everything any connection (the task
record's Lua script, the broker message kombu pushed) wrote before it is there too.

Fenced (see ``workers/dispatch.py`` and ``shared/records.py``): task creation after its message is sent and
every user control action, before the API answers; a worker's claim (else the replica could keep a task queued
whose message was consumed) and its finish (else a finished task would run again). Progress, heartbeats and logs
are not: losing a second of them costs nothing.

With no replica connected (the old master has not come back yet) there is nothing to wait for; the fence is
skipped, and logged once, rather than making every answer wait out the timeout. A fence first asks the sentinels
whether the master moved: after a planned switch the old master has no replica either, and writes that landed
there are not acknowledged (``MasterMoved``, a ConnectionError: the API answers 503).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis

from shared.redis_client import FollowingPool, MasterMoved

log = logging.getLogger(__name__)

FENCE_KEY = "depot:replication:fence"
#: Longest a fence waits for the replica: past it the write stands on the master alone (and is logged).
WAIT_TIMEOUT_MS = 1000
#: How long the count of connected replicas (``ROLE``) is trusted.
ROLE_TTL_S = 1.0


class ReplicaFence:
    """Callable; ``enabled`` False (a plain Redis URL, no replica to fail over to) makes it a no-op."""

    def __init__(self, client: redis.Redis, *, enabled: bool, timeout_ms: int = WAIT_TIMEOUT_MS) -> None:
        self.client = client
        self.enabled = enabled
        self.timeout_ms = timeout_ms
        self._replicas = (0.0, 0)  # (checked at, connected replicas)
        self._lock = threading.Lock()
        self._warned = False
        self.stats = {"fences": 0, "seconds": 0.0, "short": 0, "skipped": 0}

    def begin(self) -> Any:
        """The master the writes about to be made go to; hand it to the fence that follows them."""
        pool = self.client.connection_pool
        return pool.master_address if self.enabled and isinstance(pool, FollowingPool) else None

    def __call__(self, since: Any = None) -> int | None:
        """Wait until a replica holds every write made so far (since ``begin()`` returned ``since``). Returns how
        many replicas acknowledged (None when disabled). Never raises for a slow replica; a lost master raises
        redis' ConnectionError as any write, and so does a master that changed since ``since``."""
        if not self.enabled:
            return None
        pool = self.client.connection_pool
        if isinstance(pool, FollowingPool):
            before = since if since is not None else pool.master_address
            now = pool.current_master()
            if before is not None and now is not None and tuple(now) != tuple(before):
                # The writes may have gone to the old master, which the switch wipes: WAIT on the new one
                # would prove nothing about them.
                raise MasterMoved("The Redis master changed while this was being written; it may not have "
                                  "been applied. Try again.")
        wanted = min(1, self._connected_replicas())
        if wanted == 0:
            self.stats["skipped"] += 1
            if not self._warned:
                self._warned = True
                log.warning("event=replica_fence_skipped reason=no_replica_connected")
            return 0
        started = time.perf_counter()
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(FENCE_KEY)
        pipe.wait(wanted, self.timeout_ms)
        acked = int(pipe.execute()[1])
        self.stats["fences"] += 1
        self.stats["seconds"] += time.perf_counter() - started
        if acked < wanted:
            self.stats["short"] += 1
            self._replicas = (0.0, 0)  # ask ROLE again next time
            log.warning("event=replica_fence_timeout waited_ms=%d", self.timeout_ms)
        else:
            self._warned = False
        return acked

    def _connected_replicas(self) -> int:
        checked, count = self._replicas
        if time.monotonic() - checked < ROLE_TTL_S:
            return count
        with self._lock:
            role: Any = self.client.execute_command("ROLE")
            count = len(role[2]) if role and role[0] == "master" else 0
            self._replicas = (time.monotonic(), count)
        return count
