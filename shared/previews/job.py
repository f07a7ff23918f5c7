"""The preview job: give each model of a list, a folder or the whole store a picture. Sources, in order for
``auto``: the model's existing local preview (its thumbnail is rebuilt), a cover image embedded in the file,
Civitai's images for the file's SHA256 (within the NSFW ceiling, ``Services.nsfw_level``), else none. An explicit
``embedded`` or ``civitai`` source replaces the existing preview. Per-model failures (Civitai unreachable, a
picture that is not a readable image) fail that model in the result and never stop the job."""
from __future__ import annotations

from functools import cached_property
from typing import Any

from shared.errors import DepotError, InvalidRequest
from shared.jobs import JobContext
from shared.media.embedded import embedded_cover
from shared.media.hashing import SHA256_ONLY, hash_file
from shared.media.thumbs import DEFAULT_SIZE, Thumbnailer
from shared.services import Services
from shared.store.index import StoreIndex
from shared.store.layout import StoreLayout
from shared.store.sidecar_files import find_preview, read_summary, save_preview
from shared.store.targets import Target, iter_targets
from shared.upstream.civitai import lookup_one
from shared.upstream.http import HttpClient
from shared.upstream.images import fetch_civitai_preview
from shared.upstream.keystore import KeyStore

SOURCES = ("auto", "embedded", "civitai")


def _sha256(target: Target) -> str:
    known = (read_summary(target.path).get("hashes") or {}).get("SHA256")
    return known or hash_file(target.path, SHA256_ONLY)["SHA256"]


class CivitaiPreviews:
    """Civitai's pictures for a file's SHA256, with one HTTP client and key per job (made on first use). The
    lookups wait at the Civitai gate every worker shares, and a 429 closes it for all of them."""

    def __init__(self, ctx: JobContext, services: Services) -> None:
        self.ctx, self.services = ctx, services

    @cached_property
    def http(self) -> HttpClient:
        return HttpClient(self.services.settings)

    @cached_property
    def key(self) -> str | None:
        return KeyStore.from_settings(self.services.settings).get("civitai")

    @cached_property
    def nsfw_level(self) -> int:
        return self.services.nsfw_level()

    def first(self, target: Target) -> bytes | None:
        """The first image (or video) within the NSFW ceiling, or None."""
        version = lookup_one(self.ctx, self.services, self.http, _sha256(target), self.key)
        return fetch_civitai_preview(self.http, (version or {}).get("images"), self.nsfw_level)


def preview_one(civitai: CivitaiPreviews, thumbs: Thumbnailer, target: Target, source: str) -> dict[str, Any]:
    """Make the preview of one model; returns ``{"model","preview","source"}`` (``source`` None = none found)."""
    existing = find_preview(target.path)
    if source == "auto" and existing is not None:
        thumbs.get(existing, DEFAULT_SIZE)
        return {"model": target.ref, "preview": existing.name, "source": "local"}
    data, used = None, None
    if source in ("auto", "embedded"):
        data, used = embedded_cover(target.path), "embedded"
    if data is None and source in ("auto", "civitai"):
        data, used = civitai.first(target), "civitai"
    if data is None:
        return {"model": target.ref, "preview": existing.name if existing else None, "source": None}
    saved = save_preview(target.path, data)
    thumbs.get(saved, DEFAULT_SIZE)
    return {"model": target.ref, "preview": saved.name, "source": used}


def run_previews(ctx: JobContext, services: Services) -> dict[str, Any]:
    """Job entry point. Params: ``models`` (list of refs) or ``folder`` (else the whole store), ``source``."""
    settings = services.settings
    source = ctx.params.get("source") or "auto"
    if source not in SOURCES:
        raise InvalidRequest(f"Unknown preview source {source!r}; use one of {', '.join(SOURCES)}.")
    layout = StoreLayout.from_settings(settings)
    targets = list(iter_targets(layout, ctx.params))
    thumbs = Thumbnailer(settings.thumbs_dir, settings.thumbs_max_bytes)
    civitai = CivitaiPreviews(ctx, services)
    index = StoreIndex(services.redis, settings, layout)
    result: dict[str, Any] = {"generated": 0, "skipped": 0, "failed": 0, "files": []}
    ctx.progress(0, len(targets), force=True)
    for i, target in enumerate(targets):
        if target.problem:
            item: dict[str, Any] = {"model": target.ref, "preview": None, "source": None, "error": target.problem}
        else:
            try:
                item = preview_one(civitai, thumbs, target, source)
                if item["source"] not in (None, "local"):
                    index.record_file(target.path)  # the listing shows the new preview
            except (DepotError, OSError) as exc:
                message = exc.message if isinstance(exc, DepotError) else f"{type(exc).__name__}: {exc}"
                item = {"model": target.ref, "preview": None, "source": None, "error": message}
        bucket = "failed" if "error" in item else "generated" if item["source"] else "skipped"
        result[bucket] += 1
        result["files"].append(item)
        ctx.progress(i + 1, len(targets))
    ctx.progress(len(targets), len(targets), force=True)
    return result
