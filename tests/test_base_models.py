"""A model's base model from what the file already says: the safetensors header (kohya ``ss_base_model_version``,
ModelSpec ``modelspec.architecture``) and A1111's ``"sd version"``, each used only when every better source is
silent, through the real scan on real Redis and the models API."""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from shared.config import Settings
from shared.store import base_models
from shared.store.index import StoreIndex
from shared.store.layout import StoreLayout
from tests.test_scan import by_rel, scan


def _lora(path: Path, **metadata: str) -> None:
    save_file({"w": np.ones(8, dtype=np.float32)}, str(path), metadata=metadata or None)


def _raw_header(path: Path, header: dict[str, Any]) -> None:
    """A safetensors file whose header keys are in the given order (the library always writes metadata first)."""
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\0" * 4)


@pytest.mark.parametrize("metadata,expected", [
    ({"ss_base_model_version": "sdxl_base_v1-0"}, "SDXL 1.0"),
    ({"ss_base_model_version": "sd_v1"}, "SD 1.5"),
    ({"ss_base_model_version": "sd_v2"}, "SD 2.1"),
    ({"ss_base_model_version": "sd1.5"}, "SD 1.5"),             # other trainers' spellings
    ({"ss_base_model_version": "sdxl_"}, "SDXL 1.0"),
    ({"ss_base_model_version": "flux1"}, "Flux.1 D"),
    ({"modelspec.architecture": "stable-diffusion-xl-v1-base/lora"}, "SDXL 1.0"),
    ({"modelspec.architecture": "stable-diffusion-v2-768-v"}, "SD 2.1 768"),
    ({"modelspec.architecture": "stable-diffusion-3-m/lora"}, "SD 3"),
    ({"modelspec.architecture": "stable-diffusion-3-5-large/lora"}, "SD 3.5 Large"),
    ({"modelspec.architecture": "stable-diffusion-3.5-medium"}, "SD 3.5 Medium"),
    ({"modelspec.architecture": "flux-1-schnell/lora", "ss_base_model_version": "flux1"}, "Flux.1 S"),
    ({"modelspec.architecture": "something-new/lora", "ss_base_model_version": "sd_v1"}, "SD 1.5"),
    ({"ss_base_model_version": "my_own_model"}, None),           # unknown: never a guess
    ({"modelspec.architecture": "stable-diffusion-3-7"}, None),
    ({"format": "pt"}, None),
])
def test_header_metadata_maps_to_civitai_names(metadata: dict[str, str], expected: str | None) -> None:
    assert base_models.from_metadata(metadata) == expected


@pytest.mark.parametrize("value,expected", [("SD1", "SD 1.5"), ("SD2", "SD 2.1"), ("SDXL", "SDXL 1.0"),
                                            ("Unknown", None), ("Other", None), ("", None), (None, None), (1, None)])
def test_a1111_sd_version(value: Any, expected: str | None) -> None:
    assert base_models.from_a1111(value) == expected


def test_header_is_read_wherever_the_metadata_sits_and_bad_headers_give_nothing(tmp_path: Path) -> None:
    # Metadata first (as the safetensors library writes it)
    _lora(tmp_path / "a.safetensors", ss_base_model_version="sdxl_base_v1-0")
    assert base_models.from_header(tmp_path / "a.safetensors") == "SDXL 1.0"
    # Metadata after the tensors, and metadata longer than the first read (a big tag list before the version)
    tensor = {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}
    _raw_header(tmp_path / "b.safetensors", {"w": tensor, "__metadata__": {"ss_base_model_version": "sd_v1"}})
    assert base_models.from_header(tmp_path / "b.safetensors") == "SD 1.5"
    _raw_header(tmp_path / "c.safetensors", {"__metadata__": {"ss_tag_frequency": "x" * 200_000,
                                                              "modelspec.architecture": "flux-1-dev/lora"},
                                             "w": tensor})
    assert base_models.from_header(tmp_path / "c.safetensors") == "Flux.1 D"
    # A key's name quoted inside another value (JSON in a string escapes its quotes) is not the key
    _raw_header(tmp_path / "i.safetensors", {"__metadata__": {
        "ss_training_comment": json.dumps({"ss_base_model_version": "sd_v1", "modelspec.architecture": "flux-1"})},
        "w": tensor})
    assert base_models.from_header(tmp_path / "i.safetensors") is None
    # No metadata, a declared length past the cap, a truncated header, JSON garbage, a missing file, a FIFO
    _raw_header(tmp_path / "d.safetensors", {"w": tensor})
    (tmp_path / "e.safetensors").write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    (tmp_path / "f.safetensors").write_bytes(struct.pack("<Q", 500) + b'{"__metadata__": {"ss_base')
    (tmp_path / "g.safetensors").write_bytes(struct.pack("<Q", 16) + b'{"__metadata__":')
    os.mkfifo(tmp_path / "j.safetensors")  # a FIFO named like a model: nothing, at once (no hang)
    for name in "defghj":
        assert base_models.from_header(tmp_path / f"{name}.safetensors") is None, name


def _library(store: Path) -> Path:
    StoreLayout(store).ensure_default_dirs()
    loras = store / "loras"
    (loras / "kohya").mkdir()
    # The header alone
    _lora(loras / "kohya" / "xl_style.safetensors", ss_base_model_version="sdxl_base_v1-0", ss_network_dim="8")
    _lora(loras / "spec.sft", **{"modelspec.architecture": "flux-1-dev/lora"})
    # A sidecar that names a base model beats the header
    _lora(loras / "pony_style.safetensors", ss_base_model_version="sdxl_base_v1-0")
    (loras / "pony_style.md").write_text("---\nbaseModel: Pony\n---\n\n# Trigger Words\n\npony\n")
    # The header beats A1111's coarse "sd version"; A1111 is used when nothing else says
    _lora(loras / "both.safetensors", ss_base_model_version="sd_v1")
    (loras / "both.json").write_text(json.dumps({"sd version": "SDXL", "activation text": "both"}))
    (loras / "a1111.pt").write_bytes(b"p" * 64)
    (loras / "a1111.json").write_text(json.dumps({"sd version": "SDXL"}))
    (loras / "a1111_unknown.safetensors").write_bytes(b"u" * 64)  # not even a safetensors header
    (loras / "a1111_unknown.json").write_text(json.dumps({"sd version": "Unknown"}))
    _lora(loras / "plain.safetensors")
    return loras


EXPECTED = {"kohya/xl_style.safetensors": "SDXL 1.0", "spec.sft": "Flux.1 D", "pony_style.safetensors": "Pony",
            "both.safetensors": "SD 1.5", "a1111.pt": "SDXL 1.0", "a1111_unknown.safetensors": None,
            "plain.safetensors": None}


@pytest.mark.parametrize("processes", [1, 2])
def test_scan_reads_the_base_model_the_file_states(settings: Settings, redis: Any, processes: int) -> None:
    # Given LoRAs whose base model only their header or A1111's NAME.json states
    loras = _library(settings.store)
    # When a first quick scan runs (by the scan processes too: new folders are theirs)
    scan(settings, folder="loras", overrides={"scan_processes": processes})
    # Then each gets the best source's base model, and "Unknown" stays unknown
    docs = by_rel(StoreIndex(redis, settings))
    assert {rel: docs[rel]["base_model"] for rel in EXPECTED} == EXPECTED
    # When only a sidecar changes (a preview appears, the A1111 file is edited), the base model stays
    (loras / "kohya" / "xl_style.png").write_bytes(b"\x89PNG")
    (loras / "both.json").write_text(json.dumps({"sd version": "SD2", "activation text": "again"}))
    again = scan(settings, folder="loras", overrides={"scan_processes": processes})
    assert again["hashed"] == 0 and again["changed"] == 0
    docs = by_rel(StoreIndex(redis, settings))
    assert docs["kohya/xl_style.safetensors"]["preview"] == "xl_style.png"
    assert {rel: docs[rel]["base_model"] for rel in EXPECTED} == EXPECTED
    assert docs["both.safetensors"]["trigger_words"] == ["again"]
    # And when the sidecar that named one goes, the header speaks
    (loras / "pony_style.md").unlink()
    scan(settings, folder="loras", overrides={"scan_processes": processes})
    assert StoreIndex(redis, settings).lookup("loras", 0, "pony_style.safetensors")["base_model"] == "SDXL 1.0"


def test_listing_search_and_detail_show_the_header_base_model(settings: Settings, client: Any) -> None:
    # Given a scanned store where a LoRA states its base model only in its header
    _library(settings.store)
    scan(settings, folder="loras")
    # Then the listing shows it and searching for it finds it
    found = client.get("/api/v1/models?folder=loras&q=sdxl").get_json()
    assert sorted(m["relpath"] for m in found["items"]) == ["a1111.pt", "kohya/xl_style.safetensors"]
    assert {m["base_model"] for m in found["items"]} == {"SDXL 1.0"}
    # And the detail agrees, in the model and in the parsed metadata
    detail = client.get("/api/v1/models/loras/0/kohya/xl_style.safetensors").get_json()
    assert detail["base_model"] == "SDXL 1.0" and detail["metadata"]["base_model"] == "SDXL 1.0"
    assert detail["safetensors_metadata"]["ss_base_model_version"] == "sdxl_base_v1-0"
    # And a file the scan has not seen yet is indexed by the detail with its header's base model
    _lora(settings.store / "loras" / "late.safetensors", **{"modelspec.architecture": "stable-diffusion-v1/lora"})
    assert client.get("/api/v1/models/loras/0/late.safetensors").get_json()["base_model"] == "SD 1.5"
