"""Model URLs for file names holding ``%``, ``#``, ``?``, spaces, ``+&=;`` and Unicode, over real HTTP on
loopback: the listing's ``preview_url`` leads to the model's own thumbnail, and detail, PATCH, repair and DELETE
at the percent-encoded path reach the right file."""
from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from PIL import Image

from shared.config import Settings
from shared.store.index import preview_url
from shared.store.layout import StoreLayout
from tests.test_scan import scan

#: Names a browser or an HTTP client would otherwise read as an escape, a fragment, a query or a separator.
NAMES = ["50% off.safetensors", "issue #12.safetensors", "what?.safetensors", "naïve ü 模型.safetensors",
         "odd%2Fname.safetensors", "100%25.safetensors", "sub dir/a&b+c=d;e.safetensors"]


def make_store(store: Path) -> Path:
    """Each name with its own preview: a 2:1 picture (the placeholder is square), one colour per model."""
    StoreLayout(store).ensure_default_dirs()
    loras = store / "loras"
    for i, rel in enumerate(NAMES):
        path = loras / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"m" * (10 + i))
        Image.new("RGB", (320, 160), (30 * i, 100, 200)).save(path.with_suffix(".png"))
    return loras


def encoded(folder: str, path_index: int, relpath: str) -> str:
    """A model's path as a client builds it: every segment percent-encoded."""
    return "/".join(quote(s, safe="") for s in [folder, str(path_index), *relpath.split("/")])


def test_preview_url_encodes_every_segment() -> None:
    assert preview_url("loras", 0, "sub dir/a#b?.safetensors") == \
        "/api/v1/previews/loras/0/sub%20dir/a%23b%3F.safetensors"
    assert preview_url("loras", 1, "50%/ü.sft") == "/api/v1/previews/loras/1/50%25/%C3%BC.sft"
    assert preview_url("checkpoints", 0, "Base_XL-1.0~a.safetensors") == \
        "/api/v1/previews/checkpoints/0/Base_XL-1.0~a.safetensors"
    # A name's undecodable bytes (kept as lone surrogates) become their own bytes rather than an error
    assert preview_url("loras", 0, "bad\udcff.pt") == "/api/v1/previews/loras/0/bad%FF.pt"


@pytest.fixture
def loras(settings: Settings) -> Path:
    path = make_store(settings.store)
    scan(settings, folder="loras")
    return path


def test_listing_preview_url_serves_each_models_own_thumbnail(served: str, loras: Path) -> None:
    # Given a scanned folder of awkwardly named models, each with a preview
    items = requests.get(f"{served}/api/v1/models?folder=loras&limit=100", timeout=10).json()["items"]
    assert sorted(m["relpath"] for m in items) == sorted(NAMES)
    for m in items:
        # When the client follows the listing's preview_url as given
        resp = requests.get(served + m["preview_url"], timeout=10)
        # Then it gets that model's picture (2:1, its colour), not a 404 or the square placeholder
        assert resp.status_code == 200, (m["relpath"], m["preview_url"], resp.text[:200])
        assert resp.headers["Content-Type"] == "image/webp"
        with Image.open(io.BytesIO(resp.content)) as thumb:
            assert thumb.width == 2 * thumb.height, m["relpath"]
            red = thumb.convert("RGB").getpixel((5, 5))[0]
        assert abs(red - 30 * NAMES.index(m["relpath"])) <= 8, m["relpath"]


def test_detail_patch_repair_and_delete_at_the_encoded_path(served: str, loras: Path) -> None:
    api = f"{served}/api/v1/models"
    for rel in NAMES:
        url = f"{api}/{encoded('loras', 0, rel)}"
        # Detail of the very file
        detail = requests.get(url, timeout=10)
        assert detail.status_code == 200, (rel, detail.text[:200])
        assert detail.json()["relpath"] == rel and detail.json()["size"] == (loras / rel).stat().st_size
        # A description lands in that file's NAME.md
        patched = requests.patch(url, json={"description": f"about {rel}"}, timeout=10)
        assert patched.status_code == 200, (rel, patched.text[:200])
        assert (loras / rel).with_suffix(".md").read_text() == f"about {rel}"
        # Repair finds the file (and says it has no recorded source) rather than answering 404
        repair = requests.post(f"{url}/repair", timeout=10)
        assert repair.status_code == 409 and repair.json()["error"]["code"] == "no_source_recorded", rel
    # Delete removes exactly the named file with its sidecars, and leaves the others
    gone = "issue #12.safetensors"
    assert requests.delete(f"{api}/{encoded('loras', 0, gone)}", timeout=10).status_code == 204
    assert not (loras / gone).exists() and not (loras / "issue #12.png").exists()
    assert all((loras / rel).exists() for rel in NAMES if rel != gone)
    left = requests.get(f"{api}?folder=loras", timeout=10).json()
    assert left["total"] == len(NAMES) - 1
