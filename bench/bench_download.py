"""Download throughput of one big file from the fake upstream on loopback (in a process of its own), in the same
run as its baselines, rounds alternating so page-cache and disk noise hit each alike; medians are quoted.

* capped: every connection limited to ``--cap-mib`` MiB/s (a server-side throttle per TCP connection, as storage
  CDNs have): ``curl`` (one connection), ``aria2c -x16 -s16 -k1M`` and ``aria2c -x8 -s8 -k1M``,
  ``huggingface_hub.hf_hub_download``, and a Model Depot download job (``run_download`` in-process: transfer with
  all six hashes inline, safetensors check, fsync and atomic publish, index) with 1, 4, 8 and 16 connections.
  Targets: depot (8) >= 7x curl and >= 1.0x aria2c with 8 connections.
* uncapped: ``curl``, ``curl`` + fsync, ``huggingface_hub``, depot with 1 and 8 connections. Target: depot >= 1.0x
  curl + fsync.

Usage: ``python -m bench download [--gib N] [--rounds R] [--cap-mib M] [--only capped|uncapped]``. aria2c comes from
Debian's ``aria2`` package; without it those rows are skipped with a message."""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._files import make_big_file
from bench._stack import Stack
from tests.download_support import job_context

REPO, NAME = "bench/big", "big.safetensors"


def _timed(fn: Callable[[], Path]) -> float:
    os.sync()  # the previous run's writeback is not this one's
    t0 = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - t0
    out.unlink()
    return elapsed


class _Upstream:
    """``bench._upstream`` serving ``src`` (capped at ``rate`` bytes/s per connection, 0 = not)."""

    def __init__(self, src: Path, sha256: str, rate: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench._upstream", str(src), sha256, str(rate)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.direct, self.base = self.proc.stdout.readline().split()

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


def _runs(stack: Stack, work: Path, up: _Upstream, sha256: str, capped: bool) -> dict[str, Callable[[], Path]]:
    from huggingface_hub import hf_hub_download

    os.environ.update({"HF_ENDPOINT": up.base, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                       "HF_HUB_DISABLE_TELEMETRY": "1"})
    settings = stack.settings()

    def curl() -> Path:
        out = work / "curl.bin"
        subprocess.run(["curl", "-sSfL", "-o", str(out), up.direct], check=True)
        return out

    def curl_durable() -> Path:
        out = curl()
        subprocess.run(["sync", str(out)], check=True)  # what depot guarantees before publishing: fsync
        return out

    def aria2(n: int) -> Callable[[], Path]:
        def run() -> Path:
            subprocess.run(["aria2c", "-q", f"-x{n}", f"-s{n}", "-k1M", "--allow-overwrite=true",
                            "--auto-file-renaming=false", "-d", str(work), "-o", "aria.bin", up.direct], check=True)
            return work / "aria.bin"
        return run

    def hub() -> Path:
        path = Path(hf_hub_download(REPO, NAME, local_dir=work / "hub", endpoint=up.base))
        shutil.rmtree(work / "hub" / ".cache", ignore_errors=True)
        return path

    def depot(connections: int) -> Callable[[], Path]:
        def run() -> Path:
            from shared.downloads.job import run_download
            st = settings.replace(download_connections=connections)
            ctx, services = job_context(st, {"url": up.direct, "folder": "checkpoints", "sha256": sha256})
            ctx.progress_interval_s = st.progress_interval_s  # as a worker runs it (tests use 0.05 s)
            result = run_download(ctx, services)
            assert result["hashes"]["SHA256"].lower() == sha256
            stack.redis.flushall()
            return Path(st.store) / "checkpoints" / NAME
        return run

    runs: dict[str, Callable[[], Path]] = {"curl": curl}
    if capped:
        if shutil.which("aria2c"):
            runs.update({"aria2c x16": aria2(16), "aria2c x8": aria2(8)})
        else:
            print("  aria2c not found: install Debian's aria2 (apt-get install aria2) for its rows", flush=True)
        runs.update({"huggingface_hub": hub, **{f"depot x{n}": depot(n) for n in (1, 4, 8, 16)}})
    else:
        runs.update({"curl + fsync": curl_durable, "huggingface_hub": hub, "depot x1": depot(1),
                     "depot x8": depot(8)})
    return runs


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="bench download")
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cap-mib", type=float, default=16.0)
    ap.add_argument("--only", choices=("capped", "uncapped"))
    args = ap.parse_args(argv)
    size = int(args.gib * 2**30)
    stack = Stack({"DEPOT_ALLOW_PRIVATE_URLS": "1"})
    work = Path(tempfile.mkdtemp(prefix="bench-dl-"))
    try:
        src = work / "src.safetensors"
        make_big_file(src, size)
        sha256 = _sha256(src)
        for capped in (True, False):
            if args.only and args.only != ("capped" if capped else "uncapped"):
                continue
            up = _Upstream(src, sha256, int(args.cap_mib * 2**20) if capped else 0)
            try:
                runs = _runs(stack, work, up, sha256, capped)
                times: dict[str, list[float]] = {name: [] for name in runs}
                for _ in range(args.rounds):
                    for name, fn in runs.items():
                        times[name].append(_timed(fn))
            finally:
                up.stop()
            _report(times, os.path.getsize(src), f"capped at {args.cap_mib:g} MiB/s per connection" if capped
                    else "uncapped loopback")
    finally:
        stack.close()
        shutil.rmtree(work, ignore_errors=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(8 * 2**20):
            h.update(block)
    return h.hexdigest()


def _report(times: dict[str, list[float]], size: int, what: str) -> None:
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"download {size / 2**30:.2f} GiB, {what}, {len(times['curl'])} rounds (median s, MiB/s):")
    for name, t in med.items():
        rounds = ", ".join(f"{x:.2f}" for x in times[name])
        print(f"  {name:<16} {t:7.2f} s  {size / 2**20 / t:7.0f} MiB/s   [{rounds}]")
    ratio: dict[str, Any] = {}
    if "depot x4" in med:
        ratio["depot x8 vs curl"] = (med["curl"] / med["depot x8"], ">= 7x")
        if "aria2c x8" in med:
            ratio["depot x8 vs aria2c x8"] = (med["aria2c x8"] / med["depot x8"], ">= 1.0x")
            ratio["depot x16 vs aria2c x16"] = (med["aria2c x16"] / med["depot x16"], "")
        ratio["depot x8 vs huggingface_hub"] = (med["huggingface_hub"] / med["depot x8"], "")
    else:
        ratio["depot x8 vs curl + fsync"] = (med["curl + fsync"] / med["depot x8"], ">= 1.0x")
        ratio["depot x1 vs curl + fsync"] = (med["curl + fsync"] / med["depot x1"], "")
        ratio["depot x8 vs curl"] = (med["curl"] / med["depot x8"], "")
    for name, (value, target) in ratio.items():
        print(f"  {name}: {value:.2f}x" + (f" (target {target})" if target else ""))
