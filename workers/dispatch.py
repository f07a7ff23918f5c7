"""Creating and (re)enqueueing jobs: one record per task, a fresh Celery message per run of it."""
from __future__ import annotations

from typing import Any

from celery import Celery

from shared import keys
from shared.records import TaskRecords
from workers import queues


class Dispatcher:
    def __init__(self, celery_app: Celery, records: TaskRecords, *, host: str = "") -> None:
        self.celery = celery_app
        self.records = records
        self.host = host

    def submit(self, kind: str, params: dict[str, Any], *, idem_key: str | None = None,
               queue: str | None = None) -> tuple[dict[str, Any], bool]:
        """Create the record (or find the live one for ``idem_key``) and enqueue it. Returns (task, created)."""
        queue = queue or queues.KIND_QUEUE.get(kind, queues.MAINTENANCE)
        task, created = self.records.create(kind, params, queue=queue, idem_key=idem_key, submitted_by=self.host)
        if created:
            self.enqueue(task)
        return task, created

    def enqueue(self, task: dict[str, Any]) -> None:
        """Send one message for the task. Each send gets its own Celery id: Celery deduplicates redelivered
        messages whose id already succeeded, and a resumed task must run again."""
        n = self.records.r.hincrby(keys.task(task["id"]), "sends", 1)
        self.celery.send_task(f"depot.{task['kind']}", args=[task["id"]], queue=task["queue"],
                              task_id=f"{task['id']}.{n}")

    def control(self, task_id: str, action: str) -> dict[str, Any] | None:
        """Apply a user action; resume and retry enqueue a new run. Returns the task (None once deleted)."""
        outcome = self.records.control(task_id, action)
        if outcome == "deleted":
            return None
        task = self.records.get(task_id)
        if outcome == "enqueue":
            self.enqueue(task)
        return task
