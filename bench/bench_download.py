"""Download throughput of one big file served from loopback by the fake Hugging Face endpoint, in the same run:
``curl -L -o`` (the bar), ``huggingface_hub.hf_hub_download`` and a Model Depot download job (``run_download``
in-process: resolve, transfer with all six hashes inline, sha256 verify, safetensors check, atomic publish, index).
Rounds alternate the three so page-cache and disk noise hit each alike; medians are quoted. Targets: depot ≥ 0.9×
curl, and faster than huggingface_hub. Usage: ``python -m bench download [--gib N] [--rounds R]``."""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench._files import make_big_file
from bench._stack import Stack
from tests.download_support import job_context
from tests.fake_upstream import FakeUpstream

REPO, NAME = "bench/big", "big.safetensors"


def _timed(fn: Callable[[], Path]) -> float:
    t0 = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - t0
    out.unlink()
    return elapsed


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="bench download")
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    size = int(args.gib * 2**30)
    stack = Stack()
    work = Path(tempfile.mkdtemp(prefix="bench-dl-"))
    up = FakeUpstream().start()
    try:
        src = work / "src.safetensors"
        make_big_file(src, size)
        sha256 = up.add_hf_file(REPO, NAME, src)["sha256"]
        url = f"{up.url}/{REPO}/resolve/main/{NAME}"
        stack.env.update({"DEPOT_ALLOW_PRIVATE_URLS": "1", "HF_ENDPOINT": up.url, "DEPOT_CIVITAI_URL": up.url})
        settings = stack.settings()
        os.environ.update({"HF_ENDPOINT": up.url, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                           "HF_HUB_DISABLE_TELEMETRY": "1"})
        from huggingface_hub import hf_hub_download

        def curl() -> Path:
            out = work / "curl.bin"
            subprocess.run(["curl", "-sSfL", "-o", str(out), url], check=True)
            return out

        def curl_durable() -> Path:
            out = curl()
            subprocess.run(["sync", str(out)], check=True)  # what depot guarantees before publishing: fsync
            return out

        def hub() -> Path:
            path = Path(hf_hub_download(REPO, NAME, local_dir=work / "hub"))
            shutil.rmtree(work / "hub" / ".cache", ignore_errors=True)
            return path

        def depot_with(hashes: tuple[str, ...]) -> Callable[[], Path]:
            def run() -> Path:
                from shared.downloads.job import run_download
                st = settings.replace(download_hashes=hashes)
                ctx, services = job_context(st, {"url": url, "folder": "checkpoints"})
                ctx.progress_interval_s = st.progress_interval_s  # as a worker runs it (tests use 0.05 s)
                result = run_download(ctx, services)
                assert result["hashes"]["SHA256"].lower() == sha256
                stack.redis.flushall()
                return Path(st.store) / "checkpoints" / NAME
            return run

        runs = {"curl": curl, "curl + fsync": curl_durable, "huggingface_hub": hub,
                "depot": depot_with(settings.download_hashes),
                "depot sha256 only": depot_with(("SHA256", "AutoV2"))}
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, fn in runs.items():
                times[name].append(_timed(fn))
        _report(times, size)
    finally:
        up.stop()
        stack.close()
        shutil.rmtree(work, ignore_errors=True)


def _report(times: dict[str, list[float]], size: int) -> None:
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"download {size / 2**30:.2f} GiB from loopback, {len(times['curl'])} rounds (median s, MiB/s):")
    for name, t in med.items():
        rounds = ", ".join(f"{x:.2f}" for x in times[name])
        print(f"  {name:<18} {t:6.2f} s  {size / 2**20 / t:7.0f} MiB/s   [{rounds}]")
    print(f"  depot vs curl: {med['curl'] / med['depot']:.2f}x (target >= 0.9x); "
          f"depot vs huggingface_hub: {med['huggingface_hub'] / med['depot']:.2f}x (target > 1x)")
    print(f"  depot vs curl + fsync (same durability): {med['curl + fsync'] / med['depot']:.2f}x; "
          f"sha256 only: {med['curl + fsync'] / med['depot sha256 only']:.2f}x")
    print(f"  depot sha256 only vs curl: {med['curl'] / med['depot sha256 only']:.2f}x; "
          f"vs huggingface_hub: {med['huggingface_hub'] / med['depot sha256 only']:.2f}x "
          "(huggingface_hub computes no hash while downloading)")
