"""Beat jobs: the lease reaper, index cleanup, stale partial files, the trash, the Civitai update check, and the
optional periodic scan."""
from __future__ import annotations

import logging
from typing import Any

from celery import current_app, shared_task

from workers.base import process_services
from workers.dispatch import Dispatcher

log = logging.getLogger(__name__)


def _services() -> Any:
    return process_services(current_app.depot_settings)


@shared_task(name="depot.maintenance.reap")
def reap() -> list[str]:
    """Running tasks whose lease expired become lost and are requeued under the same id; queued tasks whose
    message was never confirmed sent are sent again."""
    services = _services()
    lost = services.records.reap()
    dispatcher = Dispatcher(current_app, services.records, host=services.settings.host)
    for task_id in lost:
        log.warning("event=task_lost task_id=%s action=requeue", task_id)
        dispatcher.enqueue(services.records.get(task_id))
    dispatcher.resend_unsent()
    return lost


@shared_task(name="depot.maintenance.cleanup")
def cleanup() -> int:
    from shared.store.index import StoreIndex
    services = _services()
    StoreIndex(services.redis, services.settings).drop_legacy_keys()
    return services.records.cleanup_indexes()


@shared_task(name="depot.maintenance.partials")
def partials() -> int:
    from shared.hygiene import clean_stale_partials
    return clean_stale_partials(_services())


@shared_task(name="depot.maintenance.trash")
def empty_trash() -> int:
    """Models deleted more than ``trash_days`` ago leave the trash for good."""
    from shared.library import trash
    from shared.store.layout import StoreLayout
    settings = _services().settings
    gone = trash.empty(StoreLayout.from_settings(settings), older_than_days=settings.trash_days)
    for entry in gone:
        log.info("event=trash_emptied folder=%s relpath=%s", entry["folder"], entry["relpath"])
    return len(gone)


@shared_task(name="depot.maintenance.periodic_scan")
def periodic_scan() -> str:
    from shared.scan import submit_params
    services = _services()
    task, _ = Dispatcher(current_app, services.records, host=services.settings.host).submit(
        "scan", submit_params(mode="quick"), idem_key="scan:all")
    return task["id"]


@shared_task(name="depot.maintenance.check_updates")
def check_updates() -> str:
    """Newer Civitai versions of every model that came from there: one bulk task (its progress in the queue)."""
    services = _services()
    task, _ = Dispatcher(current_app, services.records, host=services.settings.host).submit(
        "bulk", {"action": "updates", "query": {}}, idem_key="updates:all")
    return task["id"]
