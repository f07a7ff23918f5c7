"""DepotTask: the one place where a Celery delivery becomes a fenced attempt on a task record.

It claims the record (attempt += 1), runs a heartbeat thread that renews the lease and picks up pause/cancel
requests, calls the job's service with a JobContext, and maps the outcome to exactly one transition.
Task bodies stay thin adapters (workers/tasks.py)."""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import redis
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from shared.errors import DepotError, JobInterrupted, StaleAttempt, error_dict
from shared.jobs import JobContext
from shared.services import Services
from shared.states import TaskState

log = logging.getLogger(__name__)

_services: tuple[int, Services] | None = None


def process_services(settings: Any) -> Services:
    """One set of services (one Redis client) per worker process, created after fork."""
    global _services
    if _services is None or _services[0] != os.getpid():
        _services = (os.getpid(), Services.build(settings))
    return _services[1]


JobFn = Callable[[JobContext, Services], Any]


class JobFailed(Exception):
    """Raised to Celery once a job's record says ``failed``, so Flower and Celery's events show a failure (a job
    that ended ``failed`` returned normally before, and Flower showed it green). Never retried by Celery: the
    message is acknowledged like any other, and retries stay the user's (``POST /tasks/<id>/retry``)."""


class DepotTask(Task):
    """Base class for every job task: ``run_job(task_id, service)`` does the claiming and bookkeeping."""

    abstract = True
    #: expected outcomes: Celery records them as failures without logging a traceback
    throws = (JobFailed,)

    @property
    def services(self) -> Services:
        return process_services(self.app.depot_settings)

    def run_job(self, task_id: str, job: JobFn) -> dict[str, Any]:
        services = self.services
        settings = services.settings
        records = services.records
        claim = records.claim(task_id, host=settings.host, worker=self.request.hostname or settings.host)
        if claim is None:
            log.info("event=skip_delivery task_id=%s reason=not_claimable", task_id)
            return {"skipped": True}
        task = records.get(task_id)
        ctx = JobContext(records, task_id, claim.attempt, task["params"] or {}, settings.host,
                         progress_interval_s=settings.progress_interval_s)
        ctx._done = (task.get("progress") or {}).get("done") or 0
        ctx._total = (task.get("progress") or {}).get("total")
        failed: dict[str, Any] | None = None
        stop = threading.Event()
        # A beat renews the lease and brings the user's pause/cancel: once a second, so a job learns of a stop
        # within a second even while it reports no progress (retry waits, a hash of a big file)
        beat = threading.Thread(target=self._heartbeat, args=(ctx, stop, min(settings.lease_s / 4, 1.0)),
                                name=f"heartbeat-{task_id}", daemon=True)
        beat.start()
        log.info("event=job_start task_id=%s attempt=%s kind=%s", task_id, claim.attempt, task["kind"])
        try:
            result = job(ctx, services)
            records.finish(task_id, claim.attempt, TaskState.SUCCEEDED, result=result,
                           progress=_final_progress(ctx))
        except JobInterrupted as stop_req:
            records.finish(task_id, claim.attempt, stop_req.state, progress=ctx.snapshot())
        except StaleAttempt:
            log.warning("event=fenced_out task_id=%s attempt=%s", task_id, claim.attempt)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # Redis (or the master, mid-failover) stayed away longer than the client's retries: not the job's
            # fault, and a failure written once it is back would end a task that only needs to resume. The
            # lease runs out and the reaper requeues it; the next attempt resumes from its progress.
            log.warning("event=job_redis_lost task_id=%s attempt=%s error=%s", task_id, claim.attempt, exc)
        except SoftTimeLimitExceeded:
            failed = self._fail(records, ctx, {"code": "time_limit", "message": "The job ran past its time limit; "
                                               "retry it, or raise DEPOT_TIME_LIMITS_S for this kind."})
        except DepotError as exc:
            failed = self._fail(records, ctx, exc.to_dict())
        except Exception as exc:  # noqa: BLE001 - the record must say what happened, whatever it was
            log.exception("event=job_crash task_id=%s attempt=%s", task_id, claim.attempt)
            failed = self._fail(records, ctx, error_dict(exc))
        finally:
            stop.set()
        if failed is not None:
            # one string argument: the result backend pickles the exception and rebuilds it from its args
            raise JobFailed(f"{failed['code']}: {failed['message']}")
        return {"attempt": claim.attempt}

    @staticmethod
    def _fail(records: Any, ctx: JobContext, error: dict[str, Any]) -> dict[str, Any] | None:
        """Record the failure; the error when it was recorded (None when another attempt owns the task)."""
        try:
            records.finish(ctx.task_id, ctx.attempt, TaskState.FAILED, error=error, progress=ctx.snapshot())
        except StaleAttempt:
            log.warning("event=fenced_out task_id=%s attempt=%s", ctx.task_id, ctx.attempt)
            return None
        return error

    @staticmethod
    def _heartbeat(ctx: JobContext, stop: threading.Event, interval: float) -> None:
        while not stop.wait(interval):
            try:
                ctx.heartbeat()
            except Exception:  # noqa: BLE001 - Redis blips: the next beat retries; the lease has slack
                log.warning("event=heartbeat_failed task_id=%s", ctx.task_id, exc_info=True)


def _final_progress(ctx: JobContext) -> dict[str, Any]:
    snap = ctx.snapshot()
    if snap["total"]:
        snap["done"] = snap["total"]
    return snap
