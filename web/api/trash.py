"""The trash: what DELETE of a model moved aside, restorable until ``DEPOT_TRASH_DAYS`` have passed
(``shared/library/trash.py``)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from shared.library import trash
from web.api.params import json_body
from web.context import depot

bp = Blueprint("trash", __name__)


@bp.get("/trash")
def list_trash() -> Any:
    days = depot().settings.trash_days
    return jsonify([trash.public(entry, days) for _box, entry in trash.entries(depot().layout)])


@bp.get("/trash/<entry_id>")
def trash_entry(entry_id: str) -> Any:
    _box, entry = trash.find(depot().layout, entry_id)
    return jsonify(trash.public(entry, depot().settings.trash_days))


@bp.post("/trash/<entry_id>/restore")
def restore(entry_id: str) -> Any:
    json_body(())
    return jsonify(trash.restore(depot().index, entry_id))


@bp.delete("/trash/<entry_id>")
def remove(entry_id: str) -> Any:
    json_body(())
    trash.remove(depot().layout, entry_id)
    return "", 204
