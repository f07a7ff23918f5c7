"""Two worker hosts in separate network namespaces, reaching Redis and the fake upstream only over veth links (as
GPU hosts reach the head node over the LAN), sharing one store directory: the host downloading a model is
SIGKILLed, the reaper marks the task lost, and the other host resumes from the partial and publishes one correct
file. Needs root and ``ip netns``; skipped where network namespaces are unavailable."""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import redis as redis_lib

from shared.config import load_settings
from shared.services import Services
from tests.download_support import safetensors_bytes
from tests.fake_upstream import FakeUpstream, _Handler
from tests.support import VENV_BIN, WorkerProcess, base_env, free_port, wait_for
from workers.celery_app import make_celery
from workers.dispatch import Dispatcher

SIZE = 4 * 1024 * 1024


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _netns_available() -> bool:
    if os.geteuid() != 0 or not shutil.which("ip"):
        return False
    probe = f"depotprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
        return True
    except (subprocess.CalledProcessError, OSError):
        return False


pytestmark = pytest.mark.skipif(not _netns_available(), reason="network namespaces need root and `ip netns`")


@pytest.fixture
def lan() -> Iterator[dict]:
    """Two namespaces ``host1``/``host2`` each linked to the root namespace by a veth pair."""
    net = f"10.{random.randint(100, 250)}"
    tag = f"{os.getpid() % 100000}"
    made: list[tuple[str, str]] = []
    try:
        for i in (1, 2):
            ns, outer, inner = f"depot{tag}h{i}", f"vd{tag}a{i}", f"vd{tag}b{i}"
            _ip("netns", "add", ns)
            made.append((ns, outer))
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", ns)
            _ip("addr", "add", f"{net}.{i}.1/24", "dev", outer)
            _ip("link", "set", outer, "up")
            for cmd in (["addr", "add", f"{net}.{i}.2/24", "dev", inner], ["link", "set", inner, "up"],
                        ["link", "set", "lo", "up"], ["route", "add", "default", "via", f"{net}.{i}.1"]):
                _ip("netns", "exec", ns, "ip", *cmd)
        # the head node's address as both hosts reach it (the root namespace answers on either link)
        yield {"head": f"{net}.1.1", "ns": [ns for ns, _ in made]}
    finally:
        for ns, outer in made:
            subprocess.run(["ip", "link", "del", outer], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture
def head(lan: dict, tmp_path: Path) -> Iterator[dict]:
    """Redis and the fake upstream listening on the head address; beat (the reaper) on the head node."""
    port = free_port()
    rdir = tmp_path / "redis"
    rdir.mkdir()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", lan["head"],
                               "--protected-mode", "no", "--dir", str(rdir), "--appendonly", "yes", "--save", "",
                               "--maxmemory-policy", "noeviction"], stdout=subprocess.DEVNULL)
    client = redis_lib.Redis(port=port, decode_responses=True)
    wait_for(client.ping, what="redis on the head node")
    upstream = FakeUpstream(storage_host=lan["head"])
    httpd = ThreadingHTTPServer(("0.0.0.0", 0), type("Handler", (_Handler,), {"up": upstream}))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    upstream.port = httpd.server_address[1]
    env = {"DEPOT_REDIS_URL": f"redis://{lan['head']}:{port}/0", "DEPOT_STORE": str(tmp_path / "models"),
           "DEPOT_VAR_DIR": str(tmp_path / "var"), "DEPOT_ALLOW_PRIVATE_URLS": "1", "DEPOT_LEASE_S": "4",
           "DEPOT_PROGRESS_INTERVAL_S": "0.2", "DEPOT_CHUNK_BYTES": str(64 * 1024), "DEPOT_REAPER_INTERVAL_S": "1",
           "DEPOT_CIVITAI_URL": "http://127.0.0.1:9", "HF_ENDPOINT": "http://127.0.0.1:9"}
    (tmp_path / "models").mkdir()
    (tmp_path / "var").mkdir()
    beat = subprocess.Popen([str(VENV_BIN / "depot"), "beat"], env=base_env(env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)
    workers: list[WorkerProcess] = []
    try:
        yield {"env": env, "redis": client, "upstream": upstream, "base": f"http://{lan['head']}:{upstream.port}",
               "local_redis_url": f"redis://127.0.0.1:{port}/0", "workers": workers}
    finally:
        for w in workers:
            w.kill()
        os.killpg(beat.pid, signal.SIGKILL)
        beat.wait(10)
        httpd.shutdown()
        httpd.server_close()
        server.terminate()
        server.wait(10)


def _worker(head: dict, ns: str, host: str, queues: list[str], tmp_path: Path) -> WorkerProcess:
    w = WorkerProcess(base_env(head["env"]), host=host, queues=queues, log_path=tmp_path / f"worker-{host}.log")
    w.cmd = ["ip", "netns", "exec", ns, *w.cmd]
    head["workers"].append(w)
    return w.start(head["redis"], timeout=60)


def test_sigkilled_host_in_its_own_namespace_is_resumed_by_the_other(lan, head, tmp_path: Path):
    upstream, env = head["upstream"], head["env"]
    data = safetensors_bytes(SIZE, seed=5)
    upstream.add_direct("/files/shared.safetensors", data)
    upstream.fault("/files/shared.safetensors", "slow", bytes_per_s=600_000, times=None)
    settings = load_settings({**env, "DEPOT_REDIS_URL": head["local_redis_url"]})
    services = Services.build(settings)
    # Given host1 (its own network namespace) downloading over the veth link
    host1 = _worker(head, lan["ns"][0], "host1", ["downloads"], tmp_path)
    task, _ = Dispatcher(make_celery(settings), services.records).submit(
        "download", {"url": f"{head['base']}/files/shared.safetensors", "folder": "loras",
                     "sha256": hashlib.sha256(data).hexdigest()})
    wait_for(lambda: (services.records.get(task["id"])["progress"]["done"] or 0) >= SIZE * 0.6, timeout=30,
             what="most of the file on host1")
    # When host1 dies, and host2 (another namespace) is up
    host1.kill()
    upstream.clear_faults()
    _worker(head, lan["ns"][1], "host2", ["downloads", "maintenance"], tmp_path)
    # Then the reaper marks it lost and host2 resumes from host1's partial and publishes one correct file
    done = wait_for(lambda: (t := services.records.get(task["id"]))["state"] in ("succeeded", "failed") and t,
                    timeout=60, interval=0.2, what="host2 to finish")
    assert done["state"] == "succeeded", done["error"]
    assert done["attempt"] == 2 and done["host"] == "host2"
    target = Path(env["DEPOT_STORE"]) / "loras" / "shared.safetensors"
    assert target.read_bytes() == data
    assert upstream.bytes_served("/files/shared.safetensors") < SIZE * 1.5
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".part")]
