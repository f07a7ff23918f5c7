"""Hugging Face: HEAD the ``resolve`` URL the way huggingface_hub does (``Accept-Encoding: identity``, only
relative redirects followed) to learn the commit, size and, for LFS files, the sha256 (``X-Linked-Etag``);
list a repo's files for the user's choice (reference §2)."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.config import Settings
from shared.downloads.plan import DEFAULT_FOLDER, Plan
from shared.errors import InvalidRequest
from shared.media import gguf
from shared.upstream.http import HttpClient, raise_for_status
from shared.upstream.urls import Source, hf_resolve_url

MODEL_EXTENSIONS = (".safetensors", ".sft", ".gguf", ".ckpt", ".pt", ".pth", ".bin", ".pt2", ".pkl")
_FOLDER_HINTS = (("lora", "loras"), ("vae", "vae"), ("controlnet", "controlnet"), ("upscale", "upscale_models"),
                 ("text_encoder", "text_encoders"), ("clip_vision", "clip_vision"), ("unet", "diffusion_models"))


def _norm_etag(raw: str | None) -> str | None:
    if not raw:
        return None
    return raw.removeprefix("W/").strip('"') or None


def head(http: HttpClient, settings: Settings, src: Source, key: str | None) -> dict[str, Any]:
    url = hf_resolve_url(settings, src.repo or "", src.revision, src.path or "")
    resp = http.open(url, key=key, method="HEAD", stream=False, timeout=30.0,
                     headers={"Accept-Encoding": "identity"}, follow=lambda loc: loc.startswith("/"))
    raise_for_status(resp, "huggingface")
    linked = _norm_etag(resp.headers.get("X-Linked-Etag"))
    size = resp.headers.get("X-Linked-Size") or (resp.headers.get("Content-Length") if resp.status_code < 300 else None)
    return {"url": url, "commit": resp.headers.get("X-Repo-Commit"), "etag": linked or _norm_etag(resp.headers.get("ETag")),
            "size": int(size) if size else None, "lfs": linked is not None}


def list_files(http: HttpClient, settings: Settings, src: Source, key: str | None) -> list[dict[str, Any]]:
    base = settings.hf_endpoint.rstrip("/")
    info = http.get_json(f"{base}/api/models/{src.repo}/revision/{quote(src.revision, safe='')}?blobs=true",
                         key=key, source="huggingface")
    out = []
    prefix = (src.query.get("dir") or "").strip("/")
    for s in info.get("siblings") or []:
        name = s.get("rfilename", "")
        if prefix and not name.startswith(prefix + "/"):
            continue
        lfs = s.get("lfs") or {}
        out.append({"id": name, "name": name.rsplit("/", 1)[-1], "path": name, "size": s.get("size"),
                    "type": "Model" if name.lower().endswith(MODEL_EXTENSIONS) else "Other",
                    "hashes": {"SHA256": lfs["sha256"].upper()} if lfs.get("sha256") else {},
                    "download_url": hf_resolve_url(settings, src.repo or "", src.revision, name),
                    "folder": guess_folder(name)})
    return out


def pick_path(files: list[dict[str, Any]], src: Source) -> str:
    models = [f for f in files if f["type"] == "Model"]
    if len(models) == 1:
        return models[0]["path"]
    names = ", ".join(f["path"] for f in models[:20]) or "none"
    raise InvalidRequest(f"The Hugging Face repo {src.repo} holds several files; choose one (a resolve or blob "
                         f"URL, or file_id = its path). Model files: {names}.")


def guess_folder(path: str) -> str:
    low = path.lower()
    return gguf.planned_folder(path, next((folder for hint, folder in _FOLDER_HINTS if hint in low), DEFAULT_FOLDER))


def build_plan(settings: Settings, src: Source, meta: dict[str, Any], folder: str | None) -> Plan:
    path = src.path or ""
    author = (src.repo or "").split("/")[0]
    sidecar = {"model_name": path.rsplit("/", 1)[-1], "author": author, "website": "HuggingFace",
               "model_page": f"{settings.hf_endpoint.rstrip('/')}/{src.repo}", "base_model": None,
               "trigger_words": [], "about": "", "description": "", "images": [], "repo": src.repo,
               "revision": src.revision, "commit": meta.get("commit"), "path": path}
    return Plan(source="huggingface", url=meta["url"], filename=path.rsplit("/", 1)[-1],
                folder=folder or guess_folder(path), idem_key=f"hf:{src.repo}@{src.revision}:{path}",
                key_name="huggingface", size=meta.get("size"),
                sha256=meta["etag"].lower() if meta.get("lfs") and meta.get("etag") else None, meta=sidecar)
