"""A user's edits of a model (name, trigger words, base model, tags, favorite) written back to its ``NAME.md``
in ComfyUI-Model-Manager's layout: the front matter keeps every key it had (``baseModel`` is the upstream's;
tags and the favorite flag live under ``metadata``, which upstream readers pass over), the body keeps every
section it had (``# Trigger Words`` and the ``# <model name>`` heading are replaced in place). Other sidecars are
never written: a field left unedited still falls back on them when the index reads the model."""
from __future__ import annotations

import re
from typing import Any, TypedDict

from shared.errors import Conflict, InvalidRequest
from shared.store.front_matter import Quoted, dump_front_matter, split_front_matter

MAX_TAGS = 100
MAX_TAG = 64
MAX_TRIGGER_WORDS = 200
MAX_WORD = 200
MAX_NAME = 200
MAX_BASE_MODEL = 100
#: Section titles ``parse_markdown`` reads as something else than the model's name.
_RESERVED_TITLES = ("trigger words", "about this version")
_TAG_BAD = re.compile(r"[\s,\x00-\x1f\x7f]")


#: The fields of a PATCH that are edits of ``NAME.md``.
EDIT_FIELDS = ("name", "trigger_words", "base_model", "tags", "favorite")


class Edits(TypedDict, total=False):
    """What a user changed; a key left out is left as it is (``base_model`` None clears it)."""

    name: str
    trigger_words: list[str]
    base_model: str | None
    tags: list[str]
    favorite: bool
    #: set by the update check, not by a user: the newer Civitai version (None: none), and the version the user
    #: chose to ignore
    update: dict[str, Any] | None
    update_ignored: int


def _one_line(label: str, value: str, cap: int) -> str:
    if not value.strip():
        raise InvalidRequest(f"Field {label!r} is empty; leave it out to keep the current value.")
    if len(value) > cap or any(c in value for c in "\r\n\t\0\x85\u2028\u2029"):
        raise InvalidRequest(f"Field {label!r} must be one line of at most {cap} characters, got {value[:40]!r}.")
    return value.strip()


def _strings(label: str, value: Any, cap: int, item_cap: int) -> list[str]:
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        raise InvalidRequest(f"Field {label!r} must be a list of strings.")
    if len(value) > cap:
        raise InvalidRequest(f"Field {label!r} holds {len(value)} entries; at most {cap}.")
    return [_one_line(f"{label}[{i}]", v, item_cap) for i, v in enumerate(value)]


def _dedupe(values: list[str]) -> list[str]:
    seen: set[str] = set()
    return [v for v in values if not (v.lower() in seen or seen.add(v.lower()))]  # type: ignore[func-returns-value]


def check_edits(body: dict[str, Any]) -> Edits:
    """The edits in a request body, every field's type and shape checked (``InvalidRequest`` naming it)."""
    edits = Edits()
    if body.get("name") is not None:
        if not isinstance(body["name"], str):
            raise InvalidRequest("Field 'name' must be a string.")
        name = _one_line("name", body["name"], MAX_NAME)
        if name.lower() in _RESERVED_TITLES or name.startswith("#"):
            raise InvalidRequest(f"Field 'name' cannot be {name!r}: NAME.md uses that heading for something else.")
        edits["name"] = name
    if body.get("trigger_words") is not None:
        words = _strings("trigger_words", body["trigger_words"], MAX_TRIGGER_WORDS, MAX_WORD)
        bad = next((w for w in words if "," in w), None)
        if bad is not None:
            raise InvalidRequest(f"Field 'trigger_words': {bad[:40]!r} holds a comma, which NAME.md uses between "
                                 "words; send it as two words.")
        edits["trigger_words"] = _dedupe(words)
    if "base_model" in body:  # null clears it
        if body["base_model"] is not None and not isinstance(body["base_model"], str):
            raise InvalidRequest("Field 'base_model' must be a string, or null to clear it.")
        edits["base_model"] = (_one_line("base_model", body["base_model"], MAX_BASE_MODEL)
                               if body["base_model"] is not None else None)
    if body.get("tags") is not None:
        tags = _strings("tags", body["tags"], MAX_TAGS, MAX_TAG)
        bad = next((t for t in tags if _TAG_BAD.search(t)), None)
        if bad is not None:
            raise InvalidRequest(f"Field 'tags': {bad[:40]!r} holds a space or a comma; a tag is one word "
                                 "(use - or _ between words), so 'tag:<tag>' can find it.")
        edits["tags"] = _dedupe(tags)
    if body.get("favorite") is not None:
        if not isinstance(body["favorite"], bool):
            raise InvalidRequest("Field 'favorite' must be true or false.")
        edits["favorite"] = body["favorite"]
    return edits


def _front_text(text: str) -> str | None:
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    if text.startswith("---\n") and (end := text.find("\n---", 4)) != -1:
        return text[4:end]
    return None


def _sections(body: str) -> tuple[str, list[list[str]]]:
    """The text before the first ``# `` heading, and each section as ``[title, content]``."""
    pre: list[str] = []
    out: list[list[str]] = []
    for line in body.split("\n"):
        if line.startswith("# "):
            out.append([line[2:].strip(), ""])
        elif out:
            out[-1][1] += line + "\n"
        else:
            pre.append(line)
    return "\n".join(pre).strip(), out


def _join(pre: str, sections: list[list[str]]) -> str:
    parts = [pre] if pre else []
    parts += [f"# {title}\n\n{content.strip()}" if content.strip() else f"# {title}" for title, content in sections]
    return "\n\n".join(parts) + "\n"


def edited_markdown(text: str | None, edits: Edits) -> str:
    """``NAME.md``'s text (``text``, None for a new file) with ``edits`` applied."""
    text = (text or "").replace("\r\n", "\n").lstrip("\ufeff")
    front, body = split_front_matter(text)
    raw_front = _front_text(text)
    if raw_front is not None and raw_front.strip() and not front:
        raise Conflict("This model's NAME.md starts with front matter that is not valid YAML, so an edit would "
                       "lose it; fix the file (or replace it with 'description') and edit again.")
    # Hashes are written quoted, as when the file was made: hex digits can look like numbers to YAML 1.2.
    if isinstance(front.get("hashes"), dict):
        front["hashes"] = {k: Quoted(v) if isinstance(v, str) else v for k, v in front["hashes"].items()}
    meta: dict[str, Any] = dict(front["metadata"]) if isinstance(front.get("metadata"), dict) else {}
    if "base_model" in edits:
        front["baseModel"] = edits["base_model"]
        if not edits["base_model"]:
            del front["baseModel"]
    # Only the keys edited here are dropped when emptied; what other tools wrote stays as it was.
    for key in ("tags", "favorite", "update", "update_ignored"):
        if key in edits:
            meta[key] = edits[key]
            if not meta[key]:
                del meta[key]
    if meta:
        front["metadata"] = meta
    else:
        front.pop("metadata", None)
    pre, sections = _sections(body)
    if "trigger_words" in edits:
        words = ", ".join(edits["trigger_words"]) or "No trigger words"
        hit = next((s for s in sections if s[0].lower() == "trigger words"), None)
        if hit is None:
            sections.insert(0, ["Trigger Words", words])
        else:
            hit[1] = words
    if "name" in edits:
        hit = next((s for s in sections if s[0].lower() not in _RESERVED_TITLES), None)
        if hit is None:
            sections.append([edits["name"], "No description about this model"])
        else:
            hit[0] = edits["name"]
    return (dump_front_matter(front) + "\n" if front else "") + _join(pre, sections)
