"""Editing a model (name, trigger words, base model, tags, favorite): written back to ``NAME.md`` in the upstream
layout (other keys, sections and sidecars kept), read back by the index, searchable (``tag:``, ``fav:1``), kept
by a full rescan, and refused with a 4xx naming the field when malformed."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from shared.config import Settings
from shared.store.front_matter import split_front_matter
from shared.store.layout import StoreLayout
from tests.download_support import styled_lora
from tests.test_scan import scan

URL = "/api/v1/models/loras/0/styles/Neon.safetensors"
FRONT = ("---\nauthor: alice\nbaseModel: SDXL 1.0\nhashes:\n  AutoV2: '0123456789'\n  SHA256: 'ABCDEF'\n"
         "metadata:\n  model_type: LoRA\nmodelPage: https://civitai.com/models/1\nwebsite: Civitai\n---\n\n"
         "# Trigger Words\n\nneonlight, glow\n\n# About this version\n\nSecond try.\n\n# Neon Lights\n\n"
         "A **bright** style.\n")


@pytest.fixture
def store(settings: Settings) -> Path:
    styled_lora(settings, "Neon", b"w" * 100,
                {".md": FRONT, ".civitai.info": json.dumps({"id": 9, "modelId": 1, "trainedWords": ["civ"]})},
                ("Plain.safetensors", b"p" * 50))
    scan(settings)
    return settings.store


def _names(client: Any, query: str) -> list[str]:
    body = client.get(f"/api/v1/models?{query}")
    assert body.status_code == 200, body.get_json()
    return [m["relpath"] for m in body.get_json()["items"]]


def test_edits_are_written_to_name_md_and_read_back(client: Any, store: Path, settings: Settings) -> None:
    side = store / "loras" / "styles" / "Neon.civitai.info"
    side_before = side.read_bytes()
    # When every field is edited at once
    got = client.patch(URL, json={"name": "Neon Glow", "trigger_words": ["neon", "glow light"],
                                  "base_model": "Pony", "tags": ["style", "Neon-Art", "style"], "favorite": True})
    assert got.status_code == 200, got.get_json()
    model = got.get_json()
    # Then the answer is the model as it is now
    assert (model["name"], model["trigger_words"], model["base_model"]) == ("Neon Glow", ["neon", "glow light"],
                                                                            "Pony")
    assert model["tags"] == ["style", "Neon-Art"] and model["favorite"] is True
    # And NAME.md keeps the upstream layout: every other key, the hashes quoted, the other sections as they were
    text = (store / "loras" / "styles" / "Neon.md").read_text()
    front, body = split_front_matter(text)
    assert front["author"] == "alice" and front["website"] == "Civitai" and front["baseModel"] == "Pony"
    assert front["metadata"] == {"model_type": "LoRA", "tags": ["style", "Neon-Art"], "favorite": True}
    assert "AutoV2: '0123456789'" in text  # a YAML 1.2 reader keeps it a string
    assert YAML(typ="safe").load(io.StringIO(text.split("---")[1]))["hashes"]["AutoV2"] == "0123456789"
    assert body == ("# Trigger Words\n\nneon, glow light\n\n# About this version\n\nSecond try.\n\n"
                    "# Neon Glow\n\nA **bright** style.\n")
    # And no other sidecar was touched
    assert side.read_bytes() == side_before
    # And the detail (another reader) sees the same
    detail = client.get(URL).get_json()
    assert detail["tags"] == ["style", "Neon-Art"] and detail["name"] == "Neon Glow"

    # When the store is rescanned in full, the edits stay (they live in the sidecar, not only in Redis)
    scan(settings, mode="full")
    again = client.get(URL).get_json()
    assert (again["name"], again["tags"], again["favorite"]) == ("Neon Glow", ["style", "Neon-Art"], True)


def test_tags_and_favorites_are_searchable(client: Any, store: Path) -> None:
    assert client.patch(URL, json={"tags": ["anime-style"], "favorite": True}).status_code == 200
    # A tag is searched as a whole word, in the search box and as a filter, case-insensitively
    assert _names(client, "q=tag:anime-style") == ["styles/Neon.safetensors"]
    assert _names(client, "q=tag:anime") == []
    assert _names(client, "tag=ANIME-STYLE") == ["styles/Neon.safetensors"]
    assert _names(client, "tag=anime") == []
    assert _names(client, "q=fav:1") == ["styles/Neon.safetensors"]
    assert _names(client, "favorite=true") == ["styles/Neon.safetensors"]
    assert len(_names(client, "favorite=false")) == 2
    # The facets count tags for the library's chips
    assert client.get("/api/v1/facets?folder=loras").get_json()["tags"] == {"anime-style": 1}
    # Clearing them: the model leaves both searches, the keys leave NAME.md
    assert client.patch(URL, json={"tags": [], "favorite": False}).status_code == 200
    assert _names(client, "q=tag:anime-style") == [] and _names(client, "favorite=true") == []
    front, _ = split_front_matter((store / "loras" / "styles" / "Neon.md").read_text())
    assert front["metadata"] == {"model_type": "LoRA"}


def test_a_model_without_name_md_gets_one(client: Any, store: Path) -> None:
    url = "/api/v1/models/loras/0/Plain.safetensors"
    got = client.patch(url, json={"base_model": "Flux.1 D", "trigger_words": ["plain"]})
    assert got.status_code == 200, got.get_json()
    assert got.get_json()["base_model"] == "Flux.1 D" and got.get_json()["trigger_words"] == ["plain"]
    text = (store / "loras" / "Plain.md").read_text()
    assert text == "---\nbaseModel: Flux.1 D\n---\n\n# Trigger Words\n\nplain\n"
    # Clearing the base model removes the key
    assert client.patch(url, json={"base_model": None}).get_json()["base_model"] is None
    assert not (store / "loras" / "Plain.md").read_text().startswith("---")


def test_broken_front_matter_is_not_overwritten(client: Any, store: Path) -> None:
    md = store / "loras" / "styles" / "Neon.md"
    md.write_text("---\nauthor: [unclosed\n---\n\n# Neon\n")
    got = client.patch(URL, json={"favorite": True})
    assert got.status_code == 409 and got.get_json()["error"]["code"] == "conflict"
    assert "not valid YAML" in got.get_json()["error"]["message"]
    assert md.read_text() == "---\nauthor: [unclosed\n---\n\n# Neon\n"


BAD = [
    ({"name": 5}, "name"),
    ({"name": "a\nb"}, "name"),
    ({"name": "  "}, "name"),
    ({"name": "Trigger Words"}, "name"),
    ({"trigger_words": "neon"}, "trigger_words"),
    ({"trigger_words": ["a,b"]}, "trigger_words"),
    ({"trigger_words": [1]}, "trigger_words"),
    ({"base_model": 1}, "base_model"),
    ({"tags": ["two words"]}, "tags"),
    ({"tags": ["x" * 65]}, "tags[0]"),
    ({"tags": ["t"] * 101}, "tags"),
    ({"favorite": "yes"}, "favorite"),
    ({"favorite": 1}, "favorite"),
    ({"colour": "red"}, "colour"),
]


def test_bad_edits_are_refused_and_change_nothing(client: Any, store: Path) -> None:
    before = (store / "loras" / "styles" / "Neon.md").read_bytes()
    for body, field in BAD:
        got = client.patch(URL, json=body)
        assert got.status_code == 400, (body, got.get_json())
        assert f"'{field}'" in got.get_json()["error"]["message"], (body, got.get_json())
        assert (store / "loras" / "styles" / "Neon.md").read_bytes() == before


def test_bad_listing_filters(client: Any, store: Path) -> None:
    for query, name in (("tag=a%20b", "tag"), ("favorite=1", "favorite"), ("tag=" + "x" * 70, "tag")):
        got = client.get(f"/api/v1/models?{query}")
        assert got.status_code == 400 and f"'{name}'" in got.get_json()["error"]["message"], query


def test_filters_by_verdict_preview_and_duplicates(client: Any, store: Path, settings: Settings) -> None:
    from shared.redis_client import connect
    from shared.store.index import StoreIndex
    loras = store / "loras"
    (loras / "Copy.safetensors").write_bytes((loras / "Plain.safetensors").read_bytes())
    (loras / "Plain.webp").write_bytes(b"RIFF")
    scan(settings, mode="full")
    index = StoreIndex(connect(settings), settings)
    index.set_verify_status("loras", 0, "Plain.safetensors", "ok")
    index.set_verify_status("loras", 0, "Copy.safetensors", "mismatch", "its SHA256 differs")
    assert _names(client, "verify=ok") == ["Plain.safetensors"]
    assert _names(client, "verify=mismatch") == ["Copy.safetensors"]
    assert _names(client, "verify=none") == ["styles/Neon.safetensors"]
    assert sorted(_names(client, "preview=false")) == ["Copy.safetensors", "styles/Neon.safetensors"]
    assert _names(client, "preview=true") == ["Plain.safetensors"]
    assert sorted(_names(client, "duplicates=true")) == ["Copy.safetensors", "Plain.safetensors"]
    facets = client.get("/api/v1/facets?folder=loras").get_json()
    assert facets["verify"] == {"ok": 1, "mismatch": 1} and facets["no_preview"] == 2
    for bad in ("verify=good", "preview=1", "duplicates=yes"):
        assert client.get(f"/api/v1/models?{bad}").status_code == 400, bad
