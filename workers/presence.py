"""Worker presence for /health and the Hosts view, and the hand-off of running tasks at shutdown.

Each worker's main process writes ``{name, host, queues, pid, seen}`` into ``depot:workers`` every few seconds.
At shutdown (after soft shutdown has requeued unacked messages) it makes the leases of tasks it still holds due
now, so the requeued message is claimed at once by another worker instead of after the lease runs out."""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from typing import Any

from celery.signals import worker_ready, worker_shutdown, worker_shutting_down

from shared import keys
from workers.base import process_services

log = logging.getLogger(__name__)

PRESENCE_INTERVAL_S = 5.0
#: a worker not seen for this long is shown as gone
PRESENCE_STALE_S = 20.0

_stop = threading.Event()


def _entry(sender: Any) -> dict[str, Any]:
    settings = sender.app.depot_settings
    queues = sorted(q.name for q in sender.app.amqp.queues.consume_from.values()) \
        if sender.app.amqp.queues.consume_from else []
    return {"name": sender.hostname, "host": settings.host, "queues": queues, "pid": os.getpid()}


@worker_ready.connect
def _on_ready(sender: Any = None, **_: Any) -> None:
    services = process_services(sender.app.depot_settings)
    entry = _entry(sender)

    def beat() -> None:
        while not _stop.is_set():
            try:
                services.redis.hset(keys.WORKERS, entry["name"], json.dumps({**entry, "seen": time.time()}))
            except Exception:  # noqa: BLE001 - Redis restarting: keep trying
                log.warning("event=presence_failed worker=%s", entry["name"])
            _stop.wait(PRESENCE_INTERVAL_S)

    threading.Thread(target=beat, name="depot-presence", daemon=True).start()


class _ShutdownNoise(logging.Filter):
    """Once a shutdown has begun, the pool's processes get the same signal as the worker (a Ctrl-C or a deploy
    signals the whole process group) and end mid-task, which Celery reports as each process's exit code and a
    WorkerLostError traceback per task. Those tasks are handed back (one ``event=handoff`` line each) and resume
    on the next start: nothing went wrong, so nothing of that is printed."""

    _EXIT = re.compile(r"exited with 'signal \d+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "WorkerLostError" not in message and not self._EXIT.search(message)


@worker_shutting_down.connect
def _on_shutting_down(**_: Any) -> None:
    quiet = _ShutdownNoise()
    # The root's handlers, and those billiard's own logger writes through (it does not propagate to the root)
    loggers = [logging.getLogger(), *(x for x in logging.root.manager.loggerDict.values()
                                      if isinstance(x, logging.Logger))]
    for handler in {h for x in loggers for h in x.handlers}:
        handler.addFilter(quiet)


@worker_shutdown.connect
def _on_shutdown(sender: Any = None, **_: Any) -> None:
    _stop.set()
    try:
        services = process_services(sender.app.depot_settings)
        for task_id in services.records.held_by(sender.hostname):
            log.warning("event=handoff task_id=%s worker=%s", task_id, sender.hostname)
            services.records.expire_lease(task_id)
        services.redis.hdel(keys.WORKERS, sender.hostname)
    except Exception:  # noqa: BLE001 - shutting down regardless
        log.warning("event=handoff_failed worker=%s", getattr(sender, "hostname", "?"), exc_info=True)


def live_workers(client: Any, stale_s: float = PRESENCE_STALE_S) -> list[dict[str, Any]]:
    now = time.time()
    out = []
    for raw in client.hgetall(keys.WORKERS).values():
        entry = json.loads(raw)
        if now - entry.get("seen", 0) <= stale_s:
            out.append(entry)
    return sorted(out, key=lambda e: (e["host"], e["name"]))
