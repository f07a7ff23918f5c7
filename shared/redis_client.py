"""One Redis client per process, built from settings with timeouts suited to a web tier and workers.

With a Sentinel URL the client asks the sentinels for the master on every new connection, so after a failover
it reconnects to the promoted replica by itself. Its retry budget is sized to ride out a failover of a few
seconds (``down-after-milliseconds`` plus the election), so a job's progress write or an API call issued while
the master is away waits for the new one instead of failing. A planned switch (``SENTINEL FAILOVER``) leaves the
old master up and writable until Sentinel reconfigures it, seconds later, and what is written there meanwhile is
lost: so the pool also asks the sentinels at most once a second, and drops connections to a master they no
longer name (:class:`FollowingPool`)."""
from __future__ import annotations

import time
from typing import Any

import redis
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from shared.config import Settings
from shared.redis_url import RedisTarget, parse_redis_url

#: Retries of one command against a plain Redis (a restart is waited out by the callers) and against a Sentinel
#: deployment (about 10 s of backoff: a failover with down-after-milliseconds 5000 fits in it).
PLAIN_RETRIES = 3
SENTINEL_RETRIES = 12
#: A sentinel that does not answer within this is skipped for the next one.
SENTINEL_TIMEOUT_S = 1.0
#: How often a busy client re-asks the sentinels which node is the master.
MASTER_CHECK_S = 1.0


class MasterMoved(redis.ConnectionError):
    """The sentinels named a new master while a request was writing: what it wrote may be lost with the old one,
    so it is not acknowledged (the API answers 503 and the client tries again)."""


class FollowingPool(SentinelConnectionPool):
    """A Sentinel pool that re-asks the sentinels, at most every ``MASTER_CHECK_S``, when a connection is taken;
    if they name another master, idle connections are dropped at once and busy ones when released, so every
    command goes to the new master within about a second of a switch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        self._checked = 0.0

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() - self._checked >= MASTER_CHECK_S:
            self.master_moved()
        return super().get_connection(*args, **kwargs)

    def master_moved(self) -> bool:
        """Ask the sentinels now. True when they name another master than the one this pool's connections went
        to (which are then dropped)."""
        before = self.master_address
        now = self.current_master()
        return before is not None and now is not None and tuple(now) != tuple(before)

    def current_master(self) -> tuple[str, int] | None:
        """The master the sentinels name now, or None when none answers (the commands find out for
        themselves)."""
        self._checked = time.monotonic()
        try:
            host, port = self.get_master_address()  # type: ignore[no-untyped-call]  # unannotated in redis-py
            return str(host), int(port)
        except redis.ConnectionError:
            return None


def connect(settings: Settings, *, socket_timeout: float = 10.0) -> redis.Redis:
    """A client with ``decode_responses=True``; pub/sub and pipelines must stay on one thread each."""
    return client_for(settings.redis_target, socket_timeout=socket_timeout)


def client_for(target: RedisTarget | str, *, socket_timeout: float = 10.0, retries: int | None = None,
               client_name: str = "depot") -> redis.Redis:
    """A ``decode_responses`` client for a plain or Sentinel target. ``retries`` overrides the retry budget
    (0: fail at once, for callers that must learn of every disconnect, like the event relay)."""
    if isinstance(target, str):
        target = parse_redis_url(target)
    if retries is None:
        retries = SENTINEL_RETRIES if target.is_sentinel else PLAIN_RETRIES
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": 5.0,
        "socket_keepalive": True,
        "health_check_interval": 25,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries) if retries else
        Retry(NoBackoff(), 0),
        "client_name": client_name,
    }
    if not target.is_sentinel:
        return redis.Redis.from_url(target.url, **options)
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_options(target))
    # one mapping of keyword arguments: redis-py's stubs type master_for's keywords one by one, differently from
    # one release to the next
    master_options: dict[str, Any] = {**target.master_auth(), **options}
    client: redis.Redis = sentinel.master_for(target.master_name, connection_pool_class=FollowingPool,
                                              db=target.db, **master_options)
    return client


def sentinel_options(target: RedisTarget) -> dict[str, Any]:
    """Connection arguments for the sentinels: short timeouts and no retries, so a dead sentinel costs one
    refused or timed-out connect before the next is asked."""
    return {"socket_timeout": SENTINEL_TIMEOUT_S, "socket_connect_timeout": SENTINEL_TIMEOUT_S,
            "retry": Retry(NoBackoff(), 0), **target.sentinel_auth()}


def on_current_master(client: redis.Redis, connection: Any) -> bool:
    """False when the sentinels now name another master than the one ``connection`` (of ``client``) talks to.
    Always True for a plain Redis. Raises ConnectionError when no sentinel knows a master."""
    pool = client.connection_pool
    if not isinstance(pool, SentinelConnectionPool) or connection is None:
        return True
    return tuple(pool.get_master_address()) == (connection.host, connection.port)
