"""Task kinds the benchmarks need (loaded by their workers through DEPOT_TASK_MODULES): a bare Celery no-op
(the baseline) and a job that goes through the full record lifecycle with a few progress writes."""
from __future__ import annotations

from typing import Any

from celery import shared_task

from shared.jobs import JobContext
from shared.services import Services
from workers.base import DepotTask


@shared_task(name="depot.bench_noop")
def bench_noop() -> None:
    return None


def _steps(ctx: JobContext, services: Services) -> Any:
    steps = int(ctx.params.get("steps", 3))
    for i in range(steps):
        ctx.progress(i + 1, steps, force=True)
    return {"steps": steps}


@shared_task(name="depot.bench_steps", bind=True, base=DepotTask)
def bench_steps(self: DepotTask, task_id: str) -> dict[str, Any]:
    return self.run_job(task_id, _steps)
