"""What the replica fence costs: N task submissions (record, broker message, then ``WAIT`` for the replica) and N
pause/resume pairs against a real master + replica + 3 sentinels on loopback, each measured with the fence on and
off in the same run (alternating blocks, so drift hits both). Prints median and p95 per operation and the ratio.
Usage: ``python -m bench replication [--ops N]``."""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from shared.config import load_settings
from shared.services import Services
from tests.sentinel_support import SentinelCluster
from workers.celery_app import make_celery
from workers.dispatch import Dispatcher


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"median {statistics.median(ms):6.3f} ms   p95 {ms[int(len(ms) * 0.95) - 1]:6.3f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench replication")
    parser.add_argument("--ops", type=int, default=400)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        cluster = SentinelCluster(Path(tmp) / "redis").start()
        try:
            (Path(tmp) / "var").mkdir()
            settings = load_settings({"DEPOT_REDIS_URL": cluster.url, "DEPOT_STORE": str(Path(tmp) / "models"),
                                      "DEPOT_VAR_DIR": str(Path(tmp) / "var")})
            services = Services.build(settings)
            records = services.records
            dispatcher = Dispatcher(make_celery(settings), records, host="bench")
            results: dict[tuple[str, bool], list[float]] = {}
            for block in range(8):
                fenced = block % 2 == 0
                records.fence.enabled = fenced
                for _ in range(args.ops // 4):
                    task: dict = {}
                    results.setdefault(("submit", fenced), []).append(
                        _timed(lambda task=task: task.update(dispatcher.submit("verify", {}, queue="verify")[0])))
                    results.setdefault(("pause+resume", fenced), []).append(
                        _timed(lambda task=task: (dispatcher.control(task["id"], "pause"),
                                                  dispatcher.control(task["id"], "resume"))))
            for op in ("submit", "pause+resume"):
                on, off = results[(op, True)], results[(op, False)]
                print(f"{op:13s} fence off: {_summary(off)}")
                ratio = statistics.median(on) / statistics.median(off)
                print(f"{op:13s} fence on : {_summary(on)}   ratio {ratio:.2f}x")
            print(f"fences: {records.fence.stats['fences']}, short (replica slower than "
                  f"{records.fence.timeout_ms} ms): {records.fence.stats['short']}")
            services.redis.close()
        finally:
            cluster.stop()
