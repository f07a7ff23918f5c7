"""The models API over the Flask test client on a scanned store: folders, listing/search/sort/paging, detail,
move/rename/description/delete carrying sidecars, duplicates, scan submission, and traversal attempts (4xx)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from shared.config import Settings
from shared.store.layout import StoreLayout
from tests.test_scan import scan


def populate(store: Path) -> None:
    StoreLayout(store).ensure_default_dirs()
    loras = store / "loras"
    (loras / "sdxl").mkdir()
    save_file({"w": np.ones(8, dtype=np.float32)}, str(loras / "sdxl" / "Neon.safetensors"),
              metadata={"ss_network_dim": "8", "modelspec.thumbnail": "data:image/png;base64," + "A" * 20000})
    (loras / "sdxl" / "Neon.md").write_text("---\nbaseModel: SDXL 1.0\n---\n\n# Trigger Words\n\nneonlight, glow\n")
    (loras / "sdxl" / "Neon.webp").write_bytes(b"RIFF")
    (loras / "sdxl" / "Neon.civitai.info").write_text(json.dumps({}))
    (loras / "Anime_Style.safetensors").write_bytes(b"a" * 300)
    (loras / "Anime_Style.json").write_text(json.dumps({"activation text": "animeface"}))
    (loras / "copy_of_anime.safetensors").write_bytes(b"a" * 300)  # a duplicate by content
    (loras / "zeta.pt").write_bytes(b"z" * 10)
    (store / "checkpoints" / "Base_XL.safetensors").write_bytes(b"c" * 100_000)


@pytest.fixture
def store(settings: Settings) -> Path:
    populate(settings.store)
    scan(settings)
    return settings.store


def names(body: dict[str, Any]) -> list[str]:
    return [m["relpath"] for m in body["items"]]


def test_folders_in_comfyui_order(client: Any, store: Path) -> None:
    body = client.get("/api/v1/folders").get_json()
    assert [f["name"] for f in body][:3] == ["checkpoints", "loras", "vae"]
    tenc = next(f for f in body if f["name"] == "text_encoders")
    assert tenc["paths"] == [str(store / "text_encoders"), str(store / "clip")]
    # Each says how many models it holds (the library's folder chips)
    counts = {f["name"]: f["count"] for f in body}
    listed = client.get("/api/v1/models?limit=500").get_json()["items"]
    assert sum(counts.values()) == len(listed) == 5
    assert all(counts[f] == sum(m["folder"] == f for m in listed) for f in counts)


def test_listing_sort_and_paging(client: Any, store: Path) -> None:
    # Given five indexed models
    body = client.get("/api/v1/models").get_json()
    assert body["total"] == 5
    # Then name order is case-insensitive on the display name
    assert names(body) == ["Anime_Style.safetensors", "Base_XL.safetensors",
                           "copy_of_anime.safetensors", "sdxl/Neon.safetensors", "zeta.pt"]
    # Sorting by size descending and paging through it
    first = client.get("/api/v1/models?sort=size&order=desc&limit=2").get_json()
    second = client.get("/api/v1/models?sort=size&order=desc&limit=2&offset=2").get_json()
    assert first["total"] == 5 and names(first)[0] == "Base_XL.safetensors"
    sizes = [m["size"] for m in first["items"] + second["items"]]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) == 4
    # Folder filter
    assert client.get("/api/v1/models?folder=checkpoints").get_json()["total"] == 1
    model = client.get("/api/v1/models?folder=checkpoints").get_json()["items"][0]
    assert model["preview_url"] == "/api/v1/previews/checkpoints/0/Base_XL.safetensors"
    assert set(model) >= {"folder", "path_index", "relpath", "name", "size", "created_at", "modified_at",
                          "preview_url", "sha256", "base_model", "trigger_words", "source", "source_url",
                          "verify_status"}


@pytest.mark.parametrize("q,expected", [
    ("NEON", ["sdxl/Neon.safetensors"]),                       # case-insensitive name
    ("glow", ["sdxl/Neon.safetensors"]),                       # trigger words
    ("sdxl 1.0", ["sdxl/Neon.safetensors"]),                   # AND tokens, base model
    ("anime", ["Anime_Style.safetensors", "copy_of_anime.safetensors"]),
    ("anime copy", ["copy_of_anime.safetensors"]),
    ("a*style", ["Anime_Style.safetensors"]),                  # wildcard
    ("animeface", ["Anime_Style.safetensors"]),                # A1111 activation text
    ("nothing-like-this", []),
])
def test_search(client: Any, store: Path, q: str, expected: list[str]) -> None:
    body = client.get("/api/v1/models", query_string={"q": q, "folder": "loras"}).get_json()
    assert sorted(names(body)) == sorted(expected) and body["total"] == len(expected)


def test_bad_listing_parameters_are_400(client: Any, store: Path) -> None:
    for qs in ("sort=colour", "order=up", "limit=-1", "offset=x"):
        r = client.get(f"/api/v1/models?{qs}")
        assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_request"
    r = client.get("/api/v1/models?folder=configs")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_request"
    assert "'folder'" in r.get_json()["error"]["message"]


def test_detail_has_metadata_without_big_thumbnails(client: Any, store: Path) -> None:
    body = client.get("/api/v1/models/loras/0/sdxl/Neon.safetensors").get_json()
    assert body["base_model"] == "SDXL 1.0" and body["trigger_words"] == ["neonlight", "glow"]
    assert body["safetensors_metadata"]["ss_network_dim"] == "8"
    assert len(body["safetensors_metadata"]["modelspec.thumbnail"]) < 100
    assert body["description"].startswith("---") and body["metadata"]["base_model"] == "SDXL 1.0"
    # Windows separators from a client are normalised
    assert client.get("/api/v1/models/loras/0/sdxl%5CNeon.safetensors").status_code == 200


def test_move_rename_and_description_carry_sidecars(client: Any, store: Path) -> None:
    # When a model moves to another subfolder under a new name
    r = client.patch("/api/v1/models/loras/0/sdxl/Neon.safetensors",
                     json={"move_to": {"folder": "loras", "path_index": 0, "relpath": "styles/NeonV2.safetensors"}})
    assert r.status_code == 200, r.get_json()
    # Then every sidecar and preview follows, and the index knows the new place only
    new_dir = store / "loras" / "styles"
    assert sorted(p.name for p in new_dir.iterdir()) == ["NeonV2.civitai.info", "NeonV2.md",
                                                          "NeonV2.safetensors", "NeonV2.webp"]
    assert not list((store / "loras" / "sdxl").iterdir())
    assert r.get_json()["relpath"] == "styles/NeonV2.safetensors" and r.get_json()["preview"] == "NeonV2.webp"
    assert client.get("/api/v1/models/loras/0/sdxl/Neon.safetensors").status_code == 404
    # When the description is replaced
    r = client.patch("/api/v1/models/loras/0/styles/NeonV2.safetensors",
                     json={"description": "---\nbaseModel: Flux.1 D\n---\n\n# Trigger Words\n\nnew\n"})
    assert r.get_json()["base_model"] == "Flux.1 D" and r.get_json()["trigger_words"] == ["new"]
    # A new display name (the description's model heading) replaces the old one in the name order
    r = client.patch("/api/v1/models/loras/0/styles/NeonV2.safetensors",
                     json={"description": "# Trigger Words\n\nnew\n\n# About this version\n\nv2\n\n# Aardvark\n"})
    assert r.get_json()["name"] == "Aardvark"
    listing = client.get("/api/v1/models?limit=10").get_json()
    assert listing["total"] == 5 and [m["name"] for m in listing["items"]][0] == "Aardvark"
    assert len(listing["items"]) == 5
    # A move onto an existing model is refused and changes nothing
    r = client.patch("/api/v1/models/loras/0/zeta.pt", json={"move_to": {"relpath": "zeta.txt"}})
    assert r.status_code == 400  # not a model extension of the target folder
    r = client.patch("/api/v1/models/loras/0/copy_of_anime.safetensors",
                     json={"move_to": {"relpath": "Anime_Style.safetensors"}})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "conflict"
    assert (store / "loras" / "copy_of_anime.safetensors").exists()


def test_delete_removes_model_sidecars_and_previews(client: Any, store: Path) -> None:
    assert client.delete("/api/v1/models/loras/0/sdxl/Neon.safetensors").status_code == 204
    assert not list((store / "loras" / "sdxl").iterdir())
    assert client.get("/api/v1/models?q=neon").get_json()["total"] == 0
    assert client.delete("/api/v1/models/loras/0/sdxl/Neon.safetensors").status_code == 404


@pytest.mark.parametrize("url", [
    "/api/v1/models/loras/0/..%2F..%2Fetc%2Fpasswd",
    "/api/v1/models/loras/0/sdxl/..%2F..%2F..%2Fx.safetensors",
    "/api/v1/models/loras/0/..%5C..%5Cx.safetensors",
    "/api/v1/models/loras/0/a%00b.safetensors",
    "/api/v1/models/loras/7/x.safetensors",
    "/api/v1/models/loras/x/x.safetensors",
    "/api/v1/models/configs/0/x.yaml",
    "/api/v1/models/custom_nodes/0/evil.py",
])
def test_traversal_attempts_get_4xx(client: Any, store: Path, url: str) -> None:
    for method in (client.get, client.delete):
        r = method(url)
        assert 400 <= r.status_code < 500 and "error" in r.get_json()
    assert (store / "loras" / "zeta.pt").exists()


def test_move_target_outside_the_store_is_refused(client: Any, store: Path) -> None:
    for target in ({"relpath": "../../escape.pt"}, {"relpath": "/tmp/escape.pt"}, {"relpath": "C:\\x.pt"},
                   {"folder": "loras", "path_index": 3, "relpath": "x.pt"}, {"relpath": 5}):
        r = client.patch("/api/v1/models/loras/0/zeta.pt", json={"move_to": target})
        assert r.status_code == 400, target
    assert (store / "loras" / "zeta.pt").exists()


def test_duplicates(client: Any, store: Path) -> None:
    body = client.get("/api/v1/duplicates").get_json()
    assert len(body) == 1
    assert sorted(m["relpath"] for m in body[0]["models"]) == ["Anime_Style.safetensors", "copy_of_anime.safetensors"]
    assert client.get("/api/v1/duplicates?folder=checkpoints").get_json() == []


def test_scan_submission_joins_the_live_task(client: Any, settings: Settings) -> None:
    r1 = client.post("/api/v1/scans", json={"folder": "loras", "mode": "full"})
    r2 = client.post("/api/v1/scans", json={"folder": "loras"})
    assert r1.status_code == 202 and r1.get_json()["kind"] == "scan"
    assert r2.get_json()["id"] == r1.get_json()["id"]
    assert r1.get_json()["params"] == {"mode": "full", "folder": "loras", "fetch_metadata": False}
    bad = client.post("/api/v1/scans", json={"mode": "deep"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_request"
    assert client.post("/api/v1/scans", json={"folder": "nope"}).status_code == 400


def test_scan_of_one_root_is_validated(client: Any, settings: Settings) -> None:
    # A folder's single root can be scanned on its own (a task apart from the whole folder's)
    one = client.post("/api/v1/scans", json={"folder": "loras", "path_index": 0})
    assert one.status_code == 202
    assert one.get_json()["params"] == {"mode": "quick", "folder": "loras", "fetch_metadata": False, "path_index": 0}
    whole = client.post("/api/v1/scans", json={"folder": "loras"})
    assert whole.get_json()["id"] != one.get_json()["id"]
    # A root needs its folder, and must be one the folder has
    for body, code in (({"path_index": 0}, "invalid_request"), ({"folder": "loras", "path_index": 5}, "invalid_path"),
                       ({"folder": "loras", "path_index": "0"}, "invalid_request"),
                       ({"folder": "loras", "path_index": True}, "invalid_request"),
                       ({"folder": "loras", "path_index": -1}, "invalid_path")):
        r = client.post("/api/v1/scans", json=body)
        assert r.status_code == 400 and r.get_json()["error"]["code"] == code, (body, r.get_json())
