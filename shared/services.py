"""The collaborators a job or request needs, built once per process and passed down (no singletons)."""
from __future__ import annotations

from dataclasses import dataclass

import redis

from shared import prefs
from shared.config import Settings
from shared.records import TaskRecords
from shared.redis_client import connect


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    records: TaskRecords

    @classmethod
    def build(cls, settings: Settings) -> Services:
        client = connect(settings)
        return cls(settings, client, TaskRecords.from_settings(client, settings))

    def nsfw_level(self) -> int:
        """The NSFW ceiling for previews now: the store-wide preference, else the setting."""
        return prefs.nsfw_level(self.redis, self.settings)
