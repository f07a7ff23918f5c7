"""``POST /verifications``: re-hash models (a folder, a list of models, or the whole store) against the hashes
recorded for them (``mode``: ``sha256``, or ``all`` the recorded hashes); 202 Task."""
from __future__ import annotations

from typing import Any

from flask import Blueprint

from web.api.scope import submit_scoped

bp = Blueprint("verifications", __name__)

VERIFY_MODES = ("sha256", "all")


@bp.post("/verifications")
def verifications() -> Any:
    return submit_scoped("verify", "mode", VERIFY_MODES, "sha256")
