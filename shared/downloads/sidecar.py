"""After publishing: the preview (the first upstream image within the NSFW ceiling, fetched through the
same guarded client and saved as ``NAME.webp`` or a kept video; when the source gives none, as Hugging Face and
direct links never do, the cover embedded in the safetensors header) and the ``NAME.md`` description sidecar in
the ComfyUI-Model-Manager layout. Both are best effort: a missing preview never fails a verified download."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from shared.downloads.http import HttpClient
from shared.downloads.plan import Plan
from shared.errors import DepotError
from shared.previews.embedded import embedded_cover
from shared.previews.imaging import save_preview
from shared.store.sidecars import write_description

#: the largest preview image or video fetched from upstream
MAX_PREVIEW_BYTES = 64 * 1024 * 1024


def _within_nsfw(image: dict[str, Any], ceiling: int) -> bool:
    """Civitai's ``nsfwLevel`` (1 PG … 16 XXX) against the ceiling; older answers only have ``nsfw``."""
    level = image.get("nsfwLevel")
    if isinstance(level, int) and not isinstance(level, bool):
        return level <= ceiling
    return ceiling > 1 or image.get("nsfw") in (None, False, "None")


def eligible_images(images: Any, nsfw_level: int) -> list[dict[str, Any]]:
    """Images and videos of a Civitai answer within the NSFW ceiling, in Civitai's order."""
    return [img for img in images or [] if isinstance(img, dict) and img.get("url")
            and img.get("type", "image") in ("image", "video") and _within_nsfw(img, nsfw_level)]


def pick_image(images: list[dict[str, Any]], nsfw_level: int) -> dict[str, Any] | None:
    """The first image or video whose NSFW level is within the configured ceiling."""
    found = eligible_images(images, nsfw_level)
    return found[0] if found else None


def fetch_preview(http: HttpClient, nsfw_level: int, plan: Plan, target: Path,
                  log: Callable[[str], None]) -> str | None:
    img = pick_image(plan.meta.get("images") or [], nsfw_level)
    if img is None:
        return None
    try:
        data = http.fetch_bytes(img["url"], MAX_PREVIEW_BYTES)
        if data is None:
            log(f"preview not saved: {img['url']} did not answer with an image of at most 64 MiB")
            return None
        return save_preview(data, target).name
    except (DepotError, OSError, ValueError) as exc:
        log(f"preview not saved: {getattr(exc, 'message', exc)}")
        return None
    except Exception as exc:  # noqa: BLE001 - network errors of any kind must not fail a verified download
        log(f"preview not saved: {type(exc).__name__}")
        return None


def embedded_preview(target: Path, log: Callable[[str], None]) -> str | None:
    """Save the cover embedded in the model's safetensors header (``ssmd_cover_images``,
    ``modelspec.thumbnail``) as its preview; the file name saved, or None when it has none."""
    data = embedded_cover(target)
    if data is None:
        return None
    try:
        return save_preview(data, target).name
    except (DepotError, OSError, ValueError) as exc:
        log(f"embedded preview not saved: {getattr(exc, 'message', exc)}")
        return None
    except Exception as exc:  # noqa: BLE001 - a cover that breaks the encoder must not fail a verified download
        log(f"embedded preview not saved: {type(exc).__name__}")
        return None


def save_download_preview(http: HttpClient, nsfw_level: int, plan: Plan, target: Path,
                          log: Callable[[str], None]) -> str | None:
    """The source's preview, else the embedded cover; the file name saved, or None."""
    return fetch_preview(http, nsfw_level, plan, target, log) or embedded_preview(target, log)


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
