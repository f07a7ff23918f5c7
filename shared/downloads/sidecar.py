"""After publishing: the preview (the first upstream image within ``settings.nsfw_level``, fetched through the
same guarded client and saved as ``NAME.webp`` or a kept video) and the ``NAME.md`` description sidecar in the
ComfyUI-Model-Manager layout. Both are best effort: a missing preview never fails a verified download."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from shared.config import Settings
from shared.downloads.http import HttpClient
from shared.downloads.plan import Plan
from shared.errors import DepotError
from shared.previews.imaging import save_preview
from shared.store.sidecars import write_description

_MAX_PREVIEW_BYTES = 64 * 1024 * 1024


def pick_image(images: list[dict[str, Any]], nsfw_level: int) -> dict[str, Any] | None:
    """The first image or video whose NSFW level is within the configured ceiling."""
    for img in images:
        level = img.get("nsfwLevel") or 1
        if img.get("url") and img.get("type", "image") in ("image", "video") and level <= nsfw_level:
            return img
    return None


def fetch_preview(http: HttpClient, settings: Settings, plan: Plan, target: Path,
                  log: Callable[[str], None]) -> str | None:
    img = pick_image(plan.meta.get("images") or [], settings.nsfw_level)
    if img is None:
        return None
    try:
        resp = http.open(img["url"], timeout=30.0)
        with resp:
            if resp.status_code != 200:
                log(f"preview not saved: {img['url']} answered HTTP {resp.status_code}")
                return None
            data = resp.raw.read(_MAX_PREVIEW_BYTES + 1, decode_content=True)
        if len(data) > _MAX_PREVIEW_BYTES:
            log("preview not saved: the image is larger than 64 MiB")
            return None
        return save_preview(data, target).name
    except (DepotError, OSError, ValueError) as exc:
        log(f"preview not saved: {getattr(exc, 'message', exc)}")
        return None
    except Exception as exc:  # noqa: BLE001 - network errors of any kind must not fail a verified download
        log(f"preview not saved: {type(exc).__name__}")
        return None


def write_sidecar(target: Path, plan: Plan, hashes: dict[str, str], nsfw_level: int) -> None:
    meta = plan.meta
    extra = {k: meta[k] for k in ("model_id", "version_id", "file_id", "model_type", "version_name", "repo",
                                  "revision", "commit", "path") if meta.get(k) is not None}
    extra["source"] = plan.source
    image = pick_image(meta.get("images") or [], nsfw_level)
    write_description(target, model_name=meta.get("model_name"), author=meta.get("author"),
                      base_model=meta.get("base_model"), hashes=hashes, metadata=extra,
                      model_page=meta.get("model_page"), preview=[image["url"]] if image else None,
                      website=meta.get("website"), trigger_words=meta.get("trigger_words") or [],
                      about=meta.get("about") or None, description=meta.get("description") or None)
