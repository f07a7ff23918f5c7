"""A Civitai download's plan: from the model and version the API gives (``upstream/civitai.py``), pick the file
the user meant (``fileId``, or the ``type``/``format`` filters, else the primary file) and describe it as a Plan
with its expected hashes, download name, target folder and sidecar metadata (reference §1.3–§1.4)."""
from __future__ import annotations

from typing import Any, cast

from shared.config import Settings
from shared.downloads.plan import CIVITAI_FILE_FOLDERS, CIVITAI_FOLDERS, DEFAULT_FOLDER, Plan
from shared.errors import Archived, NotFound
from shared.media import gguf
from shared.store import model_types
from shared.upstream.urls import Source, civitai_download_url


def choose_file(version: dict[str, Any], src: Source, file_id: int | None) -> dict[str, Any]:
    files = version.get("files") or []
    if not files:
        raise Archived(f"Civitai version {version.get('id')} has no downloadable files (the model may be "
                       "archived or taken down).")
    wanted = file_id if file_id is not None else src.query.get("fileId")
    if wanted is not None:
        for f in files:
            if str(f.get("id")) == str(wanted):
                return cast(dict[str, Any], f)
        raise NotFound(f"Civitai version {version.get('id')} has no file {wanted}; choose one of "
                       f"{', '.join(str(f.get('id')) for f in files)}.")
    pool = [f for f in files if "type" not in src.query or f.get("type") == src.query["type"]]
    fmt = src.query.get("format")
    if fmt:
        pool = [f for f in pool if (f.get("metadata") or {}).get("format") == fmt]
    if not pool:
        raise NotFound(f"No file of Civitai version {version.get('id')} matches {src.query}.")
    return next((f for f in pool if f.get("primary")), pool[0])


def build_plan(settings: Settings, model: dict[str, Any], version: dict[str, Any], f: dict[str, Any],
               folder: str | None) -> Plan:
    model_type = _model_type(model, version)
    target = folder or file_folder(model_type, f)
    hashes = {k: str(v).upper() for k, v in (f.get("hashes") or {}).items() if v}
    model_id = version.get("modelId") or model.get("id")
    page = f"{settings.civitai_url.rstrip('/')}/models/{model_id}?modelVersionId={version['id']}"
    meta = {
        "model_name": model.get("name") or (version.get("model") or {}).get("name") or f.get("name"),
        "version_name": version.get("name"), "author": (model.get("creator") or {}).get("username"),
        "base_model": version.get("baseModel"), "trigger_words": list(version.get("trainedWords") or []),
        "about": version.get("description") or "", "description": model.get("description") or "",
        "model_page": page, "website": "Civitai", "images": version.get("images") or [],
        "model_id": model_id, "version_id": version["id"], "file_id": f.get("id"), "model_type": model_type,
        "tags": model.get("tags") or [],
        "nsfw_level": model_types.nsfw_level(version.get("nsfwLevel") or model.get("nsfwLevel"), model.get("nsfw")),
    }
    size_kb = f.get("sizeKB")
    return Plan(source="civitai", url=civitai_download_url(settings, version["id"], f.get("id")),
                filename=f["name"], folder=target, idem_key=f"civitai:file:{f.get('id')}", key_name="civitai",
                size=None if size_kb is None else int(round(float(size_kb) * 1024)),
                sha256=hashes.get("SHA256", "").lower() or None, hashes=hashes, meta=meta)


def _model_type(model: dict[str, Any], version: dict[str, Any]) -> str:
    return (version.get("model") or {}).get("type") or model.get("type") or ""


def file_folder(model_type: str, f: dict[str, Any]) -> str:
    """The folder a file goes to when the user names none: by its file type, else its model's type (a
    ``.gguf`` "Checkpoint" to where GGUF loaders look)."""
    if model_type == "TextualInversion":
        return "embeddings"
    folder = CIVITAI_FILE_FOLDERS.get(f.get("type", "")) or CIVITAI_FOLDERS.get(model_type, DEFAULT_FOLDER)
    return gguf.planned_folder(str(f.get("name") or ""), folder)


def describe(model: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    """The resolve answer's version/file listing."""
    versions = model.get("modelVersions") or [version]
    model_type = _model_type(model, version)
    return {"versions": [{"id": v.get("id"), "name": v.get("name"), "base_model": v.get("baseModel"),
                          "files": [_file_entry(f, model_type) for f in (v.get("files") or [])]} for v in versions]}


def _file_entry(f: dict[str, Any], model_type: str) -> dict[str, Any]:
    return {"id": f.get("id"), "name": f.get("name"), "type": f.get("type"), "primary": bool(f.get("primary")),
            "size": None if f.get("sizeKB") is None else int(round(float(f["sizeKB"]) * 1024)),
            "format": (f.get("metadata") or {}).get("format"), "hashes": f.get("hashes") or {},
            "folder": file_folder(model_type, f)}
