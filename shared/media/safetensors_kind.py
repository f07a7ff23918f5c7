"""What a safetensors file is, from its header alone (tensor names and shapes; no weight is read): a checkpoint,
a diffusion model (UNet/transformer only), a LoRA or LyCORIS, a VAE, a text encoder, a ControlNet or an embedding,
and its base family in Civitai's words (``SD 1.5``, ``SD 2.1``, ``SDXL 1.0``, ``SD 3``, ``Flux.1 D``...).

Every answer comes from a tensor that decides it; when none does the answer is None (unknown), never a guess: a
4-channel VAE is the same network for SD 1.x, 2.x and SDXL, a CLIP-L text encoder serves many families, so their
family stays unknown. The Stable Diffusion families are told apart by the width of the cross-attention's context
(``attn2.to_k``'s input: 768 SD 1.x, 1024 SD 2.x, 2048 SDXL, 1280 the SDXL refiner), in full models, ControlNets
and adapters alike; the transformer families by their own block names."""
from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

MAX_HEADER_BYTES = 16 * 1024 * 1024
#: The first read of a header: enough for nearly every file's whole header
_FIRST_READ = 64 * 1024

_CONTEXT_WIDTH = {768: "SD 1.5", 1024: "SD 2.1", 2048: "SDXL 1.0", 1280: "SDXL 1.0"}
#: The input side of a cross-attention key projection, in full weights and in each adapter's factorisation.
_TO_K_INPUT = ("to_k.weight", "to_k.lora_down.weight", "to_k.lora_A.weight", "to_k.hada_w1_b", "to_k.hada_w2_b",
               "to_k.down.weight")
_LYCORIS = (".hada_w1_a", ".hada_w2_a", ".lokr_w1", ".lokr_w2", ".lokr_w1_a", ".oft_blocks", ".oft_diag")
_LORA = (".lora_down.weight", ".lora_up.weight", ".lora_A.weight", ".lora_B.weight", ".lora.down.weight")
_BUNDLED = ("first_stage_model.", "cond_stage_model.", "conditioner.", "vae.", "text_encoders.")


class Detected(NamedTuple):
    kind: str | None
    family: str | None


UNKNOWN = Detected(None, None)


def header_bytes(path: str | os.PathLike[str]) -> bytes | None:
    """The JSON header of a safetensors file, whole (up to MAX_HEADER_BYTES), in one open; None for a file that is
    not one. ``OSError`` when it cannot be read."""
    # O_NONBLOCK: a FIFO named like a model must not hang a scan (it changes nothing for regular files)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        head = os.read(fd, 8 + _FIRST_READ)
        if len(head) < 10:
            return None
        (n,) = struct.unpack_from("<Q", head)
        if not 2 <= n <= MAX_HEADER_BYTES:
            return None
        first = head[8:8 + n]
        chunks, want = [first], n - len(first)
        while want > 0 and (chunk := os.read(fd, min(want, 1 << 20))):
            chunks.append(chunk)
            want -= len(chunk)
    finally:
        os.close(fd)
    raw = b"".join(chunks)
    return raw if raw.lstrip(b" \t\r\n").startswith(b"{") else None


def _shape(header: Mapping[str, Any], key: str) -> list[int]:
    entry = header.get(key)
    shape = entry.get("shape") if isinstance(entry, dict) else None
    return [d for d in shape if isinstance(d, int)] if isinstance(shape, list) else []


def _context_family(header: Mapping[str, Any], keys: list[str]) -> str | None:
    for key in keys:
        if "attn2" in key and key.replace("_to_k.", ".to_k.").endswith(_TO_K_INPUT):
            shape = _shape(header, key)
            if len(shape) >= 2:
                return _CONTEXT_WIDTH.get(shape[1])
    return None


def _transformer_family(header: Mapping[str, Any], keys: list[str], adapter: bool) -> str | None:
    """Flux and SD 3 by their block names (a prefix of ``model.diffusion_model.``, ``transformer.`` or kohya's
    ``lora_unet_`` allowed)."""
    flat = [k.replace("lora_unet_", "").replace("_", ".") for k in keys] if adapter else keys
    if any(m in k for k in flat for m in ("double.blocks.", "double_blocks.", "single_transformer_blocks.",
                                          "single.transformer.blocks.")):
        if adapter:
            return "Flux.1"  # a LoRA fits dev and schnell alike
        return "Flux.1 D" if any(k.endswith("guidance_in.in_layer.weight") for k in keys) else "Flux.1 S"
    if any("joint_blocks." in k or "joint.blocks." in k for k in flat):
        if adapter:
            return "SD 3"
        width = next((s[0] for k in keys if k.endswith("x_embedder.proj.weight") and (s := _shape(header, k))), 0)
        if width == 2432:
            return "SD 3.5 Large"
        if any(".x_block.attn2." in k for k in keys):
            return "SD 3.5 Medium"
        return "SD 3"
    return None


def detect(header: Mapping[str, Any]) -> Detected:
    """Kind and family of the tensors of ``header`` (a parsed safetensors header)."""
    keys = [k for k in header if k != "__metadata__"]
    if not keys:
        return UNKNOWN
    if any(k.endswith(_LYCORIS) for k in keys) or any(k.endswith(_LORA) for k in keys):
        kind = "LyCORIS" if any(k.endswith(_LYCORIS) for k in keys) else "LoRA"
        family = _transformer_family(header, keys, adapter=True) or _context_family(header, keys)
        if family is None and any(k.startswith("lora_te2_") for k in keys):
            family = "SDXL 1.0"  # a second text encoder: SDXL's
        return Detected(kind, family)
    if "emb_params" in header or {"clip_l", "clip_g"} <= header.keys():
        if {"clip_l", "clip_g"} <= header.keys():
            return Detected("Embedding", "SDXL 1.0")
        width = (_shape(header, "emb_params") or [0, 0])[-1]
        return Detected("Embedding", {768: "SD 1.5", 1024: "SD 2.1"}.get(width))
    if any("input_hint_block." in k or k.startswith("controlnet_cond_embedding.") for k in keys):
        return Detected("ControlNet", _context_family(header, keys))
    diffusion = [k for k in keys if k.startswith("model.diffusion_model.")]
    bare_unet = any(k.startswith(("input_blocks.", "double_blocks.", "joint_blocks.", "down_blocks.")) for k in keys)
    if diffusion or bare_unet:
        family = _transformer_family(header, keys, adapter=False) or _context_family(header, keys)
        bundled = bool(diffusion) and any(k.startswith(_BUNDLED) for k in keys)
        return Detected("Checkpoint" if bundled else "Diffusion model", family)
    if any(k.startswith(("encoder.conv_in.", "decoder.conv_in.")) for k in keys):
        return Detected("VAE", None)
    if any(k.startswith(("text_model.encoder.layers.", "encoder.block.", "transformer.resblocks."))
           or ".text_model.encoder.layers." in k for k in keys):
        return Detected("Text encoder", None)
    return UNKNOWN


def detect_json(raw: bytes) -> Detected:
    """What a file is from its JSON header (the bytes after the length)."""
    try:
        header = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return UNKNOWN
    return detect(header) if isinstance(header, dict) else UNKNOWN


def detect_bytes(head: bytes) -> Detected:
    """What a file is from its first bytes (they must hold the whole header): a browser sends them before an
    upload, for the folder it suggests."""
    if len(head) < 10:
        return UNKNOWN
    (n,) = struct.unpack_from("<Q", head)
    if not 2 <= n <= min(MAX_HEADER_BYTES, len(head) - 8):
        return UNKNOWN
    return detect_json(head[8:8 + n])


def detect_file(path: str | os.PathLike[str]) -> Detected:
    try:
        raw = header_bytes(path)
    except OSError:
        return UNKNOWN
    return detect_json(raw) if raw is not None else UNKNOWN
