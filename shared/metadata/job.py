"""Metadata for models that lack it: their SHA256s are looked up on Civitai in batches of at most 100 (through
the rate gate every worker shares, ``upstream/civitai.py``), and for each match ``NAME.md`` (upstream layout) and
a preview are written, then the model is re-indexed. The preview is best effort: an image that cannot be fetched
or is not a readable image makes way for the next one, and a model keeps a preview it already has."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shared.errors import DepotError
from shared.jobs import JobContext
from shared.services import Services
from shared.store.index import ModelDoc, StoreIndex
from shared.store.sidecar_files import find_preview, read_summary, save_preview, write_description
from shared.upstream.civitai import BATCH, lookup_batch
from shared.upstream.http import HttpClient
from shared.upstream.images import eligible_images, fetch_civitai_preview
from shared.upstream.keystore import KeyStore


def describe(path: Path, version: dict[str, Any], sha: str) -> None:
    """Write ``NAME.md`` for the model at ``path`` from Civitai's answer for its SHA256; the user's tags and
    favorite flag in the one it replaces are kept."""
    files = [f for f in version.get("files") or [] if isinstance(f, dict)]
    match = next((f for f in files if str((f.get("hashes") or {}).get("SHA256", "")).upper() == sha), {})
    model: dict[str, Any] = version["model"] if isinstance(version.get("model"), dict) else {}
    images = [i for i in version.get("images") or [] if isinstance(i, dict) and i.get("url")]
    write_description(
        path, model_name=model.get("name"), author=(version.get("creator") or {}).get("username"),
        base_model=version.get("baseModel"), hashes=match.get("hashes"),
        metadata={**(match.get("metadata") or {}), **_kept(path)} or None,
        model_page=f"https://civitai.com/models/{version.get('modelId')}?modelVersionId={version.get('id')}",
        preview=[i["url"] for i in images], website="Civitai", trigger_words=version.get("trainedWords"),
        about=version.get("description"), description=model.get("description"))


def _kept(path: Path) -> dict[str, Any]:
    """What the user set in the model's current ``NAME.md`` (tags, favorite), to carry into a new one."""
    summary = read_summary(path)
    return {k: v for k, v in (("tags", summary.get("tags")), ("favorite", summary.get("favorite"))) if v}


def _save_preview(http: HttpClient, path: Path, version: dict[str, Any], nsfw_level: int) -> bool:
    """Give a model without a preview the first of the version's images that can be fetched and read: an image
    that fails either way makes way for the next one."""
    if find_preview(path) is not None:
        return False
    for image in eligible_images(version.get("images"), nsfw_level):
        try:
            data = fetch_civitai_preview(http, [image], nsfw_level)
            if data is not None:
                save_preview(path, data)
                return True
        except DepotError:
            continue
    return False


def fetch_missing_metadata(ctx: JobContext, services: Services, index: StoreIndex,
                           folder: str | None) -> dict[str, Any]:
    """Look up every hashed model without a known source; returns ``{looked_up, found, previews}``."""
    return fetch_metadata(ctx, services, index, (doc for doc in index.models(folder) if not doc.get("source")))


def fetch_metadata(ctx: JobContext, services: Services, index: StoreIndex,
                   docs: Iterable[ModelDoc]) -> dict[str, Any]:
    """Look ``docs`` (those hashed) up on Civitai by SHA256 and write what it knows of each; returns
    ``{looked_up, found, previews}``."""
    key = KeyStore.from_settings(services.settings).get("civitai")
    http = HttpClient(services.settings)
    nsfw_level = services.nsfw_level()
    wanted: dict[str, list[ModelDoc]] = {}
    for doc in docs:
        sha = (doc.get("hashes") or {}).get("SHA256")
        if sha and doc.get("hashed") and not doc.get("dir"):
            wanted.setdefault(sha, []).append(doc)
    shas = sorted(wanted)
    found = previews = 0
    for start in range(0, len(shas), BATCH):
        ctx.progress(start, len(shas), phase="metadata")
        for version in lookup_batch(ctx, services, http, shas[start:start + BATCH], key):
            for f in version.get("files") or []:
                sha = str(((f or {}).get("hashes") or {}).get("SHA256", "")).upper()
                for doc in wanted.pop(sha, []):
                    path = index.layout.resolve(doc["folder"], doc["path_index"], doc["relpath"])
                    ctx.fence()  # about to write files next to a model
                    describe(path, version, sha)
                    previews += _save_preview(http, path, version, nsfw_level)
                    index.record_file(path)
                    found += 1
    return {"looked_up": len(shas), "found": found, "previews": previews}
