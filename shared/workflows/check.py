"""One workflow check: what the file names (formats → graph / A1111 / AIR), what the store has for each
(lookup tables, then Civitai for the missing ones without a URL), and on which hosts it is ready."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
from redis.client import NEVER_DECODE

from shared.store.index import DOC, model_json
from shared.store.layout import StoreLayout
from shared.store.lookup import ModelLookup
from shared.workflows import readiness
from shared.workflows.a1111 import a1111_references, looks_like_parameters
from shared.workflows.air import air_references
from shared.workflows.errors import WorkflowFileError
from shared.workflows.formats import Payload
from shared.workflows.graph import api_references, ui_references
from shared.workflows.refs import Reference, Wanted, merge
from shared.workflows.resolve import Match, match, reference, workflow_source
from shared.workflows.sources import Found

#: A finder of Civitai sources for missing references (``sources.CivitaiSources.find``), or None offline.
Finder = Callable[[Wanted], Found | None]


@dataclass(frozen=True, slots=True)
class Result:
    references: tuple[Reference, ...]
    ready: dict[str, bool]
    format: str
    contents: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"references": [r.to_json() for r in self.references], "ready": dict(self.ready),
                "format": self.format, "contents": list(self.contents)}


def wanted_in(payload: Payload) -> list[Wanted]:
    """Every model the payload names, merged by (folder, name)."""
    found: list[Wanted] = []
    if payload.workflow is not None:
        found += ui_references(payload.workflow)
    if payload.prompt is not None:
        found += api_references(payload.prompt)
    if payload.parameters:
        found += a1111_references(payload.parameters)
    if payload.text is not None:
        airs = air_references(payload.text)
        is_a1111 = looks_like_parameters(payload.text)
        if not airs and not is_a1111:
            raise WorkflowFileError("This text holds neither A1111 generation parameters (a \"Steps: …, Model: …\" "
                                    "line) nor Civitai AIR URNs (urn:air:…). Give a ComfyUI workflow (.json) or "
                                    "an image that ComfyUI saved.")
        found += (a1111_references(payload.text) if is_a1111 else []) + airs
    return merge(found)


def check(payload: Payload, *, redis: Any, lookup: ModelLookup, layout: StoreLayout,
          hosts: list[readiness.Host], find: Finder | None = None) -> Result:
    """Resolve every reference of ``payload`` and judge readiness on ``hosts``."""
    wanted = wanted_in(payload)
    with lookup.reading() as tables:
        matches = [match(w, tables) for w in wanted]
    sources: list[Any] = [workflow_source(w) for w in wanted]
    if find is not None:
        wanted, matches, sources = _ask_upstream(wanted, matches, sources, find, lookup)
    ids = sorted({e.id for m in matches for e in (m.chosen, *m.candidates) if e is not None})
    models = _models(redis, ids)
    seen = readiness.Visibility(layout, hosts)
    refs = [reference(w, m, models, s, seen.of(tuple(e.id for e in m.usable)))
            for w, m, s in zip(wanted, matches, sources, strict=False)]
    return Result(tuple(refs), readiness.ready(hosts, refs), payload.format, tuple(payload.contents))


def _ask_upstream(wanted: list[Wanted], matches: list[Match], sources: list[Any], find: Finder,
                  lookup: ModelLookup) -> tuple[list[Wanted], list[Match], list[Any]]:
    """Civitai for each reference still missing without a URL; a file it names by SHA256 may then turn out to
    be in the store under another name."""
    wanted, matches, sources = list(wanted), list(matches), list(sources)
    for i, (w, m) in enumerate(zip(wanted, matches, strict=False)):
        if m.state == "present" or sources[i] is not None or not (w.hashes or w.civitai_version or w.civitai_model):
            continue
        found = find(w)
        if found is None:
            continue
        sources[i] = found.source
        if found.source.sha256 and ("SHA256", found.source.sha256) not in w.hashes:
            w = replace(w, folder=w.folder or found.folder, hashes=w.hashes + (("SHA256", found.source.sha256),))
            with lookup.reading() as tables:
                matches[i] = match(w, tables)
        elif w.folder is None and found.folder:
            w = replace(w, folder=found.folder)
        wanted[i] = w
    return wanted, matches, sources


def _models(redis: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The contract ``Model`` of each id, as the index stores it (fresh: verify status is not in the tables)."""
    if not ids:
        return {}
    raws = redis.execute_command("HMGET", DOC, *ids, **{NEVER_DECODE: True})
    return {mid: orjson.loads(model_json(raw)) for mid, raw in zip(ids, raws, strict=False) if raw}
