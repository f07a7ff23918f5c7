"""One fetch of a Civitai preview (``upstream/images.fetch_civitai_preview``: the first image within the NSFW
ceiling that answers), three callers, each with its own policy when a picture cannot be had: a download never
fails for one (it falls back to the cover embedded in the file), the scan's metadata lookup tries the next image,
and the preview job fails that model and goes on. Against the fake upstream over real loopback HTTP and a real
redis-server."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.downloads.job import run_download
from shared.errors import Transient
from shared.previews.job import run_previews
from shared.store.layout import StoreLayout
from shared.upstream.http import HttpClient
from shared.upstream.images import fetch_civitai_preview
from tests.download_support import job_context, jpeg_bytes, safetensors_bytes
from tests.test_download_previews import GREEN, _colour, _near, with_cover
from tests.test_previews import _ctx
from tests.test_scan import make_ctx

NOT_AN_IMAGE = b"<html>an error page served as image/jpeg</html>"


def _blue(path: Path) -> bool:
    r, g, b = _colour(path)
    return b > 200 and r < 60 and g < 60


def test_the_first_image_within_the_ceiling_that_answers_is_fetched(settings: Settings, upstream: Any) -> None:
    # Given a gone image, a red one rated X and a blue one rated PG, in Civitai's order
    http = HttpClient(settings)
    gone = {"url": f"{upstream.url}/images/gone.jpeg", "nsfwLevel": 1}
    red = {"url": upstream.add_direct("/images/red.jpeg", jpeg_bytes("red"), "image/jpeg"), "nsfwLevel": 8}
    blue = {"url": upstream.add_direct("/images/blue.jpeg", jpeg_bytes("blue"), "image/jpeg"), "nsfwLevel": 1}
    # Then the gone one is passed over, and the ceiling decides between the others
    assert fetch_civitai_preview(http, [gone, red, blue], 1) == jpeg_bytes("blue")
    assert fetch_civitai_preview(http, [gone, red, blue], 8) == jpeg_bytes("red")
    # And nothing that answers, or nothing within the ceiling, is None
    assert fetch_civitai_preview(http, [gone], 16) is None
    assert fetch_civitai_preview(http, [red], 1) is None
    # And a host that cannot be reached is the caller's to handle
    with pytest.raises(Transient):
        fetch_civitai_preview(http, [{"url": "http://127.0.0.1:1/unreachable.jpeg"}], 1)


def _civitai_lora(upstream: Any, model_id: int, name: str, data: bytes, images: list[dict[str, Any]]) -> None:
    upstream.add_civitai_model(model_id, name.title(), "LORA", versions=[{
        "id": model_id * 10, "name": "v1", "baseModel": "SD 1.5", "images": images,
        "files": [{"id": model_id * 100, "name": f"{name}.safetensors", "data": data}]}])


def _download(settings: Settings, upstream: Any, model_id: int) -> tuple[dict[str, Any], list[str]]:
    params = {"url": f"{upstream.url}/models/{model_id}"}
    ctx, services = job_context(settings.replace(civitai_url=upstream.url), params)
    result = run_download(ctx, services)
    return result, [str(e) for e in services.records.events(ctx.task_id)]


def test_a_download_takes_the_next_image_when_the_first_is_gone(settings: Settings, upstream: Any) -> None:
    # Given a Civitai version whose first image is gone and whose second is blue
    _civitai_lora(upstream, 41, "gone", safetensors_bytes(4096),
                  [{"url": f"{upstream.url}/images/gone.jpeg"}, {"data": jpeg_bytes("blue")}])
    # When it is downloaded
    result, _events = _download(settings, upstream, 41)
    # Then the blue image is its preview
    assert result["model"]["preview"] == "gone.webp"
    assert _blue(settings.store / "loras" / "gone.webp")


def test_a_download_whose_image_is_no_image_still_succeeds_with_the_embedded_cover(settings: Settings,
                                                                                   upstream: Any) -> None:
    # Given a Civitai version whose only image is an error page, and a file embedding a green cover
    _civitai_lora(upstream, 42, "broken", with_cover(), [{"data": NOT_AN_IMAGE}])
    # When it is downloaded
    result, events = _download(settings, upstream, 42)
    # Then the download succeeded, the failed preview is logged, and the embedded cover is the preview
    assert result["already_present"] is False and result["model"]["preview"] == "broken.webp"
    assert any("preview not saved" in e and "not a readable image" in e for e in events), events
    assert _near(_colour(settings.store / "loras" / "broken.webp"), GREEN)


def test_the_metadata_lookup_tries_the_next_image(settings: Settings, upstream: Any) -> None:
    # Given a model on disk that Civitai knows by hash: an error page, a gone image, then a blue image
    s = settings.replace(civitai_url=upstream.url)
    StoreLayout(s.store).ensure_default_dirs()
    data = safetensors_bytes(2048, seed=7)
    (s.store / "loras" / "known.safetensors").write_bytes(data)
    _civitai_lora(upstream, 43, "known", data, [{"data": NOT_AN_IMAGE}, {"url": f"{upstream.url}/images/gone.jpeg"},
                                               {"data": jpeg_bytes("blue")}])
    # When a scan fetches the missing metadata
    ctx, services = make_ctx(s, {"mode": "quick", "folder": "loras", "fetch_metadata": True})
    from shared.scan import run_scan
    result = run_scan(ctx, services)
    # Then the blue image became its preview
    assert result["metadata"] == {"looked_up": 1, "found": 1, "previews": 1}
    assert _blue(s.store / "loras" / "known.webp")


def test_the_preview_job_fails_a_model_whose_image_is_no_image_and_goes_on(settings_env: dict[str, str],
                                                                          upstream: Any, redis: Any) -> None:
    # Given two models Civitai knows by hash: one whose image is an error page, one with a blue image
    from shared.config import load_settings
    settings = load_settings({**settings_env, "DEPOT_CIVITAI_URL": upstream.url})
    StoreLayout(settings.store).ensure_default_dirs()
    for i, (name, image) in enumerate((("bad", NOT_AN_IMAGE), ("good", jpeg_bytes("blue")))):
        data = safetensors_bytes(1024, seed=i)
        (settings.store / "loras" / f"{name}.safetensors").write_bytes(data)
        _civitai_lora(upstream, 44 + i, name, data, [{"data": image}])
    # When previews are made from Civitai
    ctx, services = _ctx(settings, "preview", {"folder": "loras", "source": "civitai"})
    result = run_previews(ctx, services)
    # Then the bad one failed with a clear message, and the good one still got its preview
    files = {f["model"]["relpath"]: f for f in result["files"]}
    assert (result["failed"], result["generated"]) == (1, 1), result
    assert "not a readable image" in files["bad.safetensors"]["error"]
    assert files["good.safetensors"]["source"] == "civitai" and _blue(settings.store / "loras" / "good.webp")
