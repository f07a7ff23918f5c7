"""What a running job sees of its task: parameters, progress reporting, cooperative pause/cancel, and the fence
that proves it still owns the task before it publishes anything. Knows nothing of Celery."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from shared.errors import JobInterrupted, StaleAttempt
from shared.records import TaskRecords
from shared.states import TaskState

log = logging.getLogger(__name__)


@dataclass
class JobContext:
    """Handed to every service that runs as a job. Thread-safe for ``progress``/``check``."""

    records: TaskRecords
    task_id: str
    attempt: int
    params: dict[str, Any]
    host: str
    progress_interval_s: float = 1.0
    _last_emit: float = 0.0
    _done: float = 0
    _total: float | None = None
    _cancel: bool = False
    _pause: bool = False
    _stale: bool = False
    _rate_anchor: tuple[float, float] = (0.0, 0.0)
    _rate: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- progress ---------------------------------------------------------------------------------

    def progress(self, done: float, total: float | None = None, *, force: bool = False, **extra: Any) -> None:
        """Record progress; writes to Redis at most once per ``progress_interval_s`` unless ``force``.
        Also raises JobInterrupted / StaleAttempt as soon as a stop is known (so callers need no extra check)."""
        now = time.monotonic()
        with self._lock:
            t0, d0 = self._rate_anchor
            if t0 == 0.0 or done < d0:
                self._rate_anchor = (now, done)
            elif now - t0 >= 1.0:
                self._rate = (done - d0) / (now - t0)
                self._rate_anchor = (now, done)
            self._done, self._total = done, total if total is not None else self._total
            due = force or now - self._last_emit >= self.progress_interval_s
            if due:
                self._last_emit = now
        if due:
            payload = {"done": done, "total": self._total, "rate": round(self._rate, 1), **extra}
            flags = self.records.progress(self.task_id, self.attempt, payload)
            self._apply(flags)
        self.check()

    def snapshot(self) -> dict[str, Any]:
        return {"done": self._done, "total": self._total, "rate": 0}

    def log(self, message: str) -> None:
        self.records.log(self.task_id, self.attempt, message)

    # --- stop requests and fencing -------------------------------------------------------------------

    def _apply(self, flags: Any) -> None:
        if not flags.owned:
            self._stale = True
        self._cancel = self._cancel or flags.cancel
        self._pause = self._pause or flags.pause

    def heartbeat(self) -> None:
        """Renew the lease and learn of stop requests (called by the worker's heartbeat thread)."""
        self._apply(self.records.heartbeat(self.task_id, self.attempt))

    def check(self) -> None:
        """Raise if the job must stop: StaleAttempt when fenced out, JobInterrupted on cancel/pause."""
        if self._stale:
            raise StaleAttempt(f"attempt {self.attempt} of task {self.task_id} was superseded")
        if self._cancel:
            raise JobInterrupted(TaskState.CANCELLED.value)
        if self._pause:
            raise JobInterrupted(TaskState.PAUSED.value)

    def fence(self) -> None:
        """Prove ownership right now (one Redis round trip) before an irreversible step such as publishing a
        file. Raises StaleAttempt / JobInterrupted like ``check``."""
        self.heartbeat()
        self.check()

    @property
    def stop_requested(self) -> str | None:
        if self._cancel:
            return TaskState.CANCELLED.value
        if self._pause:
            return TaskState.PAUSED.value
        return None
