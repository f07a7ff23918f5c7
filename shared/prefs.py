"""Store-wide preferences that users change at run time (dashboard, API) and every host shares. Each one falls
back to its setting, so ``DEPOT_NSFW_LEVEL`` stays the default; they live in Redis (``depot:prefs``) because none
is secret, unlike the upstream keys."""
from __future__ import annotations

import redis as redis_lib

from shared import keys
from shared.config import Settings
from shared.errors import InvalidRequest

#: Civitai's image ratings; the preference is the highest one previews may show.
NSFW_LEVELS = {1: "PG", 2: "PG-13", 4: "R", 8: "X", 16: "XXX"}
_NSFW = "nsfw_level"


def nsfw_level(redis: redis_lib.Redis, settings: Settings) -> int:
    """The NSFW ceiling previews use now: the stored preference, else the setting."""
    raw = redis.hget(keys.PREFS, _NSFW)
    return int(raw) if raw is not None and str(raw).isdigit() else settings.nsfw_level


def set_nsfw_level(redis: redis_lib.Redis, level: object) -> None:
    """Store the NSFW ceiling for every host; None goes back to the setting."""
    if level is None:
        redis.hdel(keys.PREFS, _NSFW)
        return
    if not isinstance(level, int) or isinstance(level, bool) or level not in NSFW_LEVELS:
        choices = ", ".join(f"{n} ({name})" for n, name in NSFW_LEVELS.items())
        raise InvalidRequest(f"NSFW level must be one of {choices}, or null for the server default; got {level!r}.")
    redis.hset(keys.PREFS, _NSFW, str(level))
