"""The ``workflow`` job: follow the downloads a workflow fetch started until every one has ended. Its progress is
the bytes of all of them; one failed download fails it with that download's reason once the others have ended;
cancelling it cancels the downloads still running. It holds no state of its own beyond its task record, so a
worker killed mid-fetch only means the next attempt (any host) picks up where the downloads are."""
from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from shared.errors import DepotError, IllegalTransition, JobInterrupted, NotFound
from shared.jobs import JobContext
from shared.records import TaskRecords
from shared.services import Services
from shared.states import TERMINAL, TaskState

#: How often the downloads' records are read: progress then reaches the dashboard about once a second.
POLL_S = 0.5
_ENDED = {s.value for s in TERMINAL}


class ChildFailed(DepotError):
    code, http_status = "download_failed", 502


def run_workflow(ctx: JobContext, services: Services) -> dict[str, Any]:
    children = list(ctx.params.get("children") or [])
    ids = [c["task_id"] for c in children]
    try:
        while True:
            states = _read(services.records, ids)
            done, total, counts = _sum(states)
            ctx.progress(done, total, unit="bytes", children=counts)
            if all(s["state"] in _ENDED for s in states.values()):
                break
            _sleep(ctx, POLL_S)
    except JobInterrupted as stop:
        if stop.state == TaskState.CANCELLED.value:
            _cancel(services.records, ids)
        raise
    ctx.progress(done, total, force=True, unit="bytes", children=counts)
    failed = [(c, states[c["task_id"]]) for c in children if states[c["task_id"]]["state"] != "succeeded"]
    if failed:
        child, state = failed[0]
        error = state.get("error") or {}
        reason = error.get("message") or f"the download was {state['state']}"
        more = f" ({len(failed) - 1} more did not finish either)" if len(failed) > 1 else ""
        raise ChildFailed(f"{child['name']}: {reason}{more}", details={
            "failed": [{"task_id": c["task_id"], "name": c["name"], "state": s["state"],
                        "code": (s.get("error") or {}).get("code")} for c, s in failed]})
    return {"children": [{"task_id": c["task_id"], "name": c["name"], "folder": c["folder"],
                         "relpath": c["relpath"]} for c in children]}


def _read(records: TaskRecords, ids: list[str]) -> dict[str, Mapping[str, Any]]:
    """Each download's record; one that has expired or was deleted counts as failed."""
    found = {t["id"]: t for t in records.get_many(ids)}
    gone = {"state": "failed", "progress": {"done": 0, "total": None},
            "error": {"code": "not_found", "message": "the download's record is gone (deleted or expired)"}}
    return {i: found.get(i, gone) for i in ids}


def _sum(states: dict[str, Mapping[str, Any]]) -> tuple[int, int | None, dict[str, int]]:
    done, total, unknown = 0, 0, False
    counts: dict[str, int] = {}
    for s in states.values():
        p = s.get("progress") or {}
        done += int(p.get("done") or 0)
        if p.get("total"):
            total += int(p["total"])
        elif s["state"] not in _ENDED:
            unknown = True  # a download that has not started yet: the set's size is not known
        counts[s["state"]] = counts.get(s["state"], 0) + 1
    return done, None if unknown else total, counts


def _cancel(records: TaskRecords, ids: list[str]) -> None:
    for task_id in ids:
        try:
            records.control(task_id, "cancel")
        except (NotFound, IllegalTransition):
            pass  # ended or gone meanwhile


def _sleep(ctx: JobContext, seconds: float) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        ctx.check()
        time.sleep(min(0.1, left))
