"""Builds the Celery app from the one Settings object. ``celery -A workers.celery_app`` (worker, beat, Flower)
and the web process all use ``make_celery``, so every broker consumer agrees on the visibility timeout."""
from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from celery import Celery

from shared.config import Settings, load_settings
from shared.redis_client import sentinel_options
from shared.redis_url import RedisTarget
from workers import queues

TASK_MODULES = ["workers.tasks", "workers.maintenance", "workers.presence"]


def broker_urls(target: RedisTarget) -> tuple[str, dict[str, Any]]:
    """The broker/result-backend URL and the transport options that go with it. A Sentinel target becomes
    kombu's form, one ``sentinel://`` URL per sentinel joined by ``;`` with the master's credentials and db on
    each, plus ``master_name`` and the sentinels' own connection arguments (``sentinel_kwargs``: kombu, the
    result backend and Flower read the same options)."""
    if not target.is_sentinel:
        return target.url, {}
    cred = ""
    if target.username or target.password:
        cred = quote(target.username or "", safe="") + (f":{quote(target.password, safe='')}" if target.password
                                                         else "") + "@"
    hosts = [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in target.sentinels]
    url = ";".join(f"sentinel://{cred}{host}/{target.db}" for host in hosts)
    return url, {"master_name": target.master_name, "sentinel_kwargs": sentinel_options(target)}


def celery_config(s: Settings) -> dict[str, Any]:
    vt = s.visibility_timeout_s
    transport = {
        "visibility_timeout": vt,
        "socket_timeout": 30,
        "socket_connect_timeout": 10,
        "socket_keepalive": True,
        "health_check_interval": 25,
        # restore orphaned messages every 10 s rather than every ~100 s (kombu 5.7)
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
    }
    annotations = {
        f"depot.{kind}": {"soft_time_limit": soft, "time_limit": hard}
        for kind, (soft, hard) in s.time_limits_s.items() if kind != "maintenance"
    }
    soft, hard = s.time_limits_s["maintenance"]
    annotations["depot.maintenance.*"] = {"soft_time_limit": soft, "time_limit": hard}
    beat: dict[str, Any] = {
        "reap-lost-tasks": {"task": "depot.maintenance.reap", "schedule": timedelta(seconds=s.reaper_interval_s)},
        "cleanup-task-indexes": {"task": "depot.maintenance.cleanup", "schedule": timedelta(hours=1)},
        "clean-stale-partials": {"task": "depot.maintenance.partials", "schedule": timedelta(hours=1)},
        "empty-old-trash": {"task": "depot.maintenance.trash", "schedule": timedelta(hours=1)},
    }
    if s.update_check_s > 0:
        beat["check-civitai-updates"] = {"task": "depot.maintenance.check_updates",
                                         "schedule": timedelta(seconds=s.update_check_s)}
    if s.scan_interval_s > 0:
        beat["periodic-quick-scan"] = {"task": "depot.maintenance.periodic_scan",
                                       "schedule": timedelta(seconds=s.scan_interval_s)}
    broker_url, sentinel_transport = broker_urls(s.redis_target)
    return {
        "broker_url": broker_url,
        "result_backend": broker_url,
        "broker_transport_options": {**transport, **sentinel_transport},
        "result_backend_transport_options": {"visibility_timeout": vt, **sentinel_transport},
        # a message sent while the master is away (a restart, a Sentinel failover) is retried for ~10 s
        "task_publish_retry_policy": {"max_retries": 12, "interval_start": 0, "interval_step": 0.5,
                                      "interval_max": 1.0},
        # a result written while the master is failing over is retried rather than logged as lost
        "result_backend_always_retry": True,
        "result_backend_max_retries": 10,
        "redis_socket_connect_timeout": 5,
        "visibility_timeout": vt,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_soft_shutdown_timeout": s.soft_shutdown_s,
        "worker_enable_soft_shutdown_on_idle": True,
        "worker_deduplicate_successful_tasks": True,
        "result_expires": timedelta(days=7),
        "task_annotations": annotations,
        "task_routes": {"depot.maintenance.*": {"queue": queues.MAINTENANCE}},
        "task_default_queue": queues.MAINTENANCE,
        "task_create_missing_queues": True,
        "worker_hijack_root_logger": False,
        "beat_schedule": beat,
        "beat_schedule_filename": str(s.var_dir / "celerybeat-schedule"),
        "timezone": "UTC",
    }


def make_celery(settings: Settings) -> Celery:
    app = Celery("depot", include=TASK_MODULES + list(settings.task_modules))
    app.conf.update(celery_config(settings))
    app.depot_settings = settings  # type: ignore[attr-defined]
    return app


_app: Celery | None = None


def __getattr__(name: str) -> Any:
    # `celery -A workers.celery_app` looks up `app` / `celery`: build it then, from the environment.
    if name in ("app", "celery"):
        global _app
        if _app is None:
            _app = make_celery(load_settings())
        return _app
    raise AttributeError(name)
