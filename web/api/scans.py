"""``POST /scans``: bring the index up to date with the disk (a folder, one of its roots, or the whole store;
``quick`` or ``full``); the same scope asked for again while its scan is live gets that scan back (202 Task)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from shared.scan import MODES, idem_key, scan_roots, submit_params
from web.api.params import choice_field, field, folder_field, json_body, path_index_field
from web.context import depot

bp = Blueprint("scans", __name__)


@bp.post("/scans")
def submit_scan() -> Any:
    body = json_body(("folder", "path_index", "mode", "fetch_metadata"))
    folder = folder_field(body)
    path_index = path_index_field(body, folder)
    params = submit_params(choice_field(body, "mode", MODES, "quick"), folder,
                           field(body, "fetch_metadata", bool, default=False), path_index)
    ctx = depot()
    scan_roots(ctx.layout, folder, path_index)
    task, _created = ctx.dispatcher.submit("scan", params, idem_key=idem_key(folder, path_index))
    return jsonify(task), 202
