"""Task records in Redis: the only module that writes task state.

Each transition is one Lua script (``shared/lua/<name>.lua``), atomic, attempt-fenced, and emits one event
(bumped ``seq``, appended to the task's bounded stream, published on ``depot:events``). This module wraps each
script in one function that turns return codes into typed errors.
"""
from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, cast

import redis

from shared import keys
from shared.errors import IllegalTransition, InvalidRequest, NotFound, StaleAttempt
from shared.replication import ReplicaFence
from shared.states import ACTIVE, CLAIMABLE, CONTROL_FROM, FINISH_TO, TERMINAL, TaskState

_LUA_DIR = Path(__file__).with_name("lua")
_SCRIPT_NAMES = ("create", "claim", "heartbeat", "progress", "log", "finish", "control", "reap", "segments")


def _lua_set(name: str, states: Iterable[Any]) -> str:
    return f"local {name} = {{" + ", ".join(f"['{s}'] = true" for s in sorted(str(x) for x in states)) + "}\n"


def _lua_tables() -> str:
    text = _lua_set("TERMINAL", TERMINAL) + _lua_set("CLAIMABLE", CLAIMABLE) + _lua_set("FINISH_TO", FINISH_TO)
    text += "local CONTROL_FROM = {}\n"
    for action, states in CONTROL_FROM.items():
        text += f"CONTROL_FROM['{action}'] = " + _lua_set("_", states).split("= ", 1)[1]
    return text


def script_source(name: str) -> str:
    """The full text of a transition script: state tables, the prelude, then the script."""
    return _lua_tables() + (_LUA_DIR / "_prelude.lua").read_text() + (_LUA_DIR / f"{name}.lua").read_text()


def new_task_id() -> str:
    """Ids sort by creation time (microsecond timestamp first), so lexicographic order is age order."""
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Claim:
    task_id: str
    attempt: int


@dataclass(frozen=True)
class Flags:
    """What a heartbeat or progress call learned: ``owned`` False means this attempt was fenced out."""

    owned: bool
    cancel: bool = False
    pause: bool = False


#: Marks a send confirmed, unless the task was deleted meanwhile (HSET would bring back a bare hash).
_MARK_SENT = "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'sent', ARGV[1]) end"

class Task(TypedDict):
    """A task record as the API, the event stream and every job read it (``Task`` in the contract)."""

    id: str
    kind: str
    queue: str
    state: str
    attempt: int
    host: str | None
    worker: str | None
    seq: int
    cancel_requested: bool
    pause_requested: bool
    params: dict[str, Any]
    result: Any
    error: dict[str, Any] | None
    progress: dict[str, Any]
    created_at: float | None
    started_at: float | None
    updated_at: float | None
    finished_at: float | None


def _json(raw: dict[str, str], field: str) -> Any:
    return json.loads(raw[field]) if raw.get(field) else None


def _time(raw: dict[str, str], field: str) -> float | None:
    return float(raw[field]) if raw.get(field) else None


def decode_task(raw: dict[str, str]) -> Task:
    """A stored hash as the API's ``Task`` shape."""
    return Task(
        id=raw["id"], kind=raw.get("kind", ""), queue=raw.get("queue", ""), state=raw.get("state", ""),
        attempt=int(raw.get("attempt", 0)), host=raw.get("host") or None, worker=raw.get("worker") or None,
        seq=int(raw.get("seq", 0)), cancel_requested=bool(raw.get("cancel_requested")),
        pause_requested=bool(raw.get("pause_requested")),
        params=_json(raw, "params") or {}, result=_json(raw, "result"), error=_json(raw, "error"),
        progress=_json(raw, "progress") or {"done": 0, "total": None, "rate": 0},
        created_at=_time(raw, "created_at"), started_at=_time(raw, "started_at"),
        updated_at=_time(raw, "updated_at"), finished_at=_time(raw, "finished_at"))


class TaskRecords:
    """Task records on one Redis client. Thread-safe (redis-py clients are)."""

    def __init__(self, client: redis.Redis, *, ttl_s: int, lease_s: float, events_maxlen: int = 500,
                 replicated: bool = False) -> None:
        self.r = client
        self.ttl_s = int(ttl_s)
        self.lease_ms = int(lease_s * 1000)
        self.maxlen = int(events_maxlen)
        # Script objects: a direct call that meets NOSCRIPT (a promoted replica has an empty script cache) loads
        # the script and runs it again. None of them is ever queued on a pipeline.
        self._scripts = {name: client.register_script(script_source(name)) for name in _SCRIPT_NAMES}
        #: WAIT for a replica (Sentinel deployments): ``fence()`` after what the API acknowledges
        self.fence = ReplicaFence(client, enabled=replicated)

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Any) -> TaskRecords:
        return cls(client, ttl_s=settings.task_ttl_s, lease_s=settings.lease_s, events_maxlen=settings.events_maxlen,
                   replicated=settings.redis_target.is_sentinel)

    def _run(self, name: str, task_id: str, *args: Any) -> Any:
        return self._scripts[name](keys=[keys.task(task_id)], args=[keys.PREFIX, task_id, *args])

    # --- creation and reads -------------------------------------------------------------------------

    def create(self, kind: str, params: dict[str, Any], *, queue: str, idem_key: str | None = None,
               submitted_by: str = "") -> tuple[Task, bool]:
        """Create a queued task; with ``idem_key``, return the live task holding that key instead.

        Returns ``(task, created)``.
        """
        task_id = new_task_id()
        code, found = self._run("create", task_id, kind, json.dumps(params), queue, idem_key or "",
                                self.maxlen, submitted_by)
        return self.get(found), bool(code == 1)

    def get(self, task_id: str) -> Task:
        """Raises NotFound when the task does not exist (or has expired)."""
        raw = self.r.hgetall(keys.task(task_id))
        if not raw:
            raise NotFound(f"No task with id {task_id!r} (finished tasks expire after {self.ttl_s // 86400} days).")
        return decode_task(cast(dict[str, str], raw))  # the client decodes responses to str

    def get_many(self, ids: list[str]) -> list[Task]:
        pipe = self.r.pipeline(transaction=False)
        for task_id in ids:
            pipe.hgetall(keys.task(task_id))
        return [decode_task(raw) for raw in pipe.execute() if raw]

    def page(self, *, state: str | None = None, kind: str | None = None, limit: int = 50,
             cursor: str | None = None) -> tuple[list[Task], str | None]:
        """Newest first; ``cursor`` is the last id of the previous page. Returns ``(tasks, next_cursor)``."""
        if state is not None and state not in {s.value for s in TaskState}:
            raise InvalidRequest(f"Unknown state {state!r}; use one of {', '.join(s.value for s in TaskState)}.")
        index = keys.state_index(state) if state else keys.TASKS
        out: list[Task] = []
        upper = f"({cursor}" if cursor else "+"
        batch = max(limit * 2, 50)
        while len(out) <= limit:
            ids = cast(list[str], self.r.zrevrangebylex(index, upper, "-", start=0, num=batch))
            if not ids:
                break
            tasks = {t["id"]: t for t in self.get_many(ids)}
            missing = [i for i in ids if i not in tasks]
            if missing:  # expired records: drop them from the index as we pass
                self.r.zrem(index, *missing)
            out += [tasks[i] for i in ids if i in tasks and (kind is None or tasks[i]["kind"] == kind)]
            upper = f"({ids[-1]}"
            if len(ids) < batch:
                break
        if len(out) > limit:
            return out[:limit], out[limit - 1]["id"]
        return out, None

    def active(self, limit: int = 200) -> list[Task]:
        ids: list[str] = []
        for state in sorted(ACTIVE):
            ids += cast(list[str], self.r.zrevrangebylex(keys.state_index(state), "+", "-", start=0, num=limit))
        return sorted(self.get_many(ids), key=lambda t: t["id"], reverse=True)

    def events(self, task_id: str, since: int = 0) -> list[dict[str, Any]]:
        """Events of one task with ``seq > since``, oldest first."""
        self.get(task_id)
        entries = cast(list[tuple[str, dict[str, str]]], self.r.xrange(keys.task_events(task_id)))
        events = [json.loads(fields["e"]) for _id, fields in entries]
        return [e for e in events if e["seq"] > since]

    # --- worker side: claim, heartbeat, progress, finish (attempt-fenced) -------------------------------

    def claim(self, task_id: str, *, host: str, worker: str) -> Claim | None:
        """Start a new attempt. Returns None when the task is not claimable now (already running elsewhere,
        finished, paused or gone): a duplicate delivery that must do nothing."""
        since = self.fence.begin()
        res = self._run("claim", task_id, host, worker, self.lease_ms, self.maxlen)
        if res[0] != 1:
            return None
        self.fence(since)  # the broker message is consumed: the replica must know the task is running
        return Claim(task_id, int(res[1]))

    def heartbeat(self, task_id: str, attempt: int) -> Flags:
        res = self._run("heartbeat", task_id, attempt, self.lease_ms)
        return Flags(True, bool(res[1]), bool(res[2])) if res[0] == 1 else Flags(False)

    def progress(self, task_id: str, attempt: int, progress: dict[str, Any]) -> Flags:
        res = self._run("progress", task_id, attempt, self.lease_ms, json.dumps(progress), self.maxlen)
        return Flags(True, bool(res[1]), bool(res[2])) if res[0] == 1 else Flags(False)

    def log(self, task_id: str, attempt: int, message: str) -> bool:
        return bool(self._run("log", task_id, attempt, message, self.maxlen))

    def save_segments(self, task_id: str, attempt: int, segment_map: str) -> bool:
        """The owning attempt saves its download's map of finished ranges ("" removes it)."""
        return bool(self._run("segments", task_id, attempt, segment_map))

    def segments(self, task_id: str) -> str | None:
        """The download's map of finished ranges, as the last attempt saved it."""
        return cast(str | None, self.r.hget(keys.task(task_id), "segments"))

    def finish(self, task_id: str, attempt: int, state: TaskState | str, *, result: Any = None,
               error: dict[str, Any] | None = None, progress: dict[str, Any] | None = None) -> None:
        """End the attempt in ``state``. Raises StaleAttempt when the attempt no longer owns the task."""
        since = self.fence.begin()
        res = self._run("finish", task_id, attempt, str(state),
                        "" if result is None else json.dumps(result), "" if error is None else json.dumps(error),
                        "" if progress is None else json.dumps(progress), self.ttl_s, self.maxlen)
        if res[0] == -2:
            raise IllegalTransition(f"A running task cannot end in state {state!r}.")
        if res[0] != 1:
            raise StaleAttempt(f"Attempt {attempt} of task {task_id} no longer owns it (now {res[1]!r}, "
                               f"attempt {res[2]!r}).")
        self.fence(since)  # a finished task lost in a failover would run again

    # --- user side: control actions -----------------------------------------------------------------

    def control(self, task_id: str, action: str) -> str:
        """Apply pause/resume/cancel/retry/delete. Returns 'flagged', 'done', 'enqueue' or 'deleted'.

        Raises NotFound, or IllegalTransition (409) when the action is not allowed in the task's state.
        """
        if action not in CONTROL_FROM:
            raise InvalidRequest(f"Unknown action {action!r}.")
        res = self._run("control", task_id, action, self.ttl_s, self.maxlen)
        if res[0] == -1:
            raise NotFound(f"No task with id {task_id!r}.")
        if res[0] == -2:
            allowed = ", ".join(sorted(s.value for s in CONTROL_FROM[action]))
            raise IllegalTransition(f"Cannot {action} a task that is {res[1]}; {action} is allowed when the task "
                                    f"is {allowed}.", details={"state": res[1]})
        return str(res[1])

    # --- the broker messages of a task ----------------------------------------------------------------

    def next_send(self, task_id: str) -> int:
        """Number the task's next broker message (each run of a task is a fresh message)."""
        return int(self.r.hincrby(keys.task(task_id), "sends", 1))

    def mark_sent(self, task_id: str, n: int) -> None:
        """Message ``n`` is on the broker. A task left queued (or lost) without this mark had its send cut off
        (the web process or the master died in between) and is sent again by the reaper."""
        self.r.eval(_MARK_SENT, 1, keys.task(task_id), n)

    def unsent(self, older_than_s: float, limit: int = 1000) -> list[str]:
        """Queued or lost tasks, unchanged for ``older_than_s``, whose last message was never confirmed sent."""
        ids: list[str] = []
        for state in sorted(CLAIMABLE):
            ids += cast(list[str], self.r.zrangebylex(keys.state_index(state), "-", "+", start=0, num=limit))
        pipe = self.r.pipeline(transaction=False)
        for task_id in ids:
            pipe.hmget(keys.task(task_id), "state", "sends", "sent", "updated_at")
        cutoff = time.time() - older_than_s
        return [task_id for task_id, (state, sends, sent, updated) in zip(ids, pipe.execute(), strict=False)
                if state in CLAIMABLE and (not sent or sent != sends) and float(updated or 0) < cutoff]

    # --- reaper --------------------------------------------------------------------------------------

    def reap(self, limit: int = 100) -> list[str]:
        """Tasks whose lease expired become lost (returned, to be requeued) or cancelled/paused as asked."""
        return list(self._scripts["reap"](keys=[keys.LEASES], args=[keys.PREFIX, limit, self.ttl_s, self.maxlen]))

    def expire_lease(self, task_id: str) -> None:
        """Make a running task's lease due now (its worker is shutting down and handed it back)."""
        self.r.zadd(keys.LEASES, {task_id: 0}, xx=True)

    def held_by(self, worker: str) -> list[str]:
        """Ids of running tasks whose record names ``worker`` as its node."""
        ids = cast(list[str], self.r.zrange(keys.LEASES, 0, -1))
        return [t["id"] for t in self.get_many(ids) if t.get("worker") == worker and t["state"] == "running"]

    def cleanup_indexes(self, batch: int = 1000) -> int:
        """Drop index members whose record has expired. Returns how many were dropped."""
        dropped = 0
        for index in [keys.TASKS] + [keys.state_index(s.value) for s in TaskState]:
            members = cast(list[str], self.r.zrange(index, 0, -1))
            for start in range(0, len(members), batch):
                chunk = members[start:start + batch]
                pipe = self.r.pipeline(transaction=False)
                for task_id in chunk:
                    pipe.exists(keys.task(task_id))
                gone = [m for m, alive in zip(chunk, pipe.execute(), strict=False) if not alive]
                if gone:
                    dropped += self.r.zrem(index, *gone)
        return dropped

