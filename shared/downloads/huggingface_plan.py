"""A Hugging Face download's plan: the file a repo link means (its only model file, else the user must choose),
the folder it goes to when the user names none, and the Plan from what ``upstream/huggingface.head`` learnt."""
from __future__ import annotations

from typing import Any

from shared.config import Settings
from shared.downloads.plan import DEFAULT_FOLDER, Plan
from shared.errors import InvalidRequest
from shared.media import gguf
from shared.upstream.urls import Source

_FOLDER_HINTS = (("lora", "loras"), ("vae", "vae"), ("controlnet", "controlnet"), ("upscale", "upscale_models"),
                 ("text_encoder", "text_encoders"), ("clip_vision", "clip_vision"), ("unet", "diffusion_models"))


def with_folders(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A repo listing (``upstream/huggingface.list_files``) with the folder each file would go to."""
    return [{**f, "folder": guess_folder(f["path"])} for f in files]


def pick_path(files: list[dict[str, Any]], src: Source) -> str:
    """The repo's only model file; InvalidRequest naming them when there are several (or none)."""
    models = [f for f in files if f["type"] == "Model"]
    if len(models) == 1:
        return str(models[0]["path"])
    names = ", ".join(f["path"] for f in models[:20]) or "none"
    raise InvalidRequest(f"The Hugging Face repo {src.repo} holds several files; choose one (a resolve or blob "
                         f"URL, or file_id = its path). Model files: {names}.")


def guess_folder(path: str) -> str:
    """The folder a file goes to when the user names none, from hints in its path (a GGUF by its kind)."""
    low = path.lower()
    return gguf.planned_folder(path, next((folder for hint, folder in _FOLDER_HINTS if hint in low), DEFAULT_FOLDER))


def build_plan(settings: Settings, src: Source, meta: dict[str, Any], folder: str | None) -> Plan:
    path = src.path or ""
    author = (src.repo or "").split("/")[0]
    sidecar: dict[str, Any] = {"model_name": path.rsplit("/", 1)[-1], "author": author, "website": "HuggingFace",
               "model_page": f"{settings.hf_endpoint.rstrip('/')}/{src.repo}", "base_model": None,
               "trigger_words": [], "about": "", "description": "", "images": [], "repo": src.repo,
               "revision": src.revision, "commit": meta.get("commit"), "path": path}
    return Plan(source="huggingface", url=meta["url"], filename=path.rsplit("/", 1)[-1],
                folder=folder or guess_folder(path), idem_key=f"hf:{src.repo}@{src.revision}:{path}",
                key_name="huggingface", size=meta.get("size"),
                sha256=meta["etag"].lower() if meta.get("lfs") and meta.get("etag") else None, meta=sidecar)
