"""What a scan counts as it goes (its result), shared by the walk, the scan processes and the hashing."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.store.index import ModelDoc


@dataclass
class Totals:
    files: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    hashed: int = 0
    bytes_hashed: int = 0
    lazy: int = 0
    processes: int = 0  # scan processes used (0: the scan did everything itself)
    links_skipped: int = 0
    links_sample: list[dict[str, Any]] = field(default_factory=list)
    unreachable_roots: list[dict[str, Any]] = field(default_factory=list)
    busy_roots: list[dict[str, Any]] = field(default_factory=list)
    to_hash: list[tuple[ModelDoc, str, str]] = field(default_factory=list)
    walked: list[tuple[str, int, str]] = field(default_factory=list)  # (folder, path_index, root) fully walked
