"""One Redis client per process, built from settings with timeouts suited to a web tier and workers."""
from __future__ import annotations

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from shared.config import Settings


def connect(settings: Settings, *, socket_timeout: float = 10.0) -> redis.Redis:
    """A client with ``decode_responses=True``; pub/sub and pipelines must stay on one thread each."""
    return redis.Redis.from_url(
        settings.effective_redis_url,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=5.0,
        socket_keepalive=True,
        health_check_interval=25,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3),
        client_name="depot",
    )
