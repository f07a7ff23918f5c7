"""The GGUF header reader against files written by llama.cpp's own writer (the ``gguf`` package, which
ComfyUI-GGUF reads with) and hand-made ones (the architecture after a tokenizer's arrays, version 1, no
architecture, damaged headers); the folder each architecture belongs in; the publish-time routing decision."""
from __future__ import annotations

import struct
from pathlib import Path

import gguf as gguf_py
import pytest

from shared.downloads.routing import route
from shared.media import gguf
from shared.media.formats import validate_file
from tests.download_support import gguf_bytes, real_gguf


@pytest.mark.parametrize("arch, folder", [("flux", "diffusion_models"), ("sdxl", "diffusion_models"),
                                          ("wan", "diffusion_models"), ("qwen_image", "diffusion_models"),
                                          ("t5encoder", "text_encoders"), ("t5", "text_encoders"),
                                          ("llama", "text_encoders"), ("gemma3", "text_encoders"),
                                          ("mystery", None)])
def test_real_gguf_architecture_and_its_folder(tmp_path: Path, arch: str, folder: str | None) -> None:
    path = real_gguf(tmp_path / "m.gguf", arch, tokens=2000)
    assert gguf.architecture(path) == arch
    assert gguf.loader_folder(gguf.architecture(path)) == folder
    # keys after the token array are reached too, and the structural check accepts the file
    assert gguf.read_keys(path, (f"{arch}.context_length",)) == {f"{arch}.context_length": 512}
    assert validate_file(path) == ("gguf", None)
    assert gguf_py.GGUFReader(str(path)).fields["general.architecture"].contents() == arch


@pytest.mark.parametrize("version", [1, 2, 3])
def test_architecture_after_tokenizer_arrays(tmp_path: Path, version: int) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(gguf_bytes("T5", version=version, before=3))
    assert gguf.architecture(path) == "t5"


@pytest.mark.parametrize("data", [
    gguf_bytes(None),  # no general.architecture
    b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + struct.pack("<Q", 2**40),  # an absurd key length
    gguf_bytes("flux")[:40],  # truncated inside the key
    b"GGUF" + struct.pack("<I", 9) + b"\0" * 64,  # unknown version
    b"PK\x03\x04" + b"\0" * 64,  # not GGUF at all
    b"",
])
def test_unreadable_headers_have_no_architecture(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(data)
    assert gguf.architecture(path) is None


def test_planned_folder_sends_gguf_checkpoints_where_loaders_look() -> None:
    assert gguf.planned_folder("flux-Q4.gguf", "checkpoints") == "diffusion_models"
    assert gguf.planned_folder("flux-Q4.GGUF", "checkpoints") == "diffusion_models"
    assert gguf.planned_folder("t5-Q5.gguf", "text_encoders") == "text_encoders"
    assert gguf.planned_folder("model.safetensors", "checkpoints") == "checkpoints"


def test_misplacement_only_for_gguf_in_checkpoints(tmp_path: Path) -> None:
    t5 = real_gguf(tmp_path / "t5.gguf", "t5encoder")
    flux = real_gguf(tmp_path / "flux.gguf", "flux")
    odd = tmp_path / "odd.gguf"
    odd.write_bytes(gguf_bytes("mystery"))
    assert gguf.misplacement("checkpoints", t5)["suggested_folder"] == "text_encoders"
    assert gguf.misplacement("checkpoints", flux)["suggested_folder"] == "diffusion_models"
    assert "flux" in gguf.misplacement("checkpoints", flux)["reason"]
    assert gguf.misplacement("checkpoints", odd)["suggested_folder"] == "diffusion_models"
    assert gguf.misplacement("diffusion_models", flux) is None
    assert gguf.misplacement("checkpoints", tmp_path / "m.safetensors") is None


def test_route_follows_the_header_unless_the_user_chose(tmp_path: Path) -> None:
    t5 = real_gguf(tmp_path / "t5.gguf", "t5encoder")
    flux = real_gguf(tmp_path / "flux.gguf", "flux")
    odd = tmp_path / "odd.gguf"
    odd.write_bytes(gguf_bytes("mystery"))
    # not chosen: the header decides
    assert route(t5, "t5.gguf", "diffusion_models", chosen=False).folder == "text_encoders"
    assert route(flux, "flux.gguf", "diffusion_models", chosen=False).folder == "diffusion_models"
    kept = route(odd, "odd.gguf", "diffusion_models", chosen=False)
    assert kept.folder == "diffusion_models" and "kept in diffusion_models" in kept.note
    # chosen: kept, with a warning where no GGUF loader reads it
    chosen = route(flux, "flux.gguf", "checkpoints", chosen=True)
    assert chosen.folder == "checkpoints" and chosen.warning and "diffusion_models" in chosen.note
    assert route(odd, "odd.gguf", "checkpoints", chosen=True).warning
    # the partial's own name does not matter; the target name does
    assert route(flux, "flux.safetensors", "checkpoints", chosen=False) is None
    # a GGUF bound for another kind of folder (a LoRA) is not moved
    assert route(flux, "flux.gguf", "loras", chosen=False) is None


def test_scan_flags_ggufs_in_checkpoints_also_those_indexed_before(settings, redis) -> None:  # type: ignore[no-untyped-def]
    import json

    from shared.store.index import StoreIndex
    from shared.store.layout import StoreLayout
    from tests.test_scan import scan
    # Given a Flux GGUF in checkpoints and another one in diffusion_models
    store = Path(settings.store)
    StoreLayout(store).ensure_default_dirs()
    real_gguf(store / "checkpoints" / "flux.gguf", "flux")
    real_gguf(store / "unet" / "flux-ok.gguf", "flux")
    # When the store is scanned, Then only the one in checkpoints is flagged, in its document and its Model
    scan(settings)
    index = StoreIndex(redis, settings)
    assert index.lookup("checkpoints", 0, "flux.gguf")["misplaced"]["suggested_folder"] == "diffusion_models"
    assert "misplaced" not in index.lookup("diffusion_models", 0, "flux-ok.gguf")
    rows, _total = index.listing_json()
    assert {m["relpath"]: m["misplaced"] is not None for m in json.loads(b"[" + rows + b"]")} == \
        {"flux.gguf": True, "flux-ok.gguf": False}
    # Given an index written before models carried the flag
    doc = index.lookup("checkpoints", 0, "flux.gguf")
    del doc["misplaced"]
    index.put_docs([doc])
    # When a quick scan finds the directory unchanged, Then the GGUF is flagged all the same
    assert scan(settings)["changed"] == 0
    assert index.lookup("checkpoints", 0, "flux.gguf")["misplaced"]["suggested_folder"] == "diffusion_models"
