"""Each wanted model against the index's lookup tables (no disk, no network): ``present`` by hash when the
workflow gives one (SHA256 whole, AutoV2/AutoV3/AutoV1, or an A1111 SHA256 prefix), else by folder + relative
path, else by a unique file name (or stem, for names given without an extension) in the folder, else by the
Civitai version it was downloaded from (AIR); ``ambiguous`` when several different files fit the name;
``mismatch`` when the file of that name has a known hash that differs from the workflow's; ``missing`` otherwise,
with the hash matches found in other folders as candidates (a copy could serve)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.store.lookup import Entry, Tables
from shared.workflows.refs import Reference, Source, Wanted

#: Extensions ComfyUI's embedding loader and A1111's LoRA loader try for a name given without one.
_BARE_NAME_EXTENSIONS = (".safetensors", ".pt", ".bin", ".ckpt", ".pth", ".sft", ".gguf")


@dataclass(frozen=True, slots=True)
class Match:
    state: str
    matched_by: str | None = None
    chosen: Entry | None = None
    usable: tuple[Entry, ...] = ()  #: every entry that satisfies the reference (same bytes, or the chosen one)
    candidates: tuple[Entry, ...] = ()


def match(w: Wanted, t: Tables) -> Match:
    """Where the store has ``w``, by the rules of the module docstring."""
    hits = [e for kind, value in w.hashes for e in t.by_hash(kind, value)]
    hits = _unique(hits)
    here = [e for e in hits if w.folder is None or e.folder == w.folder]
    if here:
        chosen = next((e for e in here if e.relpath == w.relpath), None) or \
            next((e for e in here if e.basename == w.basename), here[0])
        return Match("present", "hash", chosen, tuple(here), tuple(here))
    if w.named:
        found = _by_path_or_name(w, t)
        if found is not None:
            return found
    if w.civitai_version is not None:
        got = [e for e in t.by_civitai_version(w.civitai_version) if w.folder is None or e.folder == w.folder]
        if got:
            return Match("present", "source", got[0], tuple(got), tuple(got))
    return Match("missing", candidates=tuple(hits))


def _by_path_or_name(w: Wanted, t: Tables) -> Match | None:
    named = t.named(w.folder, w.basename)
    by_path = [e for e in named if e.relpath == w.relpath]
    if by_path:
        return _judge(w, by_path, "path")
    exact = [e for e in named if e.basename == w.basename]
    if not exact and not w.has_extension:
        exact = t.by_bare_name(w.folder, w.basename, _BARE_NAME_EXTENSIONS)
    found = exact or named  # last, the same name in another letter case
    return _judge(w, found, "name") if found else None


def _judge(w: Wanted, entries: list[Entry], how: str) -> Match:
    """One name, one or more files: present when they are one file (or copies of the same bytes), ambiguous
    when they differ, mismatch when the workflow's hash rules every one of them out."""
    if w.hashes:
        agreeing = [e for e in entries if not _contradicts(e, w.hashes)]
        if not agreeing:
            return Match("mismatch", how, entries[0], (), tuple(entries))
        entries = agreeing
    shas = {e.sha256 for e in entries}
    if len(entries) == 1 or (how == "path" and _same_relpath(entries)) or (len(shas) == 1 and None not in shas):
        return Match("present", how, entries[0], tuple(entries), tuple(entries))
    return Match("ambiguous", how, None, (), tuple(entries))


def _same_relpath(entries: list[Entry]) -> bool:
    # The same relative path under several roots of one folder: ComfyUI loads the first root's file.
    return len({(e.folder, e.relpath) for e in entries}) == 1


def _contradicts(e: Entry, hashes: tuple[tuple[str, str], ...]) -> bool:
    """Whether a hash the index knows for ``e`` differs from one the workflow gives (unknown is no evidence)."""
    for kind, value in hashes:
        known = {"SHA256": e.sha256, "AutoV2": e.sha256, "AutoV3": e.autov3, "AutoV1": e.autov1}.get(kind)
        if known and not known.startswith(value.upper()):
            return True
    return False


def _unique(entries: list[Entry]) -> list[Entry]:
    seen: dict[str, Entry] = {}
    for e in entries:
        seen.setdefault(e.id, e)
    return sorted(seen.values(), key=lambda e: e.order)


def reference(w: Wanted, m: Match, models: dict[str, dict[str, Any]], source: Source | None,
              hosts: dict[str, bool]) -> Reference:
    """The contract's ``Reference`` for a match; ``models`` maps index ids to their ``Model`` JSON, ``hosts``
    says where the usable files are visible."""
    kind, value = _best_hash(w)
    if source is not None and source.sha256:
        kind, value = "SHA256", source.sha256
    relpath = w.relpath if w.named and w.has_extension else (source.filename if source else None)
    return Reference(
        name=w.name, folder=w.folder, node_type=w.node_type, state=m.state, matched_by=m.matched_by,
        model=models.get(m.chosen.id) if m.chosen else None,
        candidates=tuple(models[e.id] for e in m.candidates if e.id in models),
        expected_hash=value, hash_type=kind, source=source if m.state != "present" else None,
        hosts=hosts if m.state == "present" else dict.fromkeys(hosts, False), relpath=relpath,
        optional=w.optional)


def _best_hash(w: Wanted) -> tuple[str | None, str | None]:
    order = {"SHA256": 0, "AutoV3": 1, "AutoV2": 2, "AutoV1": 3}
    best = sorted(w.hashes, key=lambda h: (order.get(h[0], 9), -len(h[1])))
    return best[0] if best else (None, None)


def workflow_source(w: Wanted) -> Source | None:
    return Source(w.url, "workflow", w.basename if w.named and w.has_extension else None) if w.url else None
