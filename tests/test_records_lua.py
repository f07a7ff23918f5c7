"""The Lua transitions, one by one, on fakeredis (Lua 5.1 like Redis): legal paths, illegal transitions,
stale attempts, reaping, and that Lua and shared/states.py share one vocabulary."""
from __future__ import annotations

import json

import fakeredis
import pytest

from shared.errors import IllegalTransition, NotFound, StaleAttempt
from shared.records import TaskRecords, script_source
from shared.states import CONTROL_FROM, FINISH_TO, TERMINAL, TaskState


@pytest.fixture
def records() -> TaskRecords:
    client = fakeredis.FakeRedis(decode_responses=True)
    return TaskRecords(client, ttl_s=1000, lease_s=30, events_maxlen=50)


def _running(records: TaskRecords) -> tuple[str, int]:
    task, _ = records.create("download", {"url": "u"}, queue="downloads")
    claim = records.claim(task["id"], host="h", worker="w@h")
    assert claim is not None
    return task["id"], claim.attempt


def test_create_claim_progress_finish(records: TaskRecords) -> None:
    task_id, attempt = _running(records)
    assert attempt == 1
    assert records.progress(task_id, attempt, {"done": 5, "total": 10, "rate": 1.0}).owned
    records.finish(task_id, attempt, TaskState.SUCCEEDED, result={"ok": True})
    task = records.get(task_id)
    assert task["state"] == "succeeded" and task["result"] == {"ok": True} and task["finished_at"]
    assert 0 < records.r.ttl(f"depot:task:{task_id}") <= 1000
    events = records.events(task_id)
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert [e["type"] for e in events] == ["state", "state", "progress", "state"]


def test_stale_attempt_is_refused_everywhere(records: TaskRecords) -> None:
    task_id, attempt = _running(records)
    with pytest.raises(StaleAttempt):
        records.finish(task_id, attempt + 1, TaskState.SUCCEEDED)
    assert not records.heartbeat(task_id, attempt + 1).owned
    assert not records.progress(task_id, attempt + 1, {"done": 1}).owned
    assert not records.log(task_id, attempt + 1, "zombie")
    assert records.get(task_id)["state"] == "running"


def test_claim_refuses_running_finished_and_paused(records: TaskRecords) -> None:
    task_id, attempt = _running(records)
    assert records.claim(task_id, host="h2", worker="w2") is None  # duplicate delivery
    records.finish(task_id, attempt, TaskState.SUCCEEDED)
    assert records.claim(task_id, host="h2", worker="w2") is None
    assert records.claim("nope", host="h", worker="w") is None
    other, _ = records.create("scan", {}, queue="scan")
    records.control(other["id"], "pause")
    assert records.claim(other["id"], host="h", worker="w") is None


@pytest.mark.parametrize("action", sorted(CONTROL_FROM))
@pytest.mark.parametrize("state", [s for s in TaskState if s != TaskState.RUNNING])
def test_control_matrix(records: TaskRecords, action: str, state: TaskState) -> None:
    task, _ = records.create("scan", {}, queue="scan")
    records.r.hset(f"depot:task:{task['id']}", "state", state.value)
    if state in CONTROL_FROM[action]:
        assert records.control(task["id"], action) in {"done", "enqueue", "deleted"}
    else:
        with pytest.raises(IllegalTransition):
            records.control(task["id"], action)


def test_pause_and_cancel_of_running_task_are_flags_the_worker_sees(records: TaskRecords) -> None:
    task_id, attempt = _running(records)
    assert records.control(task_id, "pause") == "flagged"
    assert records.heartbeat(task_id, attempt).pause
    records.finish(task_id, attempt, TaskState.PAUSED)
    assert records.get(task_id)["state"] == "paused"
    assert records.control(task_id, "resume") == "enqueue"
    claim = records.claim(task_id, host="h", worker="w")
    assert claim and claim.attempt == 2
    assert records.control(task_id, "cancel") == "flagged"
    assert records.progress(task_id, 2, {"done": 1}).cancel


def test_illegal_finish_target(records: TaskRecords) -> None:
    task_id, attempt = _running(records)
    with pytest.raises(IllegalTransition):
        records.finish(task_id, attempt, TaskState.LOST)


def test_reaper_marks_lost_then_claim_fences_old_attempt(records: TaskRecords) -> None:
    task_id, attempt = _running(records)
    records.r.zadd("depot:tasks:leases", {task_id: 0})  # lease ran out
    assert records.reap() == [task_id]
    task = records.get(task_id)
    assert task["state"] == "lost" and task["error"]["code"] == "worker_lost"
    assert not records.heartbeat(task_id, attempt).owned
    claim = records.claim(task_id, host="h2", worker="w2")
    assert claim and claim.attempt == 2
    with pytest.raises(StaleAttempt):
        records.finish(task_id, 1, TaskState.FAILED)
    records.finish(task_id, 2, TaskState.SUCCEEDED)


def test_reaper_honours_cancel_request(records: TaskRecords) -> None:
    task_id, _ = _running(records)
    records.control(task_id, "cancel")
    records.r.zadd("depot:tasks:leases", {task_id: 0})
    assert records.reap() == []
    assert records.get(task_id)["state"] == "cancelled"


def test_idempotency_key_returns_live_task_only(records: TaskRecords) -> None:
    first, created = records.create("download", {}, queue="downloads", idem_key="k")
    again, created_again = records.create("download", {}, queue="downloads", idem_key="k")
    assert created and not created_again and again["id"] == first["id"]
    records.control(first["id"], "cancel")
    fresh, created_fresh = records.create("download", {}, queue="downloads", idem_key="k")
    assert created_fresh and fresh["id"] != first["id"]


def test_retry_clears_error_and_ttl(records: TaskRecords) -> None:
    task_id, attempt = _running(records)
    records.finish(task_id, attempt, TaskState.FAILED, error={"code": "x", "message": "m"})
    assert records.control(task_id, "retry") == "enqueue"
    task = records.get(task_id)
    assert task["state"] == "queued" and task["error"] is None
    assert records.r.ttl(f"depot:task:{task_id}") == -1


def test_delete_removes_record_and_indexes(records: TaskRecords) -> None:
    task_id, attempt = _running(records)
    records.finish(task_id, attempt, TaskState.SUCCEEDED)
    assert records.control(task_id, "delete") == "deleted"
    with pytest.raises(NotFound):
        records.get(task_id)
    assert records.page()[0] == []


def test_list_pages_newest_first_with_filters(records: TaskRecords) -> None:
    ids = [records.create("scan" if i % 2 else "verify", {}, queue="q")[0]["id"] for i in range(7)]
    page, cursor = records.page(limit=3)
    assert [t["id"] for t in page] == ids[::-1][:3] and cursor
    page2, cursor2 = records.page(limit=3, cursor=cursor)
    page3, cursor3 = records.page(limit=3, cursor=cursor2)
    assert [t["id"] for t in page + page2 + page3] == ids[::-1] and cursor3 is None
    scans, _ = records.page(kind="scan", limit=10)
    assert {t["kind"] for t in scans} == {"scan"} and len(scans) == 3


def test_event_stream_is_bounded(records: TaskRecords) -> None:
    task_id, attempt = _running(records)
    for i in range(300):
        records.progress(task_id, attempt, {"done": i})
    assert records.r.xlen(f"depot:task:{task_id}:events") < 200


def test_lua_and_python_share_the_vocabulary() -> None:
    src = script_source("finish")
    for state in TERMINAL:
        assert f"['{state.value}'] = true" in src.split("local CLAIMABLE")[0]
    for state in FINISH_TO:
        assert f"['{state.value}'] = true" in src.split("local FINISH_TO")[1].split("\n")[0]
    # every state a script writes literally is a known state
    import re
    from pathlib import Path
    known = {s.value for s in TaskState}
    for path in Path("shared/lua").glob("*.lua"):
        for literal in re.findall(r"set_state\([^)]*'(\w+)'\)", path.read_text()):
            assert literal in known, (path.name, literal)
    assert json.loads(json.dumps([s.value for s in TaskState]))
