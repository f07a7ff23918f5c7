"""The collaborators a job or request needs, built once per process and passed down (no singletons)."""
from __future__ import annotations

from dataclasses import dataclass

import redis

from shared.config import Settings
from shared.records import TaskRecords
from shared.redis_client import connect


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    records: TaskRecords

    @classmethod
    def build(cls, settings: Settings) -> "Services":
        client = connect(settings)
        return cls(settings, client, TaskRecords.from_settings(client, settings))
