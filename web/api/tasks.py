"""Tasks: list, read, events, and the user's control actions (409 when not allowed)."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from shared.errors import InvalidRequest, NotFound
from shared.states import KINDS, TaskState
from web.api.params import choice_arg, int_arg, json_body
from web.context import depot

bp = Blueprint("tasks", __name__)

_ID_CHARS = set("0123456789abcdef")


def _check_id(task_id: str) -> str:
    if not task_id or len(task_id) > 64 or not set(task_id) <= _ID_CHARS:
        raise NotFound(f"No task with id {task_id!r}.")
    return task_id


@bp.get("/tasks")
def list_tasks():  # type: ignore[no-untyped-def]
    state = choice_arg("state", [s.value for s in TaskState])
    kind = choice_arg("kind", KINDS)
    limit = int_arg("limit", 50, lo=1, hi=500)
    cursor = request.args.get("cursor") or None
    if cursor is not None and (len(cursor) > 64 or not set(cursor) <= _ID_CHARS):
        raise InvalidRequest(f"Query parameter 'cursor' must be a task id (the 'next_cursor' of the previous page), "
                             f"got {cursor[:40]!r}.")
    items, next_cursor = depot().services.records.page(state=state, kind=kind, limit=limit, cursor=cursor)
    return jsonify({"items": items, "next_cursor": next_cursor})


@bp.get("/tasks/<task_id>")
def get_task(task_id: str):  # type: ignore[no-untyped-def]
    return jsonify(depot().services.records.get(_check_id(task_id)))


@bp.get("/tasks/<task_id>/events")
def task_events(task_id: str):  # type: ignore[no-untyped-def]
    since = int_arg("since", 0)
    return jsonify({"events": depot().services.records.events(_check_id(task_id), since)})


def _control(task_id: str, action: str):  # type: ignore[no-untyped-def]
    json_body(())  # controls take no fields: a body with any is refused rather than ignored
    task = depot().dispatcher.control(_check_id(task_id), action)
    return jsonify(task)


@bp.post("/tasks/<task_id>/pause")
def pause(task_id: str):  # type: ignore[no-untyped-def]
    return _control(task_id, "pause")


@bp.post("/tasks/<task_id>/resume")
def resume(task_id: str):  # type: ignore[no-untyped-def]
    return _control(task_id, "resume")


@bp.post("/tasks/<task_id>/cancel")
def cancel(task_id: str):  # type: ignore[no-untyped-def]
    return _control(task_id, "cancel")


@bp.post("/tasks/<task_id>/retry")
def retry(task_id: str):  # type: ignore[no-untyped-def]
    return _control(task_id, "retry")


@bp.delete("/tasks/<task_id>")
def delete(task_id: str):  # type: ignore[no-untyped-def]
    json_body(())
    depot().dispatcher.control(_check_id(task_id), "delete")
    return "", 204
