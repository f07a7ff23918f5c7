"""Process commands: ``depot up``, ``depot web``, ``depot worker``, ``depot beat``, ``depot flower``."""
from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    """Filled in by the process supervisor module."""
