"""What the multi-process benchmarks share: a private redis-server and real worker subprocesses in a temp dir."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import redis

from tests.support import RedisServer, WorkerProcess, base_env


class Stack:
    """A temp store/var, a redis-server with AOF, and ``worker(host, queues)`` subprocesses; ``close()`` kills all."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-")
        self.dir = Path(self._tmp.name)
        self.redis_server = RedisServer(self.dir / "redis")
        self.redis_server.start()
        self.redis = redis.Redis.from_url(self.redis_server.url, decode_responses=True)
        (self.dir / "models").mkdir()
        self.env = {"DEPOT_REDIS_URL": self.redis_server.url, "DEPOT_STORE": str(self.dir / "models"),
                    "DEPOT_VAR_DIR": str(self.dir / "var"), "DEPOT_HOST": "bench",
                    "DEPOT_TASK_MODULES": "bench._tasks", **(extra_env or {})}
        self.workers: list[WorkerProcess] = []

    def settings(self) -> Any:
        from shared.config import load_settings
        return load_settings(self.env)

    def worker(self, host: str, queues: list[str], concurrency: int = 1, **env: str) -> WorkerProcess:
        w = WorkerProcess(base_env({**self.env, **env}), host=host, queues=queues, concurrency=concurrency,
                          log_path=self.dir / f"worker-{host}-{len(self.workers)}.log")
        self.workers.append(w)
        return w.start(self.redis, timeout=60)

    def close(self) -> None:
        for w in self.workers:
            w.kill()
        self.redis_server.stop()
        self._tmp.cleanup()
