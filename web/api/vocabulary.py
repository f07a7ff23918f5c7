"""``GET /vocabulary``: the task states (and which are active, terminal, open to each control action) and the
job kinds, so the dashboard never retypes them; answered without a token."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from shared.states import vocabulary

bp = Blueprint("vocabulary", __name__)


@bp.get("/vocabulary")
def states() -> Any:
    return jsonify(vocabulary())
