"""Per-job overhead of the task record lifecycle: N jobs through create → enqueue → claim → 3 progress writes →
finish on a real worker subprocess, against N bare Celery no-op tasks on the same Redis and the same worker in the
same run. Prints both rates and the ratio (target: per-job overhead ≤ 2× bare Celery).
Usage: ``python -m bench lifecycle [--jobs N] [--concurrency C]``."""
from __future__ import annotations

import argparse
import time

from celery.result import ResultSet

from bench._stack import Stack
from shared import keys
from shared.services import Services
from workers.celery_app import make_celery
from workers.dispatch import Dispatcher


def _bare(celery, n: int) -> float:
    t0 = time.perf_counter()
    results = ResultSet([celery.send_task("depot.bench_noop", queue="maintenance") for _ in range(n)])
    results.join(timeout=300, interval=0.02, propagate=True)
    return time.perf_counter() - t0


def _lifecycle(dispatcher: Dispatcher, services: Services, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        dispatcher.submit("bench_steps", {"steps": 3}, queue="maintenance")
    done_key = keys.state_index("succeeded")
    while services.redis.zcard(done_key) < n:
        time.sleep(0.02)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench lifecycle")
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)
    stack = Stack({"DEPOT_PROGRESS_INTERVAL_S": "0"})
    try:
        stack.worker("bench", ["maintenance"], concurrency=args.concurrency)
        settings = stack.settings()
        celery = make_celery(settings)
        services = Services.build(settings)
        dispatcher = Dispatcher(celery, services.records, host="bench")
        _bare(celery, 50)  # warm both paths up: pool processes, connections, Lua script cache
        _lifecycle(dispatcher, services, 50)
        stack.redis.delete(keys.state_index("succeeded"))
        bare = _bare(celery, args.jobs)
        ours = _lifecycle(dispatcher, services, args.jobs)
        print(f"bare celery no-op : {args.jobs / bare:8.1f} tasks/s  ({bare / args.jobs * 1000:.2f} ms/task)")
        print(f"depot lifecycle   : {args.jobs / ours:8.1f} jobs/s   ({ours / args.jobs * 1000:.2f} ms/job; "
              "create, enqueue, claim, 3 progress, finish)")
        print(f"ratio (per-job time, depot / bare): {ours / bare:.2f}x   target <= 2.0x")
    finally:
        stack.close()
