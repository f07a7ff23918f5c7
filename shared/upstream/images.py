"""Which of Civitai's images becomes a model's preview: images and videos in Civitai's order, within the NSFW
ceiling (``Services.nsfw_level``), fetched through the guarded client with a size cap. Used by downloads, the
metadata lookup and the preview job alike; where the bytes are saved is the store's business."""
from __future__ import annotations

from typing import Any

from shared.upstream.http import HttpClient

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


def pick_image(images: Any, nsfw_level: int) -> dict[str, Any] | None:
    """The first image or video whose NSFW level is within the configured ceiling."""
    found = eligible_images(images, nsfw_level)
    return found[0] if found else None


def fetch_civitai_preview(http: HttpClient, images: Any, nsfw_level: int) -> bytes | None:
    """The bytes of the first eligible image that answers 200 with at most MAX_PREVIEW_BYTES, or None when none
    does. Errors of the guarded client (host unreachable, private address refused, too many redirects) are
    raised: each caller has its own policy for a preview that cannot be had."""
    for image in eligible_images(images, nsfw_level):
        data = http.fetch_bytes(image["url"], MAX_PREVIEW_BYTES, timeout=60.0)
        if data is not None:
            return data
    return None
