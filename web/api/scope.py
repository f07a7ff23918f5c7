"""What a job over models covers, as a request gives it: one folder, a list of model references, or (neither)
the whole store; each reference checked against its store root, with the worker's own check agreeing."""
from __future__ import annotations

from typing import Any

from flask import jsonify

from shared.errors import InvalidRequest
from shared.store.paths import MAX_RELPATH, normalise_relpath
from shared.store.targets import parse_ref
from web.api.params import (
    choice_field,
    field,
    folder_field,
    json_body,
    json_type,
    named,
    only_fields,
    path_index_field,
    text_field,
)
from web.context import depot

#: Refs accepted in one request body; a whole folder is cheaper as ``folder``.
MAX_REFS = 10_000


def _ref(item: Any, label: str) -> dict[str, Any]:
    """One ``{"folder","path_index","relpath"}`` of a ``models`` list, naming ``models[i].field`` when refused."""
    if not isinstance(item, dict):
        raise InvalidRequest(f"Field {label!r} must be an object {{\"folder\", \"path_index\", \"relpath\"}}, "
                             f"got {json_type(item)}.")
    prefix = label + "."
    only_fields(item, ("folder", "path_index", "relpath"), prefix)
    folder = folder_field(item, required=True, prefix=prefix)
    index = path_index_field(item, folder, default=0, prefix=prefix)
    rel = text_field(item, "relpath", max_len=MAX_RELPATH, required=True, prefix=prefix)
    named(prefix + "relpath", depot().layout.resolve, folder, index, rel)
    parse_ref(item)  # the worker's own check, which must agree
    return {"folder": folder, "path_index": index, "relpath": normalise_relpath(rel)}


def scope(body: dict[str, Any]) -> dict[str, Any]:
    """A job's scope: one folder, a list of models, or (neither) the whole store; never both."""
    folder = folder_field(body)
    models = field(body, "models", list)
    if folder is not None and models is not None:
        raise InvalidRequest("Give either 'folder' or 'models', not both (leave both out for the whole store).")
    if folder is not None:
        return {"folder": folder}
    if models is None:
        return {}
    if not models:
        raise InvalidRequest("Field 'models' is empty; name at least one model, or leave it out for the whole store.")
    if len(models) > MAX_REFS:
        raise InvalidRequest(f"Field 'models' lists {len(models)} models; at most {MAX_REFS} per request (use "
                             "'folder' for a whole folder).")
    return {"models": [_ref(item, f"models[{i}]") for i, item in enumerate(models)]}


def submit_scoped(kind: str, option: str, choices: tuple[str, ...] | list[str], default: str) -> Any:
    """A job over a folder, a list of models or the whole store, with one validated option."""
    body = json_body(("folder", "models", option))
    params = scope(body)
    params[option] = choice_field(body, option, choices, default)
    task, _created = depot().dispatcher.submit(kind, params)
    return jsonify(task), 202
