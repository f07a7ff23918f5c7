"""Test infrastructure: a real redis-server on a free port, worker subprocesses, polling helpers."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # noqa: BLE001 - keep polling through transient errors
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}: last={last!r}")


class RedisServer:
    """A real redis-server with AOF in a temp dir; restartable on the same port and data."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        exe = shutil.which("redis-server")
        if not exe:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server); `make test` "
                               "installs it")
        self.exe = exe
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--maxmemory-policy", "noeviction",
             "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from tests.leakcheck import outlives_test  # imported late: conftest registers it as a plugin first
        # the session's server: a test that restarts it has not leaked it
        outlives_test(self.proc.pid, "the session's redis-server")
        client = redis.Redis(port=self.port)
        wait_for(lambda: client.ping(), timeout=10, what="redis-server to accept connections")
        client.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


def base_env(settings_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPOT_")}
    env.update(settings_env)
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class WorkerProcess:
    """``celery -A workers.celery_app worker`` as a subprocess in its own process group."""

    def __init__(self, env: dict[str, str], *, host: str, queues: list[str], log_path: Path,
                 concurrency: int = 1, pool: str = "prefork", name: str = "w") -> None:
        self.env = {**env, "DEPOT_HOST": host}
        self.host = host
        self.node = f"{name}@{host}"
        self.log_path = log_path
        self.cmd = [str(VENV_BIN / "celery"), "-A", "workers.celery_app", "worker", "-P", pool,
                    "-c", str(concurrency), "-n", self.node, "-Q", ",".join(queues), "--without-mingle",
                    "--without-gossip", "-l", "INFO"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, client: redis.Redis | None = None, timeout: float = 30.0) -> WorkerProcess:
        with open(self.log_path, "ab") as log:  # the child has its own copy of the descriptor
            self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        if client is not None:
            wait_for(lambda: self.node in client.hgetall("depot:workers") or self._dead(), timeout=timeout,
                     what=f"worker {self.node} to be ready")
            if self._dead():
                raise AssertionError(f"worker {self.node} exited: {self.log_path.read_text()[-3000:]}")
        return self

    def _dead(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def kill(self) -> None:
        """SIGKILL the whole process group: the host vanished."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 60.0) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
