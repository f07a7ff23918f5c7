"""Job kinds that exist only for the test suite (loaded by workers through DEPOT_TASK_MODULES)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from celery import shared_task

from shared.jobs import JobContext
from shared.services import Services
from workers.base import DepotTask


def _count(ctx: JobContext, services: Services) -> Any:
    """Counts to ``steps`` at ``interval`` seconds a step, resuming from recorded progress; writes a marker
    file (when ``marker`` is given) only after fencing, to show a superseded attempt can no longer write."""
    steps = int(ctx.params.get("steps", 10))
    interval = float(ctx.params.get("interval", 0.1))
    start = int(ctx.snapshot()["done"] or 0)
    for i in range(start, steps):
        time.sleep(interval)
        ctx.progress(i + 1, steps)
    if ctx.params.get("marker"):
        ctx.fence()
        with open(Path(ctx.params["marker"]), "a") as fh:
            fh.write(f"attempt={ctx.attempt}\n")
    if ctx.params.get("redis_lost_on_attempt") == ctx.attempt:
        import redis
        raise redis.ConnectionError("Error 111 connecting to the master (as while Sentinel is still failing over)")
    if ctx.params.get("fail"):
        from shared.errors import DepotError
        raise DepotError("asked to fail", code="test_failure", http_status=400)
    return {"counted": steps, "resumed_from": start, "attempt": ctx.attempt}


@shared_task(name="depot.test_count", bind=True, base=DepotTask)
def test_count(self: DepotTask, task_id: str) -> dict[str, Any]:
    return self.run_job(task_id, _count)
