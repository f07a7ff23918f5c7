"""The job kinds as Celery tasks: each is an adapter from a task id to one service in shared/."""
from __future__ import annotations

from typing import Any

from celery import shared_task

from shared.jobs import JobContext
from shared.services import Services
from workers.base import DepotTask


def _download(ctx: JobContext, services: Services) -> Any:
    from shared.downloads.job import run_download
    return run_download(ctx, services)


def _scan(ctx: JobContext, services: Services) -> Any:
    from shared.scan import run_scan
    return run_scan(ctx, services)


def _verify(ctx: JobContext, services: Services) -> Any:
    from shared.verify.job import run_verify
    return run_verify(ctx, services)


def _preview(ctx: JobContext, services: Services) -> Any:
    from shared.previews.job import run_previews
    return run_previews(ctx, services)


def _workflow(ctx: JobContext, services: Services) -> Any:
    from shared.workflows.job import run_workflow
    return run_workflow(ctx, services)


def _bulk(ctx: JobContext, services: Services) -> Any:
    from shared.bulk.job import run_bulk
    return run_bulk(ctx, services)


@shared_task(name="depot.download", bind=True, base=DepotTask)
def download(self: DepotTask, task_id: str) -> dict[str, Any]:
    return self.run_job(task_id, _download)


@shared_task(name="depot.scan", bind=True, base=DepotTask)
def scan(self: DepotTask, task_id: str) -> dict[str, Any]:
    return self.run_job(task_id, _scan)


@shared_task(name="depot.verify", bind=True, base=DepotTask)
def verify(self: DepotTask, task_id: str) -> dict[str, Any]:
    return self.run_job(task_id, _verify)


@shared_task(name="depot.preview", bind=True, base=DepotTask)
def preview(self: DepotTask, task_id: str) -> dict[str, Any]:
    return self.run_job(task_id, _preview)


@shared_task(name="depot.workflow", bind=True, base=DepotTask)
def workflow(self: DepotTask, task_id: str) -> dict[str, Any]:
    return self.run_job(task_id, _workflow)


@shared_task(name="depot.bulk", bind=True, base=DepotTask)
def bulk(self: DepotTask, task_id: str) -> dict[str, Any]:
    return self.run_job(task_id, _bulk)
