"""Several worker hosts sharing one store (issue 7): 200 small download jobs from the fake upstream, many of them
duplicates (separate tasks, no API de-duplication, so the workers' target lease and "already present" check do
the work), through 1 worker host and through 3; total time of each, bytes served vs unique bytes (target: equal),
and the time from a worker's SIGKILL to its task running again on another host (lease 4 s, reaper every 1 s here;
production defaults are 60 s and 30 s). Usage: ``python -m bench multihost [--unique N] [--copies C]``."""
from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from bench._stack import Stack
from shared.services import Services
from tests.download_support import safetensors_bytes
from tests.fake_upstream import FakeUpstream
from tests.support import VENV_BIN, base_env
from workers.celery_app import make_celery
from workers.dispatch import Dispatcher

RATE = 2_000_000  # bytes/s per connection: a WAN-ish link, so parallel hosts matter


def _stack(upstream: FakeUpstream) -> Stack:
    return Stack({"DEPOT_ALLOW_PRIVATE_URLS": "1", "DEPOT_CIVITAI_URL": upstream.url, "HF_ENDPOINT": upstream.url,
                  "DEPOT_LEASE_S": "4", "DEPOT_CHUNK_BYTES": str(256 * 1024), "DEPOT_PROGRESS_INTERVAL_S": "0.5"})


def _wait_all(services: Services, ids: list[str], timeout: float = 600) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = services.records.get_many(ids)
        if all(t["state"] in ("succeeded", "failed", "cancelled") for t in tasks):
            return tasks
        time.sleep(0.1)
    raise SystemExit("bench multihost: jobs did not finish in time")


def _run_downloads(upstream: FakeUpstream, files: list[tuple[str, str, int]], copies: int, hosts: int) -> dict:
    upstream.reset_counts()
    for path, _sha, _size in files:
        upstream.fault(path, "slow", bytes_per_s=RATE, times=None)
    stack = _stack(upstream)
    try:
        for i in range(hosts):
            stack.worker(f"gpu{i + 1}", ["downloads"], concurrency=2)
        settings = stack.settings()
        services = Services.build(settings)
        dispatcher = Dispatcher(make_celery(settings), services.records)
        jobs = [(path, sha) for _ in range(copies) for path, sha, _size in files]
        t0 = time.perf_counter()
        ids = [dispatcher.submit("download", {"url": upstream.url + path, "sha256": sha, "folder": "loras"})[0]["id"]
               for path, sha in jobs]
        tasks = _wait_all(services, ids)
        elapsed = time.perf_counter() - t0
        return {"elapsed": elapsed, "ok": sum(t["state"] == "succeeded" for t in tasks), "jobs": len(ids),
                "served": sum(upstream.bytes_served(path) for path, _sha, _size in files),
                "transfers": sum(not (t.get("result") or {}).get("already_present", True) for t in tasks)}
    finally:
        stack.close()
        upstream.clear_faults()


def _beat(stack: Stack) -> subprocess.Popen[bytes]:
    env = base_env({**stack.env, "DEPOT_REAPER_INTERVAL_S": "1"})
    Path(stack.env["DEPOT_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([str(VENV_BIN / "depot"), "beat"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _failover(upstream: FakeUpstream) -> float:
    """Seconds from SIGKILL of the host running a download to the task running again on another host."""
    data = safetensors_bytes(8 * 1024 * 1024, seed=99)
    url = upstream.add_direct("/big/failover.safetensors", data)
    upstream.fault("/big/failover.safetensors", "slow", bytes_per_s=RATE, times=None)
    stack = _stack(upstream)
    beat = _beat(stack)
    try:
        victim = stack.worker("gpu1", ["downloads"])
        settings = stack.settings()
        services = Services.build(settings)
        task, _ = Dispatcher(make_celery(settings), services.records).submit("download", {"url": url})
        while (services.records.get(task["id"])["progress"]["done"] or 0) < 1024 * 1024:
            time.sleep(0.05)
        stack.worker("gpu2", ["downloads", "maintenance"])
        t0 = time.perf_counter()
        victim.kill()
        while True:
            t = services.records.get(task["id"])
            if t["state"] == "running" and t["host"] == "gpu2":
                return time.perf_counter() - t0
            time.sleep(0.05)
    finally:
        os.killpg(beat.pid, signal.SIGKILL)
        beat.wait(10)
        stack.close()
        upstream.clear_faults()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench multihost")
    parser.add_argument("--unique", type=int, default=40)
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--kib", type=int, default=512)
    parser.add_argument("--hosts", type=int, default=3)
    args = parser.parse_args(argv)
    upstream = FakeUpstream().start()
    try:
        files = []
        for i in range(args.unique):
            data = safetensors_bytes(args.kib * 1024, seed=i)
            path = f"/files/m{i:03d}.safetensors"
            upstream.add_direct(path, data)
            files.append((path, hashlib.sha256(data).hexdigest(), len(data)))
        unique_bytes = sum(size for _p, _s, size in files)
        one = _run_downloads(upstream, files, args.copies, 1)
        many = _run_downloads(upstream, files, args.copies, args.hosts)
        for label, r in (("1 host ", one), (f"{args.hosts} hosts", many)):
            print(f"{label}: {r['jobs']} jobs ({r['ok']} ok) in {r['elapsed']:6.1f} s = "
                  f"{r['jobs'] / r['elapsed']:5.1f} "
                  f"jobs/s; transfers {r['transfers']}; bytes served {r['served']} vs unique {unique_bytes} "
                  f"({r['served'] / unique_bytes:.2f}x)")
        print(f"speed-up {args.hosts} hosts vs 1: {one['elapsed'] / many['elapsed']:.2f}x "
              f"(each host 2 download slots, {RATE / 1e6:.0f} MB/s per connection, 2 CPU cores shared)")
        print(f"SIGKILL -> running on another host: {_failover(upstream):.1f} s (lease 4 s, reaper every 1 s)")
    finally:
        upstream.stop()
