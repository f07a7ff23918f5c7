"""A model's preview chosen by a user: an uploaded image or video, one fetched from a URL (through the guarded
HTTP client: private addresses refused unless allowed, redirects checked hop by hop, a size cap), or one of
Civitai's images of the model's version (found by its SHA256); or the preview removed. The bytes are checked
and saved by ``sidecar_files.save_preview`` (an HTML page is not an image), and the index is updated, which
tells every open dashboard."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from shared.config import Settings
from shared.errors import DepotError, InvalidRequest, NotFound, UpstreamError
from shared.store import sidecar_files as sidecars
from shared.store.index import StoreIndex
from shared.store.ops import ModelRef, known_doc
from shared.upstream.http import HttpClient
from shared.upstream.images import MAX_PREVIEW_BYTES, eligible_images
from shared.upstream.keystore import KeyStore


def set_preview(index: StoreIndex, ref: ModelRef, data: bytes) -> dict[str, Any]:
    """Save ``data`` (an image or a video) as the model's preview; returns the model as it is now."""
    known_doc(index, ref)
    sidecars.save_preview(ref.path, data)
    return index.record_file(ref.path)


def remove_preview(index: StoreIndex, ref: ModelRef) -> dict[str, Any]:
    """Delete every preview file of the model (``NotFound`` when it has none)."""
    known_doc(index, ref)
    found = [ref.path.parent / n for n in sidecars.preview_candidates(sidecars.stem_of(ref.path.name))]
    found = [p for p in found if p.is_file()]
    if not found:
        raise NotFound(f"{ref.folder}/{ref.relpath} has no preview to remove.")
    for path in found:
        path.unlink(missing_ok=True)
    return index.record_file(ref.path)


def fetch_url(settings: Settings, url: str) -> bytes:
    """The bytes a URL answers with, through the guarded client; a 4xx/5xx or a body over the cap is refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"Field 'url' must be an http:// or https:// address, got {url[:80]!r}.")
    try:
        data = HttpClient(settings).fetch_bytes(url, MAX_PREVIEW_BYTES, timeout=30.0)
    except DepotError as exc:
        raise type(exc)(f"Field 'url': {exc.message}", code=exc.code, http_status=exc.http_status) from None
    if data is None:
        raise UpstreamError(f"Field 'url': {url[:200]} did not answer with an image of at most "
                            f"{MAX_PREVIEW_BYTES // (1024 * 1024)} MiB.", code="preview_unavailable",
                            http_status=422)
    return data


def civitai_images(settings: Settings, index: StoreIndex, ref: ModelRef, nsfw_level: int) -> list[dict[str, Any]]:
    """Civitai's images and videos of the model's version (by its SHA256), within the NSFW ceiling."""
    doc = known_doc(index, ref)
    sha = (doc.get("hashes") or {}).get("SHA256")
    if not sha:
        raise InvalidRequest(f"{ref.folder}/{ref.relpath} is not hashed yet, so Civitai cannot be asked for its "
                             "images; run a full scan or a verify first.", code="not_hashed", http_status=409)
    key = KeyStore.from_settings(settings).get("civitai")
    url = f"{settings.civitai_url.rstrip('/')}/api/v1/model-versions/by-hash/{sha}"
    try:
        version = HttpClient(settings).get_json(url, key=key, source="civitai", retries=1)
    except NotFound:
        raise NotFound(f"Civitai does not know {ref.relpath} (no model version has its SHA256); upload a picture "
                       "or give a URL instead.") from None
    raw = version.get("images") if isinstance(version, dict) else None
    raw = raw if isinstance(raw, list) else []
    # Civitai's images carry no id of their own: an image's id here is its place in the version's list, which
    # stays the same for that version whatever the NSFW setting leaves out.
    keep = {id(img) for img in eligible_images(raw, nsfw_level)}
    return [{"id": i, "url": img["url"], "type": img.get("type", "image"), "nsfw_level": img.get("nsfwLevel"),
             "width": img.get("width"), "height": img.get("height")}
            for i, img in enumerate(raw) if id(img) in keep]


def civitai_image(settings: Settings, index: StoreIndex, ref: ModelRef, image_id: int,
                  nsfw_level: int) -> bytes:
    """The bytes of the Civitai image ``image_id`` of the model's version."""
    images = civitai_images(settings, index, ref, nsfw_level)
    chosen = next((img for img in images if img["id"] == image_id), None)
    if chosen is None:
        raise NotFound(f"Field 'civitai_image': {image_id} is not one of this model's Civitai images within the "
                       f"NSFW setting ({len(images)} are; GET …/civitai_images lists them).")
    return fetch_url(settings, chosen["url"])
