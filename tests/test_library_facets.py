"""The library's chips and tree over the API: models per base model, type and subfolder (``GET /facets``), the
listing filtered by each (``base_model``, ``type``, ``dir``), and the type and rating a Civitai sidecar records."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from tests.test_models_api import names, populate
from tests.test_scan import scan


@pytest.fixture
def store(settings: Settings) -> Path:
    populate(settings.store)
    ink = settings.store / "loras" / "styles" / "anime"
    ink.mkdir(parents=True)
    (ink / "Ink.safetensors").write_bytes(b"i" * 50)
    (ink / "Ink.civitai.info").write_text(json.dumps({
        "id": 7, "modelId": 3, "baseModel": "Pony", "nsfwLevel": 12, "trainedWords": ["ink"],
        "model": {"name": "Ink Lines", "type": "LoCon", "nsfw": True}, "files": []}))
    (settings.store / "loras" / "styles" / "Plain.safetensors").write_bytes(b"p" * 40)
    scan(settings)
    return settings.store


def test_facets_count_base_models_types_and_subfolders(client: Any, store: Path) -> None:
    body = client.get("/api/v1/facets?folder=loras").get_json()
    assert body["base_models"] == {"SDXL 1.0": 1, "Pony": 1, "": 4}
    # Civitai's "LoCon" is shown as LyCORIS; a file nothing describes is of its folder's kind
    assert body["types"] == {"LoRA": 5, "LyCORIS": 1}
    assert body["dirs"] == {"sdxl": 1, "styles": 2, "styles/anime": 1}
    every = client.get("/api/v1/facets").get_json()
    assert every["types"] == {"LoRA": 5, "LyCORIS": 1, "Checkpoint": 1} and every["dirs"] == {}


def test_listing_filters_by_base_model_type_and_subfolder(client: Any, store: Path) -> None:
    def listed(query: str) -> list[str]:
        return names(client.get(f"/api/v1/models?{query}").get_json())

    assert listed("base_model=pony") == ["styles/anime/Ink.safetensors"]  # case does not matter
    assert listed("base_model=SDXL%201.0") == ["sdxl/Neon.safetensors"]
    assert len(listed("folder=loras&base_model=")) == 4  # "" is "none recorded"
    assert listed("type=LyCORIS") == ["styles/anime/Ink.safetensors"]
    assert listed("type=Checkpoint") == ["Base_XL.safetensors"]
    assert listed("folder=loras&dir=styles") == ["styles/anime/Ink.safetensors", "styles/Plain.safetensors"]
    assert listed("folder=loras&dir=styles/anime/") == ["styles/anime/Ink.safetensors"]
    assert listed("folder=loras&dir=style") == []  # a subfolder, not a prefix of a name
    # Filters combine with search and with each other
    assert listed("folder=loras&dir=styles&q=ink") == ["styles/anime/Ink.safetensors"]
    assert listed("folder=loras&dir=styles&type=LoRA") == ["styles/Plain.safetensors"]
    body = client.get("/api/v1/models?type=LoRA&base_model=&limit=2").get_json()
    assert body["total"] == 4 and len(body["items"]) == 2


def test_a_civitai_sidecar_names_the_type_and_the_rating(client: Any, store: Path) -> None:
    ink = client.get("/api/v1/models?q=ink").get_json()["items"][0]
    assert (ink["name"], ink["model_type"], ink["base_model"]) == ("Ink Lines", "LyCORIS", "Pony")
    assert ink["nsfw_level"] == 8  # the highest step of Civitai's level mask (4 R | 8 X)
    plain = client.get("/api/v1/models?q=plain").get_json()["items"][0]
    assert (plain["model_type"], plain["nsfw_level"]) == ("LoRA", None)


@pytest.mark.parametrize("query", ["dir=../x", "dir=a//b", "dir=./a", "base_model=" + "b" * 101, "type=a%09b",
                                   "type=" + "t" * 101, "dir=a%0Ab"])
def test_bad_filters_are_400_naming_the_parameter(client: Any, store: Path, query: str) -> None:
    resp = client.get(f"/api/v1/models?{query}")
    assert resp.status_code == 400
    assert repr(query.split("=")[0]) in resp.get_json()["error"]["message"]
