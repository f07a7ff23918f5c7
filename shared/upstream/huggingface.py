"""Hugging Face: HEAD the ``resolve`` URL the way huggingface_hub does (``Accept-Encoding: identity``, only
relative redirects followed) to learn the commit, size and, for LFS files, the sha256 (``X-Linked-Etag``);
list a repo's files for the user's choice (reference §2). The download's plan is ``downloads/huggingface_plan.py``."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.config import Settings
from shared.upstream.http import HttpClient, raise_for_status
from shared.upstream.urls import Source, hf_resolve_url

MODEL_EXTENSIONS = (".safetensors", ".sft", ".gguf", ".ckpt", ".pt", ".pth", ".bin", ".pt2", ".pkl")


def _norm_etag(raw: str | None) -> str | None:
    if not raw:
        return None
    return raw.removeprefix("W/").strip('"') or None


def head(http: HttpClient, settings: Settings, src: Source, key: str | None) -> dict[str, Any]:
    """``{"url", "commit", "etag", "size", "lfs"}`` of the file a source names (its LFS etag is the sha256)."""
    url = hf_resolve_url(settings, src.repo or "", src.revision, src.path or "")
    resp = http.open(url, key=key, method="HEAD", stream=False, timeout=30.0,
                     headers={"Accept-Encoding": "identity"}, follow=lambda loc: loc.startswith("/"))
    raise_for_status(resp, "huggingface")
    linked = _norm_etag(resp.headers.get("X-Linked-Etag"))
    size = resp.headers.get("X-Linked-Size") or (resp.headers.get("Content-Length") if resp.status_code < 300 else None)
    return {"url": url, "commit": resp.headers.get("X-Repo-Commit"),
            "etag": linked or _norm_etag(resp.headers.get("ETag")),
            "size": int(size) if size else None, "lfs": linked is not None}


def list_files(http: HttpClient, settings: Settings, src: Source, key: str | None) -> list[dict[str, Any]]:
    """The repo's files at the source's revision (under its ``dir`` for a tree URL), model files typed ``Model``."""
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
                    "download_url": hf_resolve_url(settings, src.repo or "", src.revision, name)})
    return out
