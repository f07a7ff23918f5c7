"""Civitai AIR URNs: ``urn:air:{ecosystem}:{type}:{source}:{id}@{version}.{format}`` (``urn:``/``air:``,
ecosystem, type, version and format optional), e.g. ``urn:air:sdxl:lora:civitai:328553@368189`` or
``urn:air:sd1:checkpoint:civitai:4201@130072.safetensors``. The type names the folder; a Civitai id and version
let the resolver find the file (the store's recorded source, or Civitai's answer for the version)."""
from __future__ import annotations

import re

from shared.workflows.refs import Wanted

_AIR = re.compile(
    r"^(?:urn:)?(?:air:)?(?:(?P<ecosystem>[a-z0-9_\-/]+):)?(?:(?P<type>[a-z0-9_\-/]+):)?(?P<source>[a-z0-9_\-/]+):"
    r"(?P<id>[a-z0-9_\-/]+)(?:@(?P<version>[a-z0-9_\-]+))?(?:\.(?P<format>[a-z0-9_\-]+))?$", re.IGNORECASE)
_TOKEN = re.compile(r"urn:air:[^\s,;'\"<>()\[\]{}]+", re.IGNORECASE)

#: AIR resource type -> ComfyUI folder.
TYPE_FOLDERS = {
    "model": "checkpoints", "checkpoint": "checkpoints", "lora": "loras", "locon": "loras", "lycoris": "loras",
    "dora": "loras", "embedding": "embeddings", "textualinversion": "embeddings", "hypernet": "hypernetworks",
    "hypernetwork": "hypernetworks", "vae": "vae", "controlnet": "controlnet", "upscaler": "upscale_models",
    "clip": "text_encoders", "textencoder": "text_encoders", "unet": "diffusion_models",
    "clipvision": "clip_vision",
}
#: AIR format suffix -> Civitai ``metadata.format``.
FORMATS = {"safetensors": "SafeTensor", "safetensor": "SafeTensor", "ckpt": "PickleTensor", "pt": "PickleTensor",
           "pickletensor": "PickleTensor", "gguf": "GGUF", "onnx": "ONNX", "diffusers": "Diffusers"}


def parse_air(text: str) -> Wanted | None:
    """One AIR, or None when ``text`` is not one. Only Civitai's ids are numbers the resolver can use."""
    m = _AIR.match(text.strip())
    if m is None or (not text.lower().startswith(("urn:air:", "air:")) and m.group("source").lower() != "civitai"):
        return None
    kind = (m.group("type") or "").lower().replace("_", "").replace("-", "")
    civitai = m.group("source").lower() == "civitai"
    model, version = m.group("id"), m.group("version")
    fmt = (m.group("format") or "").lower()
    return Wanted(text.strip(), TYPE_FOLDERS.get(kind), None,
                  civitai_model=int(model) if civitai and model.isdigit() else None,
                  civitai_version=int(version) if civitai and version and version.isdigit() else None,
                  file_format=FORMATS.get(fmt, fmt or None), named=False)


def air_references(text: str) -> list[Wanted]:
    """Every ``urn:air:`` URN in free text (one per line, or inline)."""
    out = []
    for m in _TOKEN.finditer(text):
        w = parse_air(m.group(0).rstrip(".:"))
        if w is not None:
            out.append(w)
    return out
