"""Downloads whose source gives no preview (Hugging Face, direct links, a Civitai version without images) save
the cover embedded in the safetensors header (``modelspec.thumbnail``, ``ssmd_cover_images``) as ``NAME.webp``,
against the fake upstream over real loopback HTTP and real Redis; and end to end, through the API and a real
worker, the listing's ``preview_url`` then serves that cover."""
from __future__ import annotations

import base64
import io
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from shared.downloads.job import run_download
from tests.download_support import job_context, jpeg_bytes, safetensors_bytes
from tests.support import wait_for

GREEN = (20, 200, 40)


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url, "HF_ENDPOINT": upstream.url})
    return settings_env


def _png(color: tuple[int, int, int], size: tuple[int, int] = (64, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def with_cover(n: int = 4096, *, color: tuple[int, int, int] = GREEN, key: str = "modelspec.thumbnail",
               **metadata: str) -> bytes:
    """A valid safetensors file whose header embeds a PNG cover (a ``data:`` URL, or a list for ComfyUI's key)."""
    url = "data:image/png;base64," + base64.b64encode(_png(color)).decode()
    meta = {"modelspec.sai_model_spec": "1.0.1", **metadata,
            key: json.dumps([url]) if key == "ssmd_cover_images" else url}
    header = json.dumps({"__metadata__": meta, "w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + bytes(i % 251 for i in range(n))


def _run(settings, url: str, **params):  # type: ignore[no-untyped-def]
    ctx, services = job_context(settings, {"url": url, **params})
    return run_download(ctx, services)


def _colour(path: Path) -> tuple[int, int, int]:
    with Image.open(path) as img:
        assert img.format == "WEBP"
        return img.convert("RGB").getpixel((img.width // 2, img.height // 2))


def _near(got: tuple[int, ...], want: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(got, want, strict=False))


def test_hugging_face_download_saves_the_embedded_thumbnail(settings, upstream):
    # Given a LoRA on Hugging Face whose header embeds a cover and states its base model
    upstream.add_hf_file("acme/ink-lora", "ink.safetensors", with_cover(ss_base_model_version="sdxl_base_v1-0"))
    # When it is downloaded
    result = _run(settings, f"{upstream.url}/acme/ink-lora/blob/main/ink.safetensors", folder="loras")
    # Then the cover is its preview, NAME.webp, and the listing knows both the preview and the base model
    preview = Path(settings.store) / "loras" / "ink.webp"
    assert _near(_colour(preview), GREEN)
    assert result["model"]["preview"] == "ink.webp" and result["model"]["base_model"] == "SDXL 1.0"


@pytest.mark.parametrize("key", ["modelspec.thumbnail", "ssmd_cover_images"])
def test_direct_link_download_saves_the_embedded_cover(settings, upstream, key):
    url = upstream.add_direct("/files/paper.safetensors", with_cover(key=key))
    result = _run(settings, url, folder="loras")
    assert _near(_colour(Path(settings.store) / "loras" / "paper.webp"), GREEN)
    assert result["model"]["preview"] == "paper.webp"


def _civitai(upstream, data: bytes, images: list[dict[str, Any]]) -> None:  # type: ignore[no-untyped-def]
    upstream.add_civitai_model(100, "Paper Cut", "LORA", versions=[{
        "id": 200, "name": "v1", "baseModel": "SD 1.5", "images": images,
        "files": [{"id": 300, "name": "papercut.safetensors", "data": data}]}])


def test_civitai_version_without_images_gets_the_embedded_cover(settings, upstream):
    _civitai(upstream, with_cover(), images=[])
    _run(settings, f"{upstream.url}/models/100")
    assert _near(_colour(Path(settings.store) / "loras" / "papercut.webp"), GREEN)


def test_civitai_images_still_come_first_and_no_cover_means_no_preview(settings, upstream):
    # Given a Civitai version with a (red) image and a file embedding a (green) cover
    _civitai(upstream, with_cover(), images=[{"data": jpeg_bytes("red"), "nsfwLevel": 1}])
    _run(settings, f"{upstream.url}/models/100")
    # Then the source's image is the preview
    red = _colour(Path(settings.store) / "loras" / "papercut.webp")
    assert red[0] > 200 and red[1] < 60
    # And a file with no cover from a source with no image simply has none
    url = upstream.add_direct("/files/bare.safetensors", safetensors_bytes(4096))
    result = _run(settings, url, folder="loras")
    assert result["model"]["preview"] is None
    assert not [p for p in (Path(settings.store) / "loras").iterdir() if p.name.startswith("bare.") and
                p.suffix != ".safetensors" and p.suffix != ".md"]


def test_downloaded_cover_is_served_through_the_listing_preview_url(client, workers, settings, upstream):
    # Given a worker and a Hugging Face LoRA embedding a cover
    workers(queues=["downloads"])
    upstream.add_hf_file("acme/ink-lora", "ink.safetensors", with_cover())
    # When it is downloaded through the API
    task = client.post("/api/v1/downloads", json={"url": f"{upstream.url}/acme/ink-lora/blob/main/ink.safetensors",
                                                  "folder": "loras"}).json
    done = wait_for(lambda: (t := client.get(f"/api/v1/tasks/{task['id']}").json)["state"]
                    in ("succeeded", "failed") and t, timeout=40, what="the download")
    assert done["state"] == "succeeded", done["error"]
    # Then the listing's preview_url serves the cover's thumbnail (not the placeholder square)
    model = client.get("/api/v1/models?folder=loras").json["items"][0]
    resp = client.get(model["preview_url"])
    assert resp.status_code == 200 and resp.mimetype == "image/webp"
    with Image.open(io.BytesIO(resp.data)) as thumb:
        assert thumb.width == 2 * thumb.height
        assert _near(thumb.convert("RGB").getpixel((thumb.width // 2, thumb.height // 2)), GREEN)
