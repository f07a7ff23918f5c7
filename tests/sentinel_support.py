"""A real Redis Sentinel deployment on loopback for tests: one master, one replica and three sentinels (Debian's
``redis-server``, the sentinels as ``redis-server <conf> --sentinel``), each on a free port, with short
``down-after-milliseconds`` / ``failover-timeout`` so a failover takes seconds."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import redis

from tests.support import free_port, wait_for

MASTER_NAME = "depot"


def _redis_server() -> str:
    exe = shutil.which("redis-server")
    if not exe:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server); `make test` installs it")
    return exe


class Node:
    """One redis-server process (data node or sentinel) that can be SIGKILLed and started again on its port."""

    def __init__(self, name: str, workdir: Path, args: list[str], port: int) -> None:
        self.name, self.dir, self.args, self.port = name, workdir, args, port
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Node:
        self.proc = subprocess.Popen([_redis_server(), *self.args], cwd=self.dir, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: self.client().ping() or self._dead(), timeout=10, what=f"{self.name} to answer")
        if self._dead():
            raise AssertionError(f"{self.name} exited: {self.log()[-2000:]}")
        return self

    def _dead(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=2, socket_connect_timeout=1)

    def kill(self) -> None:
        """SIGKILL: the machine is gone, nothing is flushed or handed over."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        path = self.dir / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class SentinelCluster:
    """Master ``a``, replica ``b``, sentinels ``s1..s3`` (quorum 2). ``url`` is the ``DEPOT_REDIS_URL``."""

    def __init__(self, workdir: Path, *, down_after_ms: int = 1000, failover_timeout_ms: int = 4000) -> None:
        self.dir = workdir
        self.down_after_ms, self.failover_timeout_ms = down_after_ms, failover_timeout_ms
        ports = [free_port() for _ in range(2)]
        self.data = {name: Node(name, workdir / name, self._data_args(name, port), port)
                     for name, port in zip(("a", "b"), ports, strict=False)}
        self.data["b"].args += ["--replicaof", "127.0.0.1", str(ports[0])]
        peers = [(f"s{i}", free_port(), os.urandom(20).hex()) for i in (1, 2, 3)]
        self.sentinels = [self._sentinel(peer, peers, ports) for peer in peers]

    @staticmethod
    def _data_args(name: str, port: int) -> list[str]:
        return ["--port", str(port), "--bind", "127.0.0.1", "--dir", ".", "--appendonly", "yes",
                "--appendfsync", "always", "--save", "", "--repl-diskless-sync-delay", "0",
                "--maxmemory-policy", "noeviction", "--logfile", f"{name}.log"]

    def _sentinel(self, me: tuple[str, int, str], peers: list[tuple[str, int, str]], ports: list[int]) -> Node:
        # Sentinel rewrites its config file (discovered peers, the current master), so each gets its own. The
        # peers and the replica are written in up front (with fixed ids), which saves the ~2 s hello rounds
        # sentinels otherwise need to find each other.
        name, port, myid = me
        conf = self.dir / name / "sentinel.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        known = "".join(f"sentinel known-sentinel {MASTER_NAME} 127.0.0.1 {p} {i}\n"
                        for n, p, i in peers if n != name)
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {conf.parent}\nlogfile {name}.log\nsentinel myid {myid}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {ports[0]} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
            f"sentinel failover-timeout {MASTER_NAME} {self.failover_timeout_ms}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            f"sentinel known-replica {MASTER_NAME} 127.0.0.1 {ports[1]}\n" + known)
        return Node(name, conf.parent, [str(conf), "--sentinel"], port)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"sentinel://{hosts}/{MASTER_NAME}/0"

    def start(self, timeout: float = 30.0) -> SentinelCluster:
        self.data["a"].start()
        self.data["b"].start()
        for s in self.sentinels:
            s.start()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0, replicas: int = 1) -> None:
        """Every sentinel knows the other two and sees the master with ``replicas`` linked replicas: only then
        can they agree on a failover."""
        def ready() -> bool:
            for s in self.sentinels:
                state = s.client().sentinel_master(MASTER_NAME)
                if state["num-other-sentinels"] < 2 or state["num-slaves"] < replicas:
                    return False
                linked = [r for r in s.client().sentinel_slaves(MASTER_NAME)
                          if r.get("master-link-status") == "ok" and not r["is_sdown"]]
                if len(linked) < replicas:
                    return False
            return True
        wait_for(ready, timeout=timeout, interval=0.2, what="sentinels to discover each other and the replica")

    def master_port(self) -> int:
        """The master's port as the sentinels report it (the first that answers)."""
        for s in self.sentinels:
            try:
                return int(s.client().sentinel_get_master_addr_by_name(MASTER_NAME)[1])
            except redis.RedisError:
                continue
        raise AssertionError("no sentinel answered")

    def node_on(self, port: int) -> Node:
        return next(n for n in self.data.values() if n.port == port)

    def master(self) -> Node:
        return self.node_on(self.master_port())

    def wait_failover(self, old: Node, timeout: float = 30.0) -> Node:
        """Wait until every sentinel names another node as master and that node says it is one."""
        def switched() -> Node | None:
            ports = {int(s.client().sentinel_get_master_addr_by_name(MASTER_NAME)[1]) for s in self.sentinels}
            if len(ports) != 1 or old.port in ports:
                return None
            new = self.node_on(ports.pop())
            return new if new.client().info("replication")["role"] == "master" else None
        return wait_for(switched, timeout=timeout, interval=0.1, what="the sentinels to promote the replica")

    def wait_replica_of(self, node: Node, master: Node, timeout: float = 40.0) -> None:
        def linked() -> bool:
            info = node.client().info("replication")
            return (info["role"] == "slave" and int(info["master_port"]) == master.port
                    and info["master_link_status"] == "up")
        wait_for(linked, timeout=timeout, interval=0.2, what=f"{node.name} to follow {master.name}")

    def stop(self) -> None:
        for n in [*self.sentinels, *self.data.values()]:
            n.stop()

    def logs(self) -> dict[str, Any]:
        return {n.name: n.log()[-1500:] for n in [*self.data.values(), *self.sentinels]}



class DepotProcess:
    """A ``depot <command>`` subprocess (web, beat) in its own process group, its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args, self.env, self.log_path = args, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DepotProcess:
        from tests.support import ROOT, VENV_BIN
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(VENV_BIN / "depot"), *self.args], env=self.env, cwd=ROOT,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.proc is not None:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
