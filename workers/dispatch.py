"""Creating and (re)enqueueing jobs: one record per task, a fresh Celery message per run of it."""
from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from shared.records import TaskRecords
from workers import queues

log = logging.getLogger(__name__)

#: A queued task whose message was not confirmed sent this long after its last change is sent again. Far above
#: the time a send takes, including the publish retries that ride out a failover.
UNSENT_AFTER_S = 60.0


class Dispatcher:
    def __init__(self, celery_app: Celery, records: TaskRecords, *, host: str = "") -> None:
        self.celery = celery_app
        self.records = records
        self.host = host

    def submit(self, kind: str, params: dict[str, Any], *, idem_key: str | None = None,
               queue: str | None = None) -> tuple[dict[str, Any], bool]:
        """Create the record (or find the live one for ``idem_key``) and enqueue it. Returns (task, created)."""
        queue = queue or queues.KIND_QUEUE.get(kind, queues.MAINTENANCE)
        since = self.records.fence.begin()
        task, created = self.records.create(kind, params, queue=queue, idem_key=idem_key, submitted_by=self.host)
        if created:
            self.enqueue(task)
            self.records.fence(since)  # the record and its message are on the replica before the API answers
        return task, created

    def enqueue(self, task: dict[str, Any]) -> None:
        """Send one message for the task. Each send gets its own Celery id: Celery deduplicates redelivered
        messages whose id already succeeded, and a resumed task must run again."""
        n = self.records.next_send(task["id"])
        self.celery.send_task(f"depot.{task['kind']}", args=[task["id"]], queue=task["queue"],
                              task_id=f"{task['id']}.{n}")
        self.records.mark_sent(task["id"], n)

    def resend_unsent(self, older_than_s: float = UNSENT_AFTER_S) -> list[str]:
        """Send again the tasks whose send was cut off (see ``TaskRecords.mark_sent``). A message that did reach
        the broker after all only makes a duplicate delivery, which the claim turns away."""
        ids = self.records.unsent(older_than_s)
        for task_id in ids:
            log.warning("event=task_unsent task_id=%s action=send", task_id)
            self.enqueue(self.records.get(task_id))
        return ids

    def control(self, task_id: str, action: str) -> dict[str, Any] | None:
        """Apply a user action; resume and retry enqueue a new run. Returns the task (None once deleted)."""
        since = self.records.fence.begin()
        outcome = self.records.control(task_id, action)
        if outcome == "deleted":
            self.records.fence(since)
            return None
        task = self.records.get(task_id)
        if outcome == "enqueue":
            self.enqueue(task)
        self.records.fence(since)
        return task
