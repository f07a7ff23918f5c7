"""What kind of model a file is, in the words the library's type chips use, and its content rating.

A sidecar from Civitai names the model's type (``LORA``, ``LoCon``, ``TextualInversion`` ...), which tells a
LyCORIS from a LoRA in the same folder; a file with no such sidecar is of its folder's kind (a ``loras`` file is
a LoRA), which is what ComfyUI's loaders take it for."""
from __future__ import annotations

from typing import Any

#: Civitai's model types as the library shows them (lower-cased keys).
_CIVITAI_TYPES = {
    "checkpoint": "Checkpoint", "lora": "LoRA", "locon": "LyCORIS", "lycoris": "LyCORIS", "dora": "DoRA",
    "textualinversion": "Embedding", "hypernetwork": "Hypernetwork", "aestheticgradient": "Aesthetic gradient",
    "controlnet": "ControlNet", "upscaler": "Upscaler", "motionmodule": "Motion module", "vae": "VAE",
    "poses": "Poses", "wildcards": "Wildcards", "workflows": "Workflow", "detection": "Detection",
    "other": "Other",
}

#: The kind of a file nothing else describes, by the ComfyUI folder it is in.
_FOLDER_TYPES = {
    "checkpoints": "Checkpoint", "loras": "LoRA", "vae": "VAE", "vae_approx": "VAE",
    "text_encoders": "Text encoder", "diffusion_models": "Diffusion model", "clip_vision": "CLIP vision",
    "style_models": "Style model", "embeddings": "Embedding", "diffusers": "Diffusers", "controlnet": "ControlNet",
    "gligen": "GLIGEN", "upscale_models": "Upscaler", "latent_upscale_models": "Upscaler",
    "hypernetworks": "Hypernetwork", "photomaker": "PhotoMaker", "model_patches": "Model patch",
    "audio_encoders": "Audio encoder", "detection": "Detection",
}

#: Where a file of a kind goes (the ComfyUI folder whose loader takes it).
_KIND_FOLDERS = {"Checkpoint": "checkpoints", "Diffusion model": "diffusion_models", "LoRA": "loras",
                 "LyCORIS": "loras", "DoRA": "loras", "VAE": "vae", "Text encoder": "text_encoders",
                 "ControlNet": "controlnet", "Embedding": "embeddings", "Upscaler": "upscale_models"}

#: What Civitai's older boolean ``nsfw`` stands for when no level is given.
_NSFW_TRUE = 4


def civitai_type(raw: Any) -> str | None:
    """The library's name for a Civitai model type (unknown ones as Civitai spells them), or None."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    return _CIVITAI_TYPES.get(raw.strip().lower().replace(" ", ""), raw.strip()[:40])


def model_type(recorded: str | None, folder: str) -> str:
    """A model's type: what its sidecar recorded, else its folder's kind, else the folder's own name."""
    return recorded or _FOLDER_TYPES.get(folder, folder)


def nsfw_level(level: Any, flag: Any = None) -> int | None:
    """Civitai's rating as one level (1 PG ... 16 XXX): the version's ``nsfwLevel`` (a bit mask whose highest
    bit counts), else the model's boolean ``nsfw`` (True as R), else None (not known)."""
    if isinstance(level, int) and not isinstance(level, bool) and level > 0:
        return 1 << (min(level, 63).bit_length() - 1)
    if flag is True:
        return _NSFW_TRUE
    if flag is False:
        return 1
    return None


def folder_for(kind: str | None) -> str | None:
    """The ComfyUI folder a model of this kind belongs in, or None."""
    return _KIND_FOLDERS.get(kind) if kind else None
