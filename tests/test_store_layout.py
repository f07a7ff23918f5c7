"""Folder layout as ComfyUI resolves it, extra_model_paths.yaml semantics (the shipped a111 and comfyui examples),
path_index order, and path validation (traversal, absolute, NUL, symlink escapes, backslashes)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.errors import InvalidPath, NotFound
from shared.store.extra_paths import parse_extra_model_paths
from shared.store.layout import StoreLayout

A111_AND_COMFYUI = """\
a111:
    base_path: path/to/stable-diffusion-webui/

    checkpoints: models/Stable-diffusion
    configs: models/Stable-diffusion
    vae: models/VAE
    loras: |
         models/Lora
         models/LyCORIS
    upscale_models: |
                  models/ESRGAN
                  models/RealESRGAN
                  models/SwinIR
    embeddings: embeddings
    hypernetworks: models/hypernetworks
    controlnet: models/ControlNet

comfyui:
     base_path: path/to/comfyui/
     is_default: true
     checkpoints: models/checkpoints/
     clip: models/clip/
     clip_vision: models/clip_vision/
     configs: models/configs/
     controlnet: models/controlnet/
     diffusion_models: |
                  models/diffusion_models
                  models/unet
     embeddings: models/embeddings/
     loras: models/loras/
     upscale_models: models/upscale_models/
     vae: models/vae/

other_ui:

"""


def test_shipped_examples_resolve_like_comfyui(tmp_path: Path) -> None:
    # Given the shipped a111 + comfyui examples in a YAML file
    yml = tmp_path / "cfg" / "extra_model_paths.yaml"
    yml.parent.mkdir()
    yml.write_text(A111_AND_COMFYUI)
    a111 = str(tmp_path / "cfg" / "path/to/stable-diffusion-webui")
    comfy = str(tmp_path / "cfg" / "path/to/comfyui")
    # When parsed
    got = parse_extra_model_paths(yml)
    # Then relative base paths resolve against the YAML's directory, '|' values split into lines
    # (ComfyUI joins the indented lines as written: the block scalar strips the indentation)
    assert got["loras"] == [f"{comfy}/models/loras", f"{a111}/models/Lora", f"{a111}/models/LyCORIS"]
    assert got["upscale_models"][1:] == [f"{a111}/models/ESRGAN", f"{a111}/models/RealESRGAN", f"{a111}/models/SwinIR"]
    # legacy keys map (clip -> text_encoders); is_default moves the comfyui paths first
    assert got["text_encoders"] == [f"{comfy}/models/clip"]
    assert got["diffusion_models"] == [f"{comfy}/models/unet", f"{comfy}/models/diffusion_models"]
    assert got["checkpoints"] == [f"{comfy}/models/checkpoints", f"{a111}/models/Stable-diffusion"]
    assert "other_ui" not in got


def test_layout_order_and_path_index_with_extra_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a store and a YAML using ~ and $VAR with a non-default section
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SDROOT", str(tmp_path / "sd"))
    yml = tmp_path / "extra.yaml"
    yml.write_text("one:\n  base_path: $SDROOT\n  loras: Lora\n  mystuff: stuff\n"
                   "two:\n  base_path: ~/ui\n  is_default: true\n  loras: |\n    a\n\n    b\n  unet: u\n")
    layout = StoreLayout(tmp_path / "models", (yml,))
    layout.ensure_default_dirs()
    folders = {f["name"]: f["paths"] for f in layout.folders()}
    store = str(tmp_path / "models")
    # Then defaults come first in ComfyUI order, is_default paths are inserted first in list order
    assert [f["name"] for f in layout.folders()][:4] == ["checkpoints", "loras", "vae", "text_encoders"]
    home = str(tmp_path / "home" / "ui")
    assert folders["loras"] == [f"{home}/b", f"{home}/a", f"{store}/loras", str(tmp_path / "sd" / "Lora")]
    assert folders["diffusion_models"] == [f"{home}/u", f"{store}/unet", f"{store}/diffusion_models"]
    # Unknown keys create a new folder; configs and custom_nodes never appear
    assert folders["mystuff"] == [str(tmp_path / "sd" / "stuff")]
    assert "configs" not in folders and "custom_nodes" not in folders
    # And the default folder set exists on disk
    assert (tmp_path / "models" / "checkpoints").is_dir() and (tmp_path / "models" / "t2i_adapter").is_dir()
    # path_index addresses that order
    assert layout.resolve("loras", 2, "x.safetensors") == Path(store) / "loras" / "x.safetensors"
    assert layout.locate(Path(store) / "loras" / "sub" / "x.safetensors") == \
        {"folder": "loras", "path_index": 2, "relpath": "sub/x.safetensors"}
    assert layout.locate(tmp_path / "elsewhere.bin") is None


@pytest.mark.parametrize("bad", ["../x.safetensors", "a/../../x", "/etc/passwd", "C:\\x.ckpt", "a\x00b", "",
                                 "..\\..\\x", "."])
def test_resolve_refuses_escapes(tmp_path: Path, bad: str) -> None:
    layout = StoreLayout(tmp_path / "models")
    with pytest.raises(InvalidPath):
        layout.resolve("loras", 0, bad)


def test_resolve_normalises_backslashes_and_refuses_symlink_escape(tmp_path: Path) -> None:
    layout = StoreLayout(tmp_path / "models")
    layout.ensure_default_dirs()
    assert layout.resolve("loras", 0, "sub\\x.safetensors") == tmp_path / "models" / "loras" / "sub" / "x.safetensors"
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, tmp_path / "models" / "loras" / "link")
    with pytest.raises(InvalidPath):
        layout.resolve("loras", 0, "link/x.safetensors")
    with pytest.raises(InvalidPath):
        layout.resolve("loras", 5, "x.safetensors")
    with pytest.raises(NotFound):
        layout.resolve("configs", 0, "x.yaml")
