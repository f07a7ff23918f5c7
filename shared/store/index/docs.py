"""The index document (what the index stores per model) and the shapes made from it: the contract's ``Model``
and the search row."""
from __future__ import annotations

import json
import os
from typing import Any, NotRequired, TypedDict, cast
from urllib.parse import quote

import orjson

from shared.store import model_types
from shared.store import sidecar_files as sidecars


class ModelDoc(TypedDict):
    """What the index stores per model file (or diffusers folder, ``dir``): its stat, what its sidecars say,
    the hashes known for these bytes and the last verification."""

    folder: str
    path_index: int
    relpath: str
    title: str | None
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    hashes: dict[str, str]
    hashed: bool
    base_model: str | None
    trigger_words: list[str]
    source: str | None
    source_url: str | None
    preview: str | None
    dir: bool
    verify_status: str | None
    verified_at: float | None
    verify_reason: str | None
    #: Civitai's type as the library names it (``LoRA``, ``LyCORIS`` ...), when a sidecar records it
    model_type: NotRequired[str | None]
    #: Civitai's content rating (1 PG ... 16 XXX), when a sidecar records it
    nsfw_level: NotRequired[int | None]
    #: the user's tags and favorite flag (``NAME.md``'s ``metadata``, or LoRA-Manager's sidecar)
    tags: NotRequired[list[str]]
    favorite: NotRequired[bool]
    #: the preview file's mtime when it was indexed one model at a time (an edit, a preview set by the user): the
    #: thumbnail's address changes with it, so every open page fetches the new picture (a scan leaves it out)
    preview_v: NotRequired[int]
    #: a newer version on Civitai (``{"model_id","version_id","name","base_model","url"}``), from the update check
    update_available: NotRequired[dict[str, Any]]
    #: other models share this stem's sidecars (or did, for the same bytes)
    stem_shared: NotRequired[bool]
    #: where the model belongs instead, when a checkpoint is a UNet/diffusion model only
    misplaced: NotRequired[dict[str, str] | None]


def display_name(doc: ModelDoc) -> str:
    return doc.get("title") or sidecars.stem_of(doc["relpath"].rsplit("/", 1)[-1])


def to_model(doc: ModelDoc) -> dict[str, Any]:
    """The contract's ``Model`` for an index document."""
    return _to_model(doc, display_name(doc))


def preview_url(folder: str, path_index: int, relpath: str) -> str:
    """The thumbnail route of a model, every path segment percent-encoded: a file name may hold ``%``, ``#``,
    ``?``, spaces or any Unicode, which a browser would otherwise read as an escape, a fragment or a query.
    (Quoting the whole path with ``/`` kept gives exactly the per-segment encoding: no segment holds a ``/``;
    a name's undecodable bytes, kept as lone surrogates, are sent as their own bytes.)"""
    return "/api/v1/previews/" + quote(f"{folder}/{path_index}/{relpath}", safe="/", errors="surrogateescape")


def _to_model(doc: ModelDoc, name: str) -> dict[str, Any]:
    folder, pi, rel = doc["folder"], doc["path_index"], doc["relpath"]
    return {"folder": folder, "path_index": pi, "relpath": rel, "name": name,
            "size": doc["size"], "created_at": doc["ctime_ns"] / 1e9, "modified_at": doc["mtime_ns"] / 1e9,
            "preview_url": preview_url(folder, pi, rel) + (f"?v={doc['preview_v']}" if doc.get("preview_v") else ""),
            "sha256": (doc.get("hashes") or {}).get("SHA256"), "base_model": doc.get("base_model"),
            "trigger_words": list(doc.get("trigger_words") or []), "source": doc.get("source"),
            "source_url": doc.get("source_url"), "verify_status": doc.get("verify_status"),
            "preview": doc.get("preview"), "misplaced": doc.get("misplaced"),
            "model_type": model_types.model_type(doc.get("model_type"), folder), "nsfw_level": doc.get("nsfw_level"),
            "tags": list(doc.get("tags") or []), "favorite": bool(doc.get("favorite")),
            "update_available": doc.get("update_available")}


def build_doc(folder: str, path_index: int, relpath: str, st: os.stat_result, summary: dict[str, Any],
              preview: str | None, hashes: dict[str, str] | None, *, size: int | None = None,
              is_dir: bool = False, shared: bool = False) -> ModelDoc:
    """An index document from a stat and the sidecar summary (the description text is not kept). ``shared``:
    other models share the stem's sidecars, so the hashes they record are not taken as this file's."""
    known = {} if shared else dict(summary.get("hashes") or {})
    known.update(hashes or {})
    doc = ModelDoc(folder=folder, path_index=path_index, relpath=relpath, title=summary.get("name"),
                   size=st.st_size if size is None else size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns,
                   ino=st.st_ino, hashes=known, hashed=bool(hashes), base_model=summary.get("base_model"),
                   trigger_words=summary.get("trigger_words") or [], source=summary.get("source"),
                   source_url=summary.get("source_url"), preview=preview, dir=is_dir,
                   verify_status=None, verified_at=None, verify_reason=None,
                   model_type=summary.get("model_type"), nsfw_level=summary.get("nsfw_level"))
    # Kept only when set: most models have neither, and a million documents pay for every key.
    if summary.get("tags"):
        doc["tags"] = list(summary["tags"])
    if summary.get("favorite"):
        doc["favorite"] = True
    if summary.get("update_available"):
        doc["update_available"] = summary["update_available"]
    if shared:
        doc["stem_shared"] = True
    return doc


def same_file(doc: ModelDoc, old: ModelDoc | None, *, inode: bool = True) -> bool:
    """Whether ``old`` (the indexed document) describes the very file ``doc`` was just built from: the same
    size, mtime_ns and inode, as a quick scan judges files (``inode=False``: a move across file systems)."""
    return bool(old and (old["size"], old["mtime_ns"]) == (doc["size"], doc["mtime_ns"])
                and (not inode or old.get("ino") == doc["ino"]))


def same_hashed_file(doc: ModelDoc, old: ModelDoc | None) -> bool:
    """Whether ``old`` was hashed from the very file ``doc`` was just built from."""
    return bool(old and old.get("hashed")) and same_file(doc, old)


def keep_shared(doc: ModelDoc, old: ModelDoc | None, *, inode: bool = True) -> None:
    """A file that has shared its stem's sidecars with another model keeps that mark (``stem_shared``) while
    its bytes are the same, even once it is alone with them (the other was moved or deleted): the hashes they
    record may be the other file's. ``doc`` must not hold hashes of its own yet."""
    if old and old.get("stem_shared") and not doc.get("stem_shared") and same_file(doc, old, inode=inode):
        doc["stem_shared"], doc["hashes"] = True, {}


def keep_known(doc: ModelDoc, old: ModelDoc) -> None:
    """Carry ``old``'s hashes and verification over to ``doc``, rebuilt for the same bytes (new sidecars)."""
    keep_shared(doc, old, inode=False)
    doc["hashes"], doc["hashed"] = {**doc["hashes"], **(old.get("hashes") or {})}, old.get("hashed")
    doc["verify_status"], doc["verified_at"] = old.get("verify_status"), old.get("verified_at")
    doc["verify_reason"] = old.get("verify_reason")


_COMPACT = json.JSONEncoder(separators=(",", ":"))


def _dumps(obj: Any) -> bytes | str:
    """Compact JSON; orjson is several times faster, but refuses the lone surrogates that undecodable bytes
    in a file name become, which the standard encoder escapes."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return _COMPACT.encode(obj)


#: The values a stored document leaves out (most models have no verdict, rating or folder flag yet): a million
#: documents pay for every key they hold. ``load_doc`` puts them back.
_UNSET: dict[str, Any] = {"title": None, "base_model": None, "source": None, "source_url": None, "preview": None,
                          "dir": False, "hashed": False, "verify_status": None, "verified_at": None,
                          "verify_reason": None, "model_type": None, "nsfw_level": None}


def pack_doc(doc: ModelDoc) -> bytes | str:
    """A document as stored: compact JSON without the keys that hold their unset value."""
    return _dumps({k: v for k, v in doc.items() if not _unset(k, v)})


def _unset(key: str, value: Any) -> bool:
    if key in _UNSET:
        unset = _UNSET[key]
        return value is unset  # None or False, never a 0 or an empty string
    return key in ("hashes", "trigger_words") and not value


def _parse(raw: bytes | str) -> Any:
    """orjson, or the standard library for the lone surrogates of an undecodable file name."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def load_doc(raw: bytes | str) -> ModelDoc:
    """A stored document with every key (``pack_doc`` leaves the unset ones out; an older version kept them)."""
    doc = _parse(raw)
    for key, value in _UNSET.items():
        doc.setdefault(key, value)
    doc.setdefault("hashes", {})
    doc.setdefault("trigger_words", [])
    return cast(ModelDoc, doc)


def model_json(raw: bytes) -> bytes:
    """The ``Model`` JSON of a stored document (``to_model`` reads the keys a document may leave out with
    their defaults, so the document is used as stored: a page of a listing makes a hundred)."""
    out = _dumps(to_model(_parse(raw)))
    return out if isinstance(out, bytes) else out.encode()


def _search_row(mid: str, doc: ModelDoc, name: str, lower: str) -> str:
    """``size TAB created TAB modified TAB lower(name) TAB text TAB base model TAB type``: the sort keys, the
    searched text and the two facets the library's chips filter on (as shown, tabs made spaces). The text ends
    with a ``tag:<tag>`` word per tag, ``fav:1`` for a favorite, ``has:update`` for a model with a newer
    version, ``verify:<verdict>`` once verified and ``no:preview``, so a search finds them as words."""
    marks = ([f"tag:{t}" for t in doc.get("tags") or []] + (["fav:1"] if doc.get("favorite") else [])
             + (["has:update"] if doc.get("update_available") else [])
             + ([f"verify:{doc['verify_status']}"] if doc.get("verify_status") else [])
             + ([] if doc.get("preview") else ["no:preview"]))
    text = " ".join([mid.split("/", 2)[2], name, " ".join(doc.get("trigger_words") or []),
                     doc.get("base_model") or "", *marks]).lower().replace("\t", " ")
    base = (doc.get("base_model") or "").replace("\t", " ")
    kind = model_types.model_type(doc.get("model_type"), doc["folder"]).replace("\t", " ")
    return f"{doc['size']}\t{doc['ctime_ns']}\t{doc['mtime_ns']}\t{lower}\t{text}\t{base}\t{kind}"
