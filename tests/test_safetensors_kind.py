"""What a safetensors file is, from its header alone: sparse files (a real header, the weights a hole of the
right size) with the tensor names and shapes each family's files carry, each classified by kind and base family,
unknown where the tensors do not decide; then a scan of such files without sidecars lists their type and base
model, and the type chips filter on them."""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.media.safetensors_kind import detect_file
from shared.store.layout import StoreLayout
from tests.test_scan import scan

F16 = 2


def sparse_safetensors(path: Path, tensors: dict[str, list[int]], metadata: dict[str, str] | None = None) -> None:
    """A safetensors file whose header names ``tensors`` (F16, these shapes) and whose data is a hole."""
    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, shape in tensors.items():
        size = F16
        for d in shape:
            size *= d
        header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(8 + len(raw) + offset)


def _attn(prefix: str, block: str, out: int, ctx: int) -> dict[str, list[int]]:
    at = f"{prefix}{block}.transformer_blocks.0."
    return {f"{at}attn1.to_k.weight": [out, out], f"{at}attn2.to_k.weight": [out, ctx],
            f"{at}attn2.to_v.weight": [out, ctx]}


UNET = "model.diffusion_model."
SD15 = {**_attn(UNET, "input_blocks.1.1", 320, 768), f"{UNET}input_blocks.0.0.weight": [320, 4, 3, 3],
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": [49408, 768],
        "first_stage_model.decoder.conv_in.weight": [512, 4, 3, 3]}
SD21 = {**_attn(UNET, "input_blocks.1.1", 320, 1024), f"{UNET}input_blocks.0.0.weight": [320, 4, 3, 3],
        "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight": [3072, 1024],
        "first_stage_model.decoder.conv_in.weight": [512, 4, 3, 3]}
SDXL = {**_attn(UNET, "input_blocks.4.1", 640, 2048), f"{UNET}label_emb.0.0.weight": [1280, 2816],
        "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight": [3840, 1280],
        "first_stage_model.decoder.conv_in.weight": [512, 4, 3, 3]}
FLUX_DEV = {"double_blocks.0.img_attn.qkv.weight": [9216, 3072], "single_blocks.0.linear1.weight": [21504, 3072],
            "guidance_in.in_layer.weight": [3072, 256], "img_in.weight": [3072, 64]}
FLUX_SCHNELL = {k: v for k, v in FLUX_DEV.items() if not k.startswith("guidance_in")}
SD3 = {f"{UNET}joint_blocks.0.context_block.attn.qkv.weight": [4608, 1536],
       f"{UNET}x_embedder.proj.weight": [1536, 16, 2, 2], "first_stage_model.decoder.conv_in.weight": [512, 16, 3, 3],
       "text_encoders.clip_l.transformer.text_model.embeddings.token_embedding.weight": [49408, 768]}
KOHYA = "lora_unet_"
LORA_SD15 = {f"{KOHYA}down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": [16, 768],
             f"{KOHYA}down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": [320, 16],
             f"{KOHYA}down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha": [],
             "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": [16, 768]}
LORA_SDXL = {f"{KOHYA}input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": [32, 2048],
             f"{KOHYA}input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_up.weight": [640, 32],
             "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": [32, 1280]}
LORA_FLUX = {"transformer.single_transformer_blocks.0.attn.to_k.lora_A.weight": [16, 3072],
             "transformer.single_transformer_blocks.0.attn.to_k.lora_B.weight": [3072, 16]}
LOHA_SD15 = {f"{KOHYA}down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.hada_w1_a": [320, 8],
             f"{KOHYA}down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.hada_w1_b": [8, 768],
             f"{KOHYA}down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.hada_w2_a": [320, 8],
             f"{KOHYA}down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.hada_w2_b": [8, 768]}
VAE = {"encoder.conv_in.weight": [128, 3, 3, 3], "decoder.conv_in.weight": [512, 4, 3, 3],
       "quant_conv.weight": [8, 8, 1, 1]}
CLIP_L = {"text_model.encoder.layers.0.self_attn.k_proj.weight": [768, 768],
          "text_model.embeddings.token_embedding.weight": [49408, 768]}
T5 = {"encoder.block.0.layer.0.SelfAttention.q.weight": [4096, 4096], "shared.weight": [32128, 4096]}
CONTROLNET_SD15 = {"control_model.input_hint_block.0.weight": [16, 3, 3, 3],
                   **_attn("control_model.", "input_blocks.1.1", 320, 768)}
CONTROLNET_SDXL = {"controlnet_cond_embedding.conv_in.weight": [16, 3, 3, 3],
                   **_attn("", "down_blocks.1.attentions.0", 640, 2048)}
EMB_SD15 = {"emb_params": [4, 768]}
EMB_SDXL = {"clip_l": [4, 768], "clip_g": [4, 1280]}
UNKNOWN = {"w": [8], "b": [8]}


@pytest.mark.parametrize("tensors,kind,family", [
    (SD15, "Checkpoint", "SD 1.5"),
    (SD21, "Checkpoint", "SD 2.1"),
    (SDXL, "Checkpoint", "SDXL 1.0"),
    ({k: v for k, v in SDXL.items() if k.startswith(UNET)}, "Diffusion model", "SDXL 1.0"),
    (FLUX_DEV, "Diffusion model", "Flux.1 D"),
    (FLUX_SCHNELL, "Diffusion model", "Flux.1 S"),
    (SD3, "Checkpoint", "SD 3"),
    (LORA_SD15, "LoRA", "SD 1.5"),
    (LORA_SDXL, "LoRA", "SDXL 1.0"),
    (LORA_FLUX, "LoRA", "Flux.1"),
    (LOHA_SD15, "LyCORIS", "SD 1.5"),
    (VAE, "VAE", None),
    (CLIP_L, "Text encoder", None),
    (T5, "Text encoder", None),
    (CONTROLNET_SD15, "ControlNet", "SD 1.5"),
    (CONTROLNET_SDXL, "ControlNet", "SDXL 1.0"),
    (EMB_SD15, "Embedding", "SD 1.5"),
    (EMB_SDXL, "Embedding", "SDXL 1.0"),
    (UNKNOWN, None, None),
], ids=["sd15", "sd21", "sdxl", "sdxl-unet", "flux-dev", "flux-schnell", "sd3", "lora-sd15", "lora-sdxl",
        "lora-flux", "loha-sd15", "vae", "clip-l", "t5", "controlnet-sd15", "controlnet-sdxl", "emb-sd15",
        "emb-sdxl", "unknown"])
def test_kind_and_family_from_the_header(tmp_path: Path, tensors: dict[str, list[int]], kind: str | None,
                                         family: str | None) -> None:
    path = tmp_path / "m.safetensors"
    sparse_safetensors(path, tensors)
    assert tuple(detect_file(path)) == (kind, family)


def test_not_a_safetensors_file_is_unknown(tmp_path: Path) -> None:
    for data in (b"", b"<html>", struct.pack("<Q", 10**12) + b"{}", struct.pack("<Q", 4) + b"[1]"):
        (tmp_path / "x.safetensors").write_bytes(data)
        assert tuple(detect_file(tmp_path / "x.safetensors")) == (None, None)


def test_a_scan_lists_what_the_headers_say(settings: Settings, client: Any) -> None:
    # Given files without any sidecar: a big sparse SDXL checkpoint (2 GB of hole), a LyCORIS and a LoRA in
    # loras, and a checkpoint with a sidecar that says otherwise (the sidecar wins)
    StoreLayout(settings.store).ensure_default_dirs()
    store = settings.store
    big = {**SDXL, f"{UNET}out.2.weight": [1024, 1024, 1024]}
    sparse_safetensors(store / "checkpoints" / "xl.safetensors", big)
    sparse_safetensors(store / "loras" / "loha.safetensors", LOHA_SD15)
    sparse_safetensors(store / "loras" / "flux_style.safetensors", LORA_FLUX)
    sparse_safetensors(store / "checkpoints" / "said.safetensors", SD15)
    (store / "checkpoints" / "said.md").write_text("---\nbaseModel: Pony\n---\n")
    scan(settings)
    models = {m["relpath"]: m for m in client.get("/api/v1/models?limit=50").get_json()["items"]}
    assert (models["xl.safetensors"]["model_type"], models["xl.safetensors"]["base_model"]) == ("Checkpoint",
                                                                                                 "SDXL 1.0")
    assert (models["loha.safetensors"]["model_type"], models["loha.safetensors"]["base_model"]) == ("LyCORIS",
                                                                                                     "SD 1.5")
    assert models["flux_style.safetensors"]["base_model"] == "Flux.1"
    assert models["said.safetensors"]["base_model"] == "Pony"
    # The type chips count them, and filter on them
    assert client.get("/api/v1/facets?folder=loras").get_json()["types"] == {"LyCORIS": 1, "LoRA": 1}
    got = client.get("/api/v1/models?folder=loras&type=LyCORIS").get_json()
    assert [m["relpath"] for m in got["items"]] == ["loha.safetensors"]
