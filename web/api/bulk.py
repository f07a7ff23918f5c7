"""``POST /bulk``: one action on many models as one task. ``{"action", "models": [ref...]}`` or ``{"action",
"query": {"folder"?, "q"?, "base_model"?, "type"?, "dir"?, "tag"?, "favorite"?, "update"?, "verify"?,
"preview"?, "duplicates"?}}`` (the listing's filters) (everything the search
matches when the task runs), plus ``"to": {"folder", "path_index"?, "subfolder"?}`` for ``move`` and
``"tags": [...]`` for ``tag``/``untag``. ``verify`` and ``previews`` start those jobs over the selection; the
others (``shared/bulk/job.py``) a ``bulk`` task. 202 Task."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from shared.bulk.job import ACTIONS, selection
from shared.errors import InvalidRequest
from shared.store.edits import check_edits
from shared.store.index import VERDICTS, split_id
from web.api.params import (
    choice_field,
    field,
    folder_field,
    json_body,
    one_line,
    only_fields,
    path_index_field,
    relpath_field,
)
from web.api.scope import MAX_REFS, scope
from web.context import depot

bp = Blueprint("bulk", __name__)
JOBS = {"verify": ("verify", {"mode": "sha256"}), "previews": ("preview", {"source": "auto"})}
_QUERY_TEXT = {"q": 500, "base_model": 100, "type": 100, "dir": 1024, "tag": 64}


def _query(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidRequest("Field 'query' must be an object: {folder?, q?, base_model?, type?, dir?, tag?, "
                             "favorite?}.")
    only_fields(raw, ("folder", *_QUERY_TEXT, "favorite", "update", "verify", "preview", "duplicates"), "query.")
    out: dict[str, Any] = {"folder": folder_field(raw, prefix="query.")}
    for name, cap in _QUERY_TEXT.items():
        out[name] = one_line(f"Field 'query.{name}'", field(raw, name, str, prefix="query."), cap)
    for flag in ("favorite", "update", "duplicates"):
        out[flag] = field(raw, flag, bool, default=False, prefix="query.")
    out["verify"] = field(raw, "verify", str, prefix="query.")
    if out["verify"] is not None and out["verify"] not in VERDICTS:
        raise InvalidRequest(f"Field 'query.verify' must be one of {', '.join(VERDICTS)}.")
    out["preview"] = field(raw, "preview", bool, prefix="query.")
    return {k: v for k, v in out.items() if v is not None and v is not False or k == "preview" and v is False}


def _to(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidRequest("Field 'to' must be an object {folder, path_index?, subfolder?}.")
    only_fields(raw, ("folder", "path_index", "subfolder"), "to.")
    folder = folder_field(raw, required=True, prefix="to.")
    return {"folder": folder, "path_index": path_index_field(raw, folder, default=0, prefix="to."),
            "subfolder": relpath_field(raw, "subfolder", prefix="to.") or ""}


@bp.post("/bulk")
def submit_bulk() -> Any:
    body = json_body(("action", "models", "query", "to", "tags"))
    action = choice_field(body, "action", (*ACTIONS, *JOBS), default="")
    if (body.get("models") is None) == (body.get("query") is None):
        raise InvalidRequest("Give either 'models' (a list of {folder, path_index, relpath}) or 'query' (a "
                             "search), not both.")
    params: dict[str, Any] = {"action": action}
    if body.get("models") is not None:
        params["models"] = scope({"models": field(body, "models", list)})["models"]
    else:
        params["query"] = _query(body["query"])
    if action == "move":
        params["to"] = _to(body.get("to"))
    elif body.get("to") is not None:
        raise InvalidRequest("Field 'to' is for action 'move' only.")
    if action in ("tag", "untag"):
        if body.get("tags") is None:
            raise InvalidRequest(f"Field 'tags' is required for action {action!r}.")
        params["tags"] = check_edits({"tags": body["tags"]})["tags"]
        if not params["tags"]:
            raise InvalidRequest("Field 'tags' is empty; name at least one tag.")
    elif body.get("tags") is not None:
        raise InvalidRequest("Field 'tags' is for actions 'tag' and 'untag' only.")
    ctx = depot()
    if action in JOBS:
        kind, option = JOBS[action]
        ids = selection(ctx.index, params)
        if not ids:
            raise InvalidRequest("Nothing matches this selection.")
        if len(ids) > MAX_REFS:
            raise InvalidRequest(f"{len(ids)} models match; {action} takes at most {MAX_REFS} at once (start it "
                                 "for a whole folder from Maintenance instead).")
        refs = [dict(zip(("folder", "path_index", "relpath"), split_id(mid), strict=True)) for mid in ids]
        task, _created = ctx.dispatcher.submit(kind, {"models": refs, **option})
    else:
        task, _created = ctx.dispatcher.submit("bulk", params)
    return jsonify(task), 202
