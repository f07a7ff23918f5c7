"""Fifty hosts asking for the same 200 files (issue 16): as many real worker hosts as two cores hold (each a
Celery worker with a pool of one), the rest lightweight hosts that keep a presence entry as a worker does; every
one of the fifty asks for all 200 files the way the API does (``submit_download``: the plan, then the artifact's
idempotency key). Then 10 of the real hosts are SIGKILLed mid-transfer.

Measured: tasks created and transfers (target: 200: an ask while its file is in flight joins the file's task, one
after it is published gets a task that finds it present), bytes served against the unique bytes (the ranges a
resumed transfer fetches included), the time until all 200 are published, and the reaper's time from the 10
SIGKILLs until every task they held runs again on a survivor or is done (lease 4 s, reaper every 1 s here;
production defaults are 60 s and 30 s). Usage: ``python -m bench fleet [--hosts 50] [--real 14] [--files 200]``."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench._stack import Stack
from shared import keys
from shared.downloads.submit import submit_download
from shared.services import Services
from shared.store.layout import StoreLayout
from tests.download_support import safetensors_bytes
from tests.fake_upstream import FakeUpstream
from tests.support import VENV_BIN, base_env
from workers.celery_app import make_celery
from workers.dispatch import Dispatcher

RATE = 64 * 1024  # bytes/s per connection: each file takes seconds, so hosts die mid-transfer


def _presence(stack: Stack, hosts: list[str], stop: threading.Event) -> threading.Thread:
    """The lightweight hosts' presence entries, renewed every 5 s as a worker's are."""
    def beat() -> None:
        while not stop.is_set():
            now = time.time()
            stack.redis.hset(keys.WORKERS, mapping={f"light@{h}": json.dumps(
                {"name": f"light@{h}", "host": h, "queues": ["downloads"], "pid": 0, "seen": now}) for h in hosts})
            stop.wait(5)
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    return thread


def _ask_all(settings: Any, dispatcher: Dispatcher, urls: list[tuple[str, str]], hosts: int,
             seen: set[str]) -> list[threading.Thread]:
    """Every host asks for every file (each in its own order), all hosts at once; ``seen`` collects the ids of
    the tasks they were given. Returns the asking threads."""
    layout = StoreLayout.from_settings(settings)
    lock = threading.Lock()

    def one_host(n: int) -> None:
        for url, sha in urls[n:] + urls[:n]:
            task, _created = submit_download(settings, layout, {"url": url, "sha256": sha, "folder": "loras"},
                                             dispatcher.submit)
            with lock:
                seen.add(task["id"])

    threads = [threading.Thread(target=one_host, args=(n * len(urls) // hosts,)) for n in range(hosts)]
    for t in threads:
        t.start()
    return threads


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench fleet")
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--real", type=int, default=14)
    ap.add_argument("--kill", type=int, default=10)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--kib", type=int, default=256)
    args = ap.parse_args(argv)
    upstream = FakeUpstream().start()
    stack = Stack({"DEPOT_ALLOW_PRIVATE_URLS": "1", "DEPOT_CIVITAI_URL": upstream.url, "HF_ENDPOINT": upstream.url,
                   "DEPOT_LEASE_S": "4", "DEPOT_CHUNK_BYTES": str(64 * 1024), "DEPOT_PROGRESS_INTERVAL_S": "0.5",
                   "DEPOT_DOWNLOAD_CONNECTIONS": "1"})
    stop = threading.Event()
    beat = None
    try:
        urls, unique = [], 0
        for i in range(args.files):
            data = safetensors_bytes(args.kib * 1024, seed=i)
            path = f"/fleet/m{i:03d}.safetensors"
            urls.append((upstream.add_direct(path, data), hashlib.sha256(data).hexdigest()))
            upstream.fault(path, "slow", bytes_per_s=RATE, times=None)
            unique += len(data)
        t0 = time.perf_counter()
        real = [stack.worker(f"gpu{i + 1:02d}", ["downloads", "maintenance"] if i < 2 else ["downloads"])
                for i in range(args.real)]
        started = time.perf_counter() - t0
        _presence(stack, [f"gpu{i + 1:02d}" for i in range(args.real, args.hosts)], stop)
        env = base_env({**stack.env, "DEPOT_REAPER_INTERVAL_S": "1"})
        Path(stack.env["DEPOT_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
        beat = subprocess.Popen([str(VENV_BIN / "depot"), "beat"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        settings = stack.settings()
        services = Services.build(settings)
        dispatcher = Dispatcher(make_celery(settings), services.records)
        t0 = time.perf_counter()
        seen: set[str] = set()
        askers = _ask_all(settings, dispatcher, urls, args.hosts, seen)
        store = Path(stack.env["DEPOT_STORE"]) / "loras"
        # When a fifth of the files are published, ten real hosts die at once, mid-transfer
        while sum(1 for p in store.glob("m*.safetensors")) < args.files // 5:
            time.sleep(0.1)
        victims = {v.host for v in real[-args.kill:]}
        held = {t["id"] for t in services.records.get_many(sorted(seen)) if t["state"] == "running"
                and t["host"] in victims}
        t_kill = time.perf_counter()
        for v in real[-args.kill:]:
            v.kill()
        reaped = resumed = None
        while True:
            now = services.records.get_many(sorted(held))
            # reaped: no longer running on a dead host (lost, queued again, or taken by a survivor)
            if reaped is None and not any(t["state"] == "running" and t["host"] in victims for t in now):
                reaped = time.perf_counter() - t_kill
            elsewhere = [t["state"] == "succeeded" or (t["state"] == "running" and t["host"] not in victims)
                         for t in now]
            if resumed is None and all(elsewhere):
                resumed = time.perf_counter() - t_kill
            if not any(a.is_alive() for a in askers):
                tasks = services.records.get_many(sorted(seen))
                if all(t["state"] in ("succeeded", "failed", "cancelled") for t in tasks):
                    break
            time.sleep(0.1)
        ids = sorted(seen)
        total = time.perf_counter() - t0
        served = sum(upstream.bytes_served(p) for p in (f"/fleet/m{i:03d}.safetensors" for i in range(args.files)))
        ok = sum(t["state"] == "succeeded" for t in tasks)
        print(f"fleet: {args.hosts} hosts ({args.real} real workers of one slot, started in {started:.1f} s; "
              f"{args.hosts - args.real} lightweight), {args.files} files of {args.kib} KiB at {RATE // 1024} KiB/s")
        transfers = sum(not (t.get("result") or {}).get("already_present", True) for t in tasks)
        print(f"  asks {args.hosts * args.files} -> {len(ids)} tasks (an ask after its file is published gets a "
              f"task that finds it present); transfers {transfers} (target {args.files}) "
              f"{'OK' if transfers == args.files else 'MISSED'}")
        print(f"  published {ok}/{len(ids)} in {total:.1f} s; bytes served {served} vs unique {unique} "
              f"({served / unique:.2f}x; resumed ranges after the kills included)")
        nan = float("nan")
        print(f"  {args.kill} hosts SIGKILLed holding {len(held)} tasks -> all reaped and requeued in "
              f"{reaped if reaped is not None else nan:.1f} s (lease 4 s, reaper every 1 s); running again on a "
              f"survivor or done in {resumed if resumed is not None else nan:.1f} s (behind the queue of the others)")
    finally:
        stop.set()
        if beat is not None:
            os.killpg(beat.pid, signal.SIGKILL)
            beat.wait(10)
        stack.close()
        upstream.stop()
