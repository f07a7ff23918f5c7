"""The two types of this package. ``Wanted``: a model a workflow asks for, as the workflow states it (name,
folder, the hashes and URL it gives). ``Reference``: what the store has for it (the contract's ``Reference``),
carrying what a download needs when it is missing: folder, relative path, expected hash and best source URL."""
from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

#: Hash types a workflow may give, with the hex length of each (SHA256 may be shortened: A1111 TI hashes).
HASH_LENGTHS = {"SHA256": 64, "AutoV3": 12, "AutoV2": 10, "AutoV1": 8}


@dataclass(frozen=True, slots=True)
class Wanted:
    """One model reference found in a workflow. ``name`` is as written (a relative path in ``folder`` for
    ComfyUI, a bare name for A1111 and prompt syntax); ``hashes`` are ``(type, UPPER-HEX)`` pairs."""

    name: str
    folder: str | None = None
    node_type: str | None = None
    hashes: tuple[tuple[str, str], ...] = ()
    url: str | None = None
    optional: bool = False  #: only used by muted or bypassed nodes
    civitai_version: int | None = None  #: Civitai AIR / resource entries
    civitai_model: int | None = None
    file_format: str | None = None  #: AIR ``.format`` suffix (Civitai's metadata.format)
    named: bool = True  #: False when ``name`` is only a label (an AIR URN, a Civitai resource), not a file name

    # Derived once, at construction: every lookup of a check reads them.
    relpath: str = field(init=False, repr=False, compare=False)
    basename: str = field(init=False, repr=False, compare=False)
    has_extension: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        relpath = posixpath.normpath(self.name.replace("\\", "/")).lstrip("/")
        basename = relpath.rsplit("/", 1)[-1]
        object.__setattr__(self, "relpath", relpath)
        object.__setattr__(self, "basename", basename)
        object.__setattr__(self, "has_extension", "." in basename.lstrip("."))

    @property
    def key(self) -> tuple[str | None, str]:
        return self.folder, self.relpath


def merge(found: Iterable[Wanted]) -> list[Wanted]:
    """One ``Wanted`` per (folder, name), in first-seen order: hashes, URL and Civitai ids are pooled, the first
    node type kept, and it is optional only when every mention is. A name found with no folder is dropped when
    the same name was found with one (a subgraph instance repeats its inner loaders' values)."""
    merged: dict[tuple[str | None, str], Wanted] = {}
    for w in found:
        old = merged.get(w.key)
        if old is None:
            merged[w.key] = w
            continue
        merged[w.key] = replace(
            old, node_type=old.node_type or w.node_type, url=old.url or w.url,
            hashes=old.hashes + tuple(h for h in w.hashes if h not in old.hashes),
            optional=old.optional and w.optional, civitai_version=old.civitai_version or w.civitai_version,
            civitai_model=old.civitai_model or w.civitai_model, file_format=old.file_format or w.file_format)
    with_folder = {name for folder, name in merged if folder is not None}
    out = []
    for (folder, name), w in merged.items():
        if folder is None and name in with_folder:
            continue
        out.append(w)
    return out


@dataclass(frozen=True, slots=True)
class Source:
    """Where a missing model can be downloaded from. ``kind``: ``workflow`` (the workflow's own URL), ``civitai``
    (found by hash or version on Civitai)."""

    url: str
    kind: str
    filename: str | None = None
    sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "kind": self.kind, "filename": self.filename, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class Reference:
    """The contract's ``Reference`` plus what a fetch needs: ``relpath`` (where in ``folder`` a download should
    land; None when the workflow names no file), ``hash_type`` of ``expected_hash`` and ``optional``."""

    name: str
    folder: str | None
    node_type: str | None
    state: str
    matched_by: str | None = None
    model: dict[str, Any] | None = None
    candidates: tuple[dict[str, Any], ...] = ()
    expected_hash: str | None = None
    hash_type: str | None = None
    source: Source | None = None
    hosts: dict[str, bool] = field(default_factory=dict)
    relpath: str | None = None
    optional: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "folder": self.folder, "node_type": self.node_type, "state": self.state,
                "matched_by": self.matched_by, "model": self.model, "candidates": list(self.candidates),
                "expected_hash": self.expected_hash, "hash_type": self.hash_type,
                "source": self.source.to_json() if self.source else None, "hosts": dict(self.hosts),
                "relpath": self.relpath, "optional": self.optional}
