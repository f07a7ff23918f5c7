"""The one task-state vocabulary, used by Redis records, the API, events, the CLI and the dashboard."""
from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"


#: States a task never leaves on its own; records in them expire after the task TTL.
TERMINAL: frozenset[TaskState] = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED})
#: States shown as "active" (the WebSocket snapshot, the queue view).
ACTIVE: frozenset[TaskState] = frozenset({TaskState.QUEUED, TaskState.RUNNING, TaskState.PAUSED, TaskState.LOST})

#: Product job kinds. Tests may register more kinds; records accept any kind string.
KINDS: tuple[str, ...] = ("download", "scan", "verify", "preview", "workflow", "bulk")

#: User control actions and the states each is allowed from (contract §3).
CONTROL_FROM: dict[str, frozenset[TaskState]] = {
    "pause": frozenset({TaskState.QUEUED, TaskState.RUNNING}),
    "resume": frozenset({TaskState.PAUSED}),
    "cancel": frozenset({TaskState.QUEUED, TaskState.RUNNING, TaskState.PAUSED, TaskState.LOST}),
    "retry": frozenset({TaskState.FAILED, TaskState.CANCELLED, TaskState.LOST}),
    "delete": TERMINAL,
}

#: Worker-side transitions: a running attempt may end in these states.
FINISH_TO: frozenset[TaskState] = frozenset(
    {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED, TaskState.PAUSED, TaskState.QUEUED}
)
#: A worker may claim a task in these states.
CLAIMABLE: frozenset[TaskState] = frozenset({TaskState.QUEUED, TaskState.LOST})


def vocabulary() -> dict[str, object]:
    """The vocabulary as JSON, served to the dashboard so it never retypes it."""
    return {
        "states": [s.value for s in TaskState],
        "terminal": sorted(s.value for s in TERMINAL),
        "active": sorted(s.value for s in ACTIVE),
        "kinds": list(KINDS),
        "control": {k: sorted(s.value for s in v) for k, v in CONTROL_FROM.items()},
    }
