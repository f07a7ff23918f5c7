"""Sidecar files other tools keep next to a model (``NAME`` = file name without extension): ``NAME.md`` /
``NAME.txt`` (ComfyUI-Model-Manager: YAML front matter + ``# Trigger Words`` / ``# About this version`` /
``# <model name>`` sections), ``NAME.civitai.info`` (Civitai Helper: the raw by-hash model-version JSON),
``NAME.metadata.json`` (Lora-Manager), ``NAME.cm-info.json`` (Stability Matrix) and A1111's ``NAME.json``.
They are read into one summary; only ``NAME.md`` is ever written, so other tools' files are left alone.
Previews are looked up in the contract's order and saved as ``NAME.webp`` (or the video's own type) by
``save_preview``, which owns their naming. The safetensors ``__metadata__`` is read with a size cap and
long values (base64 thumbnails) are elided."""
from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from shared.errors import InvalidPath
from shared.files import read_capped, write_atomic
from shared.media.imaging import preview_file
from shared.store import base_models, model_types
from shared.store.description import html_to_markdown
from shared.store.front_matter import Quoted, dump_front_matter, split_front_matter
from shared.store.paths import NAME_MAX, check_name

#: ComfyUI-Model-Manager's lookup order (CONTRACT §4): ``NAME<ext>`` then ``NAME.preview<ext>`` per extension.
PREVIEW_EXTS = (".webm", ".mp4", ".webp", ".png", ".jpg", ".jpeg", ".gif", ".bmp")
#: Sidecar suffixes read (in priority order) after ``NAME``; previews are separate.
DESCRIPTION_SUFFIXES = (".md", ".txt")
JSON_SUFFIXES = (".civitai.info", ".metadata.json", ".cm-info.json", ".json")
#: Everything that travels with a model on move/delete besides previews.
TRAVELLING_SUFFIXES = DESCRIPTION_SUFFIXES + JSON_SUFFIXES + (".api_info.json", ".html")
#: Names a scan recognises as belonging to a model rather than being one.
SIDECAR_SUFFIXES = TRAVELLING_SUFFIXES + PREVIEW_EXTS + tuple(".preview" + e for e in PREVIEW_EXTS)
_SIDECAR_SET = frozenset(SIDECAR_SUFFIXES)
MAX_SIDECAR_BYTES = 4 * 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_METADATA_VALUE = 4096

_SOURCES = {"civitai": "civitai", "huggingface": "huggingface", "direct link": "direct", "direct-link": "direct"}


def stem_of(model_name: str) -> str:
    """``NAME`` of a model file (directory models keep their whole name); ``os.path.splitext``'s rule (leading
    dots are not an extension) without its cost, as every listed model asks."""
    dot = model_name.rfind(".")
    if dot <= 0 or not model_name[:dot].strip("."):
        return model_name
    return model_name[:dot]


def check_model_name(name: str) -> str:
    """A new model name (``check_name``) whose sidecars fit beside it: ``NAME`` plus the longest sidecar suffix
    within ``NAME_MAX`` bytes, so a later ``NAME.civitai.info`` or preview can always be written."""
    check_name(name)
    room = NAME_MAX - max(len(s) for s in SIDECAR_SUFFIXES)
    stem = stem_of(name)
    if len(stem.encode("utf-8", "surrogatepass")) > room:
        raise InvalidPath(f"{name[:40]!r}... is too long: its name without the extension may hold {room} bytes, "
                          f"so that its sidecars (NAME.civitai.info, NAME.preview.webp...) fit in {NAME_MAX}.")
    return name


# --- previews -----------------------------------------------------------------------------------------

_PREVIEW_SUFFIXES = tuple(s for ext in PREVIEW_EXTS for s in (ext, ".preview" + ext))
_PREVIEW_RANK = {s: i for i, s in enumerate(_PREVIEW_SUFFIXES)}


def preview_candidates(stem: str) -> list[str]:
    """File names tried for a preview, in the contract's order."""
    return [stem + s for s in _PREVIEW_SUFFIXES]


def preview_from_names(stem: str, names: Iterable[str] | set[str]) -> str | None:
    """The preview file name among ``names`` (a directory listing, or just the model's own sidecars),
    without touching the disk."""
    best, best_rank = None, len(_PREVIEW_SUFFIXES)
    n = len(stem)
    for name in names:
        if name.startswith(stem):
            rank = _PREVIEW_RANK.get(name[n:], best_rank)
            if rank < best_rank:
                best, best_rank = name, rank
    return best


def find_preview(model_path: str | Path) -> Path | None:
    """The model's existing preview file, by the contract's lookup order."""
    path = Path(model_path)
    for cand in preview_candidates(stem_of(path.name)):
        if (path.parent / cand).is_file():
            return path.parent / cand
    return None



def save_preview(model_path: Path, data: bytes) -> Path:
    """Save ``data`` as the preview of ``model_path`` (``NAME.webp``, or ``NAME.mp4``/``NAME.webm`` for a video),
    published with an atomic rename; only then are the model's older previews removed, so a reader always finds
    one preview.

    Raises:
        DepotError: ``invalid_image`` when the bytes are neither a readable image nor a known video.
    """
    ext, payload = preview_file(data, f"The preview for {model_path.name}")
    stem = model_path.with_suffix("")
    target = write_atomic(stem.with_name(f"{stem.name}.{ext}"), payload)
    for name in preview_candidates(stem_of(model_path.name)):
        if name != target.name:
            (model_path.parent / name).unlink(missing_ok=True)
    return target

def is_sidecar_name(name: str) -> bool:
    """Whether ``name`` ends in a sidecar or preview suffix after some stem (``x.civitai.info``, ``x.v2.md``)."""
    dot = name.find(".")
    while dot > 0:
        if name[dot:] in _SIDECAR_SET:
            return True
        dot = name.find(".", dot + 1)
    return False


def sidecar_paths(model_path: str | Path) -> list[Path]:
    """Every existing file that travels with the model (descriptions, other tools' JSON, every preview)."""
    path = Path(model_path)
    stem = stem_of(path.name)
    names = [stem + s for s in TRAVELLING_SUFFIXES] + preview_candidates(stem)
    return [path.parent / n for n in names if n != path.name and (path.parent / n).is_file()]


# --- reading ------------------------------------------------------------------------------------------

def _read_text(path: str | Path, size: int | None = None) -> str | None:
    """The text of a sidecar (newlines made ``\\n``), or None when absent or above MAX_SIDECAR_BYTES (``size``
    from a listing saves the stat)."""
    try:
        data = read_capped(path, MAX_SIDECAR_BYTES, size)
    except OSError:
        return None
    if data is None:
        return None
    text = data.decode("utf-8", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _read_json(path: str | Path, size: int | None = None) -> dict[str, Any] | None:
    text = _read_text(path, size)
    if not text:
        return None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:  # what orjson refuses but Python reads (NaN, integers past 64 bits)
            data = json.loads(text)
        except ValueError:
            return None
    return data if isinstance(data, dict) else None


def _sections(body: str) -> list[tuple[str, str]]:
    out: list[tuple[str, list[str]]] = []
    for line in body.split("\n"):
        if line.startswith("# "):
            out.append((line[2:].strip(), []))
        elif out:
            out[-1][1].append(line)
    return [(title, "\n".join(lines).strip()) for title, lines in out]


def _words(text: str | None, seps: tuple[str, ...] = (",",)) -> list[str]:
    if not text:
        return []
    for sep in seps[1:]:
        text = text.replace(sep, seps[0])
    return [w.strip() for w in text.split(seps[0]) if w.strip()]


def parse_markdown(text: str) -> dict[str, Any]:
    meta, body = split_front_matter(text)
    out: dict[str, Any] = {"base_model": meta.get("baseModel"), "source_url": meta.get("modelPage"),
                           "author": meta.get("author")}
    website = str(meta.get("website") or meta.get("downloadPlatform") or meta.get("source") or "").lower()
    out["source"] = _SOURCES.get(website, website or None)
    extra: dict[str, Any] = meta["metadata"] if isinstance(meta.get("metadata"), dict) else {}
    out["model_type"] = model_types.civitai_type(extra.get("model_type"))
    out["nsfw_level"] = model_types.nsfw_level(extra.get("nsfw_level"))
    out["tags"], out["favorite"] = _tags(extra.get("tags")), extra.get("favorite") is True
    out["update_available"] = _update(extra.get("update"), extra.get("update_ignored"))
    if not out["source_url"] and meta.get("original_url"):
        out["source_url"] = meta.get("original_url")
    if isinstance(meta.get("hashes"), dict):
        out["hashes"] = {str(k): str(v).upper() for k, v in meta["hashes"].items() if v}
    for title, content in _sections(body):
        if title.lower() == "trigger words":
            out["trigger_words"] = [] if content.lower().startswith("no trigger") else _words(content)
        elif title.lower() == "about this version":
            out["description"] = content
        elif "name" not in out:
            out["name"] = title
    return out


def _tags(value: Any) -> list[str]:
    """A sidecar's tags: one word each (a tag with a space could not be searched as ``tag:<tag>``)."""
    if not isinstance(value, list):
        return []
    return [str(t).strip().replace(" ", "_") for t in value if isinstance(t, (str, int)) and str(t).strip()][:100]


def _update(update: Any, ignored: Any) -> dict[str, Any] | None:
    """The newer Civitai version the update check recorded, unless the user ignored that very version."""
    if not isinstance(update, dict) or not isinstance(update.get("version_id"), int):
        return None
    if update["version_id"] == ignored:
        return None
    return {k: update.get(k) for k in ("model_id", "version_id", "name", "base_model", "url")}


def _civitai_version(data: dict[str, Any]) -> dict[str, Any]:
    if "id" not in data:
        return {}  # Civitai Helper writes {} for "not on Civitai"
    model: dict[str, Any] = data["model"] if isinstance(data.get("model"), dict) else {}
    files: list[Any] = data["files"] if isinstance(data.get("files"), list) else []
    primary = next((f for f in files if isinstance(f, dict) and f.get("primary")), files[0] if files else {})
    out = {"name": model.get("name") or data.get("name"), "base_model": data.get("baseModel"),
           "trigger_words": [str(w) for w in data.get("trainedWords") or []], "source": "civitai",
           "description": data.get("description"), "model_type": model_types.civitai_type(model.get("type")),
           "nsfw_level": model_types.nsfw_level(data.get("nsfwLevel"), model.get("nsfw"))}
    if data.get("modelId"):
        out["source_url"] = f"https://civitai.com/models/{data['modelId']}?modelVersionId={data['id']}"
    if isinstance(primary, dict) and isinstance(primary.get("hashes"), dict):
        out["hashes"] = {str(k): str(v).upper() for k, v in primary["hashes"].items() if v}
    return out


def _lora_manager(data: dict[str, Any]) -> dict[str, Any]:
    civ: dict[str, Any] = data["civitai"] if isinstance(data.get("civitai"), dict) else {}
    out = _civitai_version(civ) if civ else {}
    out.update({k: v for k, v in {
        "name": data.get("model_name"), "base_model": data.get("base_model"),
        "trigger_words": [str(w) for w in (data.get("trainedWords") or civ.get("trainedWords") or [])],
        "description": data.get("modelDescription") or data.get("notes"), "tags": _tags(data.get("tags")),
        "favorite": data.get("favorite") is True}.items() if v})
    if data.get("sha256"):
        out.setdefault("hashes", {})["SHA256"] = str(data["sha256"]).upper()
    return out


def _stability_matrix(data: dict[str, Any]) -> dict[str, Any]:
    out = {"name": data.get("ModelName"), "base_model": data.get("BaseModel"),
           "trigger_words": [str(w) for w in data.get("TrainedWords") or []],
           "source": str(data.get("Source") or "civitai").lower(), "description": data.get("VersionDescription"),
           "model_type": model_types.civitai_type(data.get("ModelType")),
           "nsfw_level": model_types.nsfw_level(None, data.get("Nsfw"))}
    if data.get("ModelId") and out["source"] == "civitai":
        out["source_url"] = f"https://civitai.com/models/{data['ModelId']}?modelVersionId={data.get('VersionId')}"
    if isinstance(data.get("Hashes"), dict):
        out["hashes"] = {str(k): str(v).upper() for k, v in data["Hashes"].items() if v}
    return out


def _a1111(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"trigger_words": _words(data.get("activation text"), (",", "||")),
                           "description": data.get("description") or data.get("notes"),
                           _COARSE_BASE: base_models.from_a1111(data.get("sd version"))}
    if data.get("sha256"):
        out["hashes"] = {"SHA256": str(data["sha256"]).upper()}
    return out


#: A base model known only roughly (A1111's "sd version"): used when no sidecar and no header names one.
_COARSE_BASE = "coarse_base_model"
_JSON_READERS = {".civitai.info": _civitai_version, ".metadata.json": _lora_manager,
                 ".cm-info.json": _stability_matrix, ".json": _a1111}
SUMMARY_KEYS = ("name", "base_model", "trigger_words", "source", "source_url", "description", "hashes",
                "model_type", "nsfw_level", "tags", "favorite", "update_available")


def read_summary(model_path: str | Path, names: set[str] | None = None) -> dict[str, Any]:
    """One summary from every sidecar present, the first source to know a field winning (ours first); the base
    model falls back on the safetensors header, then on A1111's ``"sd version"``. ``names`` (the directory
    listing) avoids probing for absent files."""
    path = Path(model_path)
    return summary_in(str(path.parent), path.name, stem_of(path.name), names)


#: The summary of a model without sidecars (shared: callers never modify a summary).
EMPTY_SUMMARY: dict[str, Any] = {**dict.fromkeys(SUMMARY_KEYS), "trigger_words": [], "hashes": {}, "tags": []}


def summary_in(directory: str, name: str, stem: str, names: Any = None,
               sizes: dict[str, int] | None = None) -> dict[str, Any]:
    """``read_summary`` for the model ``name`` (whose ``NAME`` is ``stem``) in ``directory``; ``names`` (any
    container of the directory's file names) skips absent sidecars and ``sizes`` (name -> bytes, from the same
    listing) saves a stat per sidecar read."""
    prefix = f"{directory}/{stem}"
    sizes = sizes or {}
    parts: list[dict[str, Any]] = []
    for suffix in DESCRIPTION_SUFFIXES:
        side = stem + suffix
        if (names is None or side in names) and (text := _read_text(prefix + suffix, sizes.get(side))):
            parts.append(parse_markdown(text))
            break  # upstream reads the first of .txt/.md only
    for suffix, reader in _JSON_READERS.items():
        side = stem + suffix
        if side == name or (names is not None and side not in names):
            continue
        data = _read_json(prefix + suffix, sizes.get(side))
        if data:
            parts.append(reader(data))
    summary: dict[str, Any] = dict(EMPTY_SUMMARY, trigger_words=[], hashes={}, tags=[])
    for part in parts:
        for key, value in part.items():
            if value and not summary.get(key, True):
                summary[key] = value
    if (not summary["base_model"] or not summary["model_type"]) and base_models.reads_header(name):
        # The file's own header is read only now, when no sidecar said what the model is
        base, kind = base_models.header_facts(f"{directory}/{name}", need_kind=not summary["model_type"])
        summary["base_model"] = summary["base_model"] or base
        summary["model_type"] = summary["model_type"] or kind
    if not summary["base_model"]:
        summary["base_model"] = next((part[_COARSE_BASE] for part in parts if part.get(_COARSE_BASE)), None)
    return summary


def read_description(model_path: str | Path) -> str | None:
    path = Path(model_path)
    for suffix in DESCRIPTION_SUFFIXES:
        text = _read_text(path.parent / (stem_of(path.name) + suffix))
        if text is not None:
            return text
    return None


def read_safetensors_metadata(path: str | Path, cap: int = MAX_HEADER_BYTES) -> dict[str, str] | None:
    """The ``__metadata__`` of a safetensors file, or None; headers above ``cap`` are not read, and values
    longer than MAX_METADATA_VALUE (embedded base64 thumbnails) are replaced by a short note."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return None
            (n,) = struct.unpack("<Q", head)
            if n < 2 or n > cap:
                return None
            header = json.loads(fh.read(n))
    except (OSError, ValueError):
        return None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        return None
    return {str(k): (v if len(str(v)) <= MAX_METADATA_VALUE else f"<{len(str(v))} characters omitted>")
            for k, v in meta.items()}


# --- writing ------------------------------------------------------------------------------------------

def write_raw_description(model_path: str | Path, text: str) -> Path:
    """Replace ``NAME.md`` with the user's text (a ``NAME.txt`` is left for the tool that owns it)."""
    path = Path(model_path)
    return write_atomic(path.parent / (stem_of(path.name) + ".md"), text)


def write_description(model_path: str | Path, *, model_name: str | None = None, author: str | None = None,
                      base_model: str | None = None, hashes: dict[str, str] | None = None,
                      metadata: dict[str, Any] | None = None, model_page: str | None = None,
                      preview: list[str] | None = None, website: str | None = None,
                      trigger_words: list[str] | None = None, about: str | None = None,
                      description: str | None = None) -> Path:
    """Write ``NAME.md`` in the upstream ComfyUI-Model-Manager layout: alphabetical YAML front matter
    (``author, baseModel, hashes, metadata, modelPage, preview, website``) then ``# Trigger Words``,
    ``# About this version`` and ``# <model name>``. ``about`` and ``description`` are the upstream's HTML
    (Civitai's); they are written as Markdown."""
    about, description = html_to_markdown(about), html_to_markdown(description)
    hashes = {k: Quoted(v) if isinstance(v, str) else v for k, v in hashes.items()} if hashes else hashes
    front = {"author": author, "baseModel": base_model, "hashes": hashes, "metadata": metadata,
             "modelPage": model_page, "preview": preview, "website": website}
    front = {k: v for k, v in front.items() if v not in (None, "", [], {})}
    words = ", ".join(trigger_words or []) or "No trigger words"
    title = model_name or stem_of(Path(model_path).name)
    text = (dump_front_matter(front) + "\n" + f"# Trigger Words\n\n{words}\n\n"
            + f"# About this version\n\n{about or 'No description about this version'}\n\n"
            + f"# {title}\n\n{description or 'No description about this model'}\n")
    return write_raw_description(model_path, text)
