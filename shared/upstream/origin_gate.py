"""How many connections every worker of every host together keeps open to one server, and a shared pause after
that server said "too many" (429) or "unavailable" (503).

A segmented download asks for one slot per connection; slots are members of a sorted set per origin scored by
when they lapse, so a worker that dies without giving its slots back frees them within ``ttl_s``. Three hosts
with two downloads of eight connections each then share the ceiling instead of opening 48 connections to one
CDN, and one 429 slows every downloader of that origin, not only the connection that met it."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import redis

from shared import keys

#: a slot not renewed for this long is free again (a killed worker's connections)
SLOT_TTL_S = 30.0

_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
  return 1
end
if ARGV[5] ~= '1' and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4]) * 1000))
return 1
"""


def _slots_key(origin: str) -> str:
    return keys.PREFIX + "origin:" + origin + ":slots"


def _pause_key(origin: str) -> str:
    return keys.PREFIX + "origin:" + origin + ":pause"


class OriginGate:
    """Slots of the per-origin ceiling (``limit`` connections) and the origin's shared pause."""

    def __init__(self, client: redis.Redis, limit: int, ttl_s: float = SLOT_TTL_S) -> None:
        self.redis, self.limit, self.ttl_s = client, limit, ttl_s
        self._acquire = client.register_script(_ACQUIRE)

    @staticmethod
    def new_holder() -> str:
        return uuid.uuid4().hex

    def acquire(self, origin: str, holder: str, *, force: bool = False) -> bool:
        """Take (or renew) ``holder``'s slot; False when the origin has ``limit`` connections open already.
        ``force``: a connection already open is counted whatever the others hold (renewing a slot that lapsed
        while its connection went on)."""
        got = self._acquire(keys=[_slots_key(origin)],
                            args=[time.time(), self.limit, holder, self.ttl_s, "1" if force else "0"])
        return bool(got)

    def wait(self, origin: str, sleep: Callable[[float], None], log: Callable[[str], None]) -> tuple[str, str]:
        """A slot of ``origin`` (a new holder), waiting while all workers have ``limit`` connections open there;
        ``sleep`` may raise to stop waiting (a pause or cancel)."""
        holder, waited = self.new_holder(), False
        while not self.acquire(origin, holder):
            if not waited:
                log(f"waiting for a free connection to {origin} ({self.limit} open from all workers)")
                waited = True
            sleep(0.5)
        return origin, holder

    def release(self, origin: str, holder: str) -> None:
        self.redis.zrem(_slots_key(origin), holder)

    def pause(self, origin: str, seconds: float) -> None:
        """Every downloader of ``origin`` waits ``seconds`` before its next request (a 429 or 503 met)."""
        ms = max(1, int(seconds * 1000))
        current = self.redis.pttl(_pause_key(origin))
        if current < ms:
            self.redis.set(_pause_key(origin), "1", px=ms)

    def paused_for(self, origin: str) -> float:
        """Seconds left of the origin's pause (0 when none)."""
        left = self.redis.pttl(_pause_key(origin))
        return left / 1000 if left and left > 0 else 0.0
