"""Every Redis key Model Depot uses, built in one place.

| key                                 | type   | content / TTL                                                  |
|-------------------------------------|--------|----------------------------------------------------------------|
| depot:task:{id}                     | HASH   | the task record; expires `task_ttl_s` after a terminal state   |
|                                     |        | (a segmented download's map of finished ranges: `segments`)    |
| depot:task:{id}:events              | STREAM | the task's events (field `e` = JSON), MAXLEN ~ events_maxlen   |
| depot:tasks                         | ZSET   | every task id, score 0, ids sort by creation (lex paging)      |
| depot:tasks:state:{state}           | ZSET   | ids per state, score 0 (lex paging)                            |
| depot:tasks:leases                  | ZSET   | running task ids scored by lease deadline (ms); the reaper's   |
| depot:idem:{key}                    | STRING | id of the live task for an idempotency key                     |
| depot:lock:{name}                   | STRING | redis-py Lock tokens (artifact leases, scan per root, reaper)  |
| depot:workers                       | HASH   | node name -> JSON {name, host, queues, pid, seen}              |
| depot:store:*                       | *      | the model index (shared/store/index.py documents its keys)     |
| depot:prefs                         | HASH   | store-wide preferences set at run time (shared/prefs.py)       |
| depot:workflows:civitai:{what}      | STRING | Civitai's answer for a workflow reference (hash / version /    |
|                                     |        | model), JSON; 1 day, 1 hour when unknown (workflows/sources.py)|
| depot:origin:{host:port}:slots      | ZSET   | connection slots to one server, scored by when they lapse      |
|                                     |        | (shared/upstream/origin_gate.py)                               |
| depot:origin:{host:port}:pause      | STRING | set for Retry-After after a 429/503: every downloader waits    |
| channel depot:events                | PUBSUB | every task event, JSON                                         |
"""
from __future__ import annotations

PREFIX = "depot:"
EVENTS_CHANNEL = PREFIX + "events"
TASKS = PREFIX + "tasks"
LEASES = PREFIX + "tasks:leases"
WORKERS = PREFIX + "workers"
PREFS = PREFIX + "prefs"


def task(task_id: str) -> str:
    return f"{PREFIX}task:{task_id}"


def task_events(task_id: str) -> str:
    return f"{PREFIX}task:{task_id}:events"


def state_index(state: str) -> str:
    return f"{PREFIX}tasks:state:{state}"


def idem(key: str) -> str:
    return f"{PREFIX}idem:{key}"


def lock(name: str) -> str:
    return f"{PREFIX}lock:{name}"
