"""A preview chosen by the user, over the API against the fake upstream: an uploaded picture, one from a URL (the
guarded client: an HTML page is refused, a private address too unless allowed), one of Civitai's images of the
model's version (the picker lists those within the NSFW setting), and removal; each answer is the model, and
the thumbnail route serves the new picture."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from shared.store.layout import StoreLayout
from tests.download_support import civitai_at_upstream, jpeg_bytes, tiny_safetensors  # noqa: F401 - the fixture
from tests.test_scan import scan

URL = "/api/v1/models/loras/0/ink.safetensors"
DATA = tiny_safetensors(b"k" * 500)


@pytest.fixture
def store(settings: Any, upstream: Any) -> Path:
    StoreLayout(settings.store).ensure_default_dirs()
    (settings.store / "loras" / "ink.safetensors").write_bytes(DATA)
    (settings.store / "loras" / "bare.safetensors").write_bytes(b"b" * 40)
    upstream.add_civitai_model(5, "Ink", "LORA", versions=[{
        "id": 50, "name": "v1", "baseModel": "SD 1.5",
        "images": [{"data": jpeg_bytes("red"), "nsfwLevel": 8}, {"data": jpeg_bytes("blue"), "nsfwLevel": 1}],
        "files": [{"id": 500, "name": "ink.safetensors", "data": DATA}]}])
    scan(settings, mode="full")
    return settings.store


def _colour(client: Any) -> tuple[int, int, int]:
    got = client.get("/api/v1/previews/loras/0/ink.safetensors?size=64")
    assert got.status_code == 200 and got.mimetype == "image/webp"
    img = Image.open(io.BytesIO(got.data)).convert("RGB")
    return img.getpixel((img.width // 2, img.height // 2))  # type: ignore[return-value]


def test_upload_url_civitai_and_remove(client: Any, store: Path, upstream: Any) -> None:
    loras = store / "loras"
    # An uploaded picture becomes NAME.webp
    got = client.put(f"{URL}/preview", data={"file": (io.BytesIO(jpeg_bytes("green")), "p.jpg")},
                     content_type="multipart/form-data")
    assert got.status_code == 200, got.get_json()
    assert got.get_json()["relpath"] == "ink.safetensors" and (loras / "ink.webp").is_file()
    r, g, b = _colour(client)
    assert g > 100 and r < 80 and b < 80
    # A URL: its picture replaces it
    url = upstream.add_direct("/pics/yellow.jpeg", jpeg_bytes("yellow"), "image/jpeg")
    assert client.put(f"{URL}/preview", json={"url": url}).status_code == 200
    r, g, b = _colour(client)
    assert r > 150 and g > 150 and b < 80
    # The picker lists Civitai's images of this version within the NSFW setting (PG by default): the blue one
    images = client.get(f"{URL}/civitai_images").get_json()
    assert [(i["id"], i["nsfw_level"]) for i in images] == [(1, 1)]
    assert client.put(f"{URL}/preview", json={"civitai_image": 1}).status_code == 200
    r, g, b = _colour(client)
    assert b > 150 and r < 80
    # The one above the setting cannot be chosen
    refused = client.put(f"{URL}/preview", json={"civitai_image": 0})
    assert refused.status_code == 404 and "'civitai_image'" in refused.get_json()["error"]["message"]
    # Removal: the file goes, the placeholder is served, a second removal says there is none
    assert client.delete(f"{URL}/preview").status_code == 200
    assert not any(p.name.startswith("ink.") and p.suffix in (".webp", ".png") for p in loras.iterdir())
    gone = client.delete(f"{URL}/preview")
    assert gone.status_code == 404 and "has no preview" in gone.get_json()["error"]["message"]


def test_bad_pictures_are_refused_and_change_nothing(client: Any, store: Path, upstream: Any, app: Any) -> None:
    loras = store / "loras"
    before = sorted(p.name for p in loras.iterdir())
    page = upstream.add_direct("/pics/page.jpeg", b"<html><body>Sign in</body></html>", "image/jpeg")
    cases = [
        ({"data": {"file": (io.BytesIO(b"<!doctype html><p>hi"), "x.png")},
          "content_type": "multipart/form-data"}, 400, "invalid_image"),
        ({"data": {"file": (io.BytesIO(b"x"), "x.png"), "other": "y"}, "content_type": "multipart/form-data"},
         400, "invalid_request"),
        ({"json": {"url": page}}, 400, "invalid_image"),
        ({"json": {"url": f"{upstream.url}/pics/missing.jpeg"}}, 422, "preview_unavailable"),
        ({"json": {"url": "ftp://example.org/x.png"}}, 400, None),
        ({"json": {"url": 5}}, 400, "invalid_request"),
        ({"json": {"civitai_image": "1"}}, 400, "invalid_request"),
        ({"json": {"url": page, "civitai_image": 1}}, 400, "invalid_request"),
        ({"json": {}}, 400, "invalid_request"),
    ]
    for kw, status, code in cases:
        got = client.put(f"{URL}/preview", **kw)
        assert got.status_code == status, (kw, got.get_json())
        assert code is None or got.get_json()["error"]["code"] == code, (kw, got.get_json())
    # A model Civitai does not know, and one never hashed
    assert client.get("/api/v1/models/loras/0/bare.safetensors/civitai_images").status_code == 404
    assert sorted(p.name for p in loras.iterdir()) == before
    # A private address is refused unless the setting allows it
    ctx = app.extensions["depot"]
    ctx.settings = ctx.settings.replace(allow_private_urls=False)
    got = client.put(f"{URL}/preview", json={"url": f"{upstream.url}/pics/x.jpeg"})
    assert got.status_code == 400 and got.get_json()["error"]["code"] == "private_address_refused"
    assert hashlib.sha256((loras / "ink.safetensors").read_bytes()).hexdigest()
