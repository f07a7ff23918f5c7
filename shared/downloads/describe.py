"""After publishing a download: its preview and its ``NAME.md``. The preview is the first of the source's
images within the NSFW ceiling that can be fetched (``upstream/images.py``, through the same guarded client);
when the source gives none, as Hugging Face and direct links never do, the cover embedded in the safetensors
header. ``NAME.md`` is written in the ComfyUI-Model-Manager layout. Both are best effort: a preview that cannot
be had is logged and never fails a verified download."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shared.downloads.plan import Plan
from shared.errors import DepotError
from shared.media.embedded import embedded_cover
from shared.store.sidecar_files import save_preview, stem_of, write_description
from shared.upstream.http import HttpClient
from shared.upstream.images import fetch_civitai_preview, pick_image


def _save(target: Path, data: bytes, what: str, log: Callable[[str], None]) -> str | None:
    try:
        return save_preview(target, data).name
    except (DepotError, OSError, ValueError) as exc:
        log(f"{what} not saved: {getattr(exc, 'message', exc)}")
    except Exception as exc:  # noqa: BLE001 - a picture that breaks the encoder must not fail a verified download
        log(f"{what} not saved: {type(exc).__name__}")
    return None


def source_preview(http: HttpClient, nsfw_level: int, plan: Plan, target: Path,
                   log: Callable[[str], None]) -> str | None:
    """Save the first of the source's images that can be fetched as the preview; the file name saved, or None."""
    images = plan.meta.get("images") or []
    if pick_image(images, nsfw_level) is None:
        return None
    try:
        data = fetch_civitai_preview(http, images, nsfw_level)
    except (DepotError, OSError, ValueError) as exc:
        log(f"preview not saved: {getattr(exc, 'message', exc)}")
        return None
    except Exception as exc:  # noqa: BLE001 - network errors of any kind must not fail a verified download
        log(f"preview not saved: {type(exc).__name__}")
        return None
    if data is None:
        log("preview not saved: none of the source's images answered with an image of at most 64 MiB")
        return None
    return _save(target, data, "preview", log)


def embedded_preview(target: Path, log: Callable[[str], None]) -> str | None:
    """Save the cover embedded in the model's safetensors header (``ssmd_cover_images``,
    ``modelspec.thumbnail``) as its preview; the file name saved, or None when it has none."""
    data = embedded_cover(target)
    return None if data is None else _save(target, data, "embedded preview", log)


def save_download_preview(http: HttpClient, nsfw_level: int, plan: Plan, target: Path,
                          log: Callable[[str], None]) -> str | None:
    """The source's preview, else the embedded cover; the file name saved, or None."""
    return source_preview(http, nsfw_level, plan, target, log) or embedded_preview(target, log)


def write_md(target: Path, plan: Plan, hashes: dict[str, str], nsfw_level: int, *, chosen: bool = False) -> None:
    """Write the downloaded model's ``NAME.md`` from the plan's metadata and the hashes computed in transfer.
    ``chosen``: the user named the file, and that name is the model's name (the card, the task, the echo)."""
    meta = plan.meta
    extra = {k: meta[k] for k in ("model_id", "version_id", "file_id", "model_type", "version_name", "repo",
                                  "revision", "commit", "path", "nsfw_level") if meta.get(k) is not None}
    extra["source"] = plan.source
    image = pick_image(meta.get("images") or [], nsfw_level)
    name = stem_of(target.name) if chosen else meta.get("model_name")
    write_description(target, model_name=name, author=meta.get("author"),
                      base_model=meta.get("base_model"), hashes=hashes, metadata=extra,
                      model_page=meta.get("model_page"), preview=[image["url"]] if image else None,
                      website=meta.get("website"), trigger_words=meta.get("trigger_words") or [],
                      about=meta.get("about") or None, description=meta.get("description") or None)
