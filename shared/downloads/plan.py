"""The resolved description of one download: where the bytes come from, what they should hash to, where they go
and what the sidecar will say. Built by ``resolve.py`` and carried in the task's params so every attempt (on any
host) downloads exactly the same artifact."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Civitai model type → ComfyUI folder.
CIVITAI_FOLDERS = {
    "LORA": "loras", "LoCon": "loras", "DoRA": "loras", "Checkpoint": "checkpoints",
    "TextualInversion": "embeddings", "VAE": "vae", "Controlnet": "controlnet", "Upscaler": "upscale_models",
    "Hypernetwork": "hypernetworks", "TextEncoder": "text_encoders", "CLIP": "text_encoders",
    "UNet": "diffusion_models", "CLIPVision": "clip_vision", "MotionModule": "checkpoints",
}
#: Civitai file type → folder, when it differs from the model's (a VAE shipped beside a checkpoint, …).
CIVITAI_FILE_FOLDERS = {"VAE": "vae", "Text Encoder": "text_encoders", "Vision Encoder": "clip_vision",
                        "Negative": "embeddings", "UNet": "diffusion_models", "Diffusion Model": "diffusion_models",
                        "CLIPVision": "clip_vision", "ControlNet": "controlnet", "Upscaler": "upscale_models"}
DEFAULT_FOLDER = "checkpoints"


@dataclass
class Plan:
    source: str  #: civitai | huggingface | direct
    url: str  #: where a fresh transfer starts (Civitai: the API download URL, re-asked for a fresh signed link)
    filename: str
    folder: str
    idem_key: str
    key_name: str | None = None  #: which stored API key to send (to that URL's host only)
    size: int | None = None
    sha256: str | None = None  #: lower-case hex, when known
    hashes: dict[str, str] = field(default_factory=dict)  #: upstream's hashes (Civitai)
    meta: dict[str, Any] = field(default_factory=dict)  #: sidecar fields and preview images

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
