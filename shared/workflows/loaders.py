"""The one table of model-loading nodes: for each node type, its widgets in the order the UI format stores them
in ``widgets_values``, and which of them name a file of which ComfyUI folder. Core loaders are taken from
ComfyUI's ``nodes.py`` and ``comfy_extras`` (``folder_paths.get_filename_list(<folder>)`` inputs); the loaders of
newer official templates and a few widespread custom nodes (GGUF loaders, LoRA stacks) follow.

A node that is not here still has its model files reported when a widget value ends in a model extension, with
no folder; a stack node (``every``) has every model-file value in its folder."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: What a widget value must end with to be taken for a model file (ComfyUI's set, GGUF, ONNX).
MODEL_EXTENSIONS = (".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".gguf", ".onnx", ".pkl")
#: Folders whose entries are directories, named without an extension.
DIRECTORY_FOLDERS = frozenset({"diffusers"})


@dataclass(frozen=True)
class Loader:
    """``widgets``: widget names in ``widgets_values`` order; ``folders``: widget name -> folder; ``every``: the
    folder of every model-file value (stacks whose widget count varies)."""

    widgets: tuple[str, ...] = ()
    folders: Mapping[str, str] = field(default_factory=dict)
    every: str | None = None

    def folder_of(self, widget: str | None) -> str | None:
        if widget is not None and widget in self.folders:
            return self.folders[widget]
        return self.every


def _one(folder: str, name: str, *rest: str) -> Loader:
    return Loader((name, *rest), {name: folder})


def _many(folder: str, names: tuple[str, ...], *rest: str) -> Loader:
    return Loader((*names, *rest), dict.fromkeys(names, folder))


_CLIP = ("clip_name1", "clip_name2", "clip_name3", "clip_name4")

LOADERS: Mapping[str, Loader] = MappingProxyType({
    # nodes.py
    "CheckpointLoaderSimple": _one("checkpoints", "ckpt_name"),
    "CheckpointLoader": Loader(("config_name", "ckpt_name"), {"ckpt_name": "checkpoints"}),
    "unCLIPCheckpointLoader": _one("checkpoints", "ckpt_name"),
    "DiffusersLoader": _one("diffusers", "model_path"),
    "LoraLoader": _one("loras", "lora_name", "strength_model", "strength_clip"),
    "LoraLoaderModelOnly": _one("loras", "lora_name", "strength_model"),
    "VAELoader": _one("vae", "vae_name"),
    "ControlNetLoader": _one("controlnet", "control_net_name"),
    "DiffControlNetLoader": _one("controlnet", "control_net_name"),
    "UNETLoader": _one("diffusion_models", "unet_name", "weight_dtype"),
    "CLIPLoader": _one("text_encoders", "clip_name", "type", "device"),
    "DualCLIPLoader": _many("text_encoders", _CLIP[:2], "type", "device"),
    "CLIPVisionLoader": _one("clip_vision", "clip_name"),
    "StyleModelLoader": _one("style_models", "style_model_name"),
    "GLIGENLoader": _one("gligen", "gligen_name"),
    # comfy_extras
    "TripleCLIPLoader": _many("text_encoders", _CLIP[:3]),
    "QuadrupleCLIPLoader": _many("text_encoders", _CLIP),
    "ImageOnlyCheckpointLoader": _one("checkpoints", "ckpt_name"),
    "UpscaleModelLoader": _one("upscale_models", "model_name"),
    "HypernetworkLoader": _one("hypernetworks", "hypernetwork_name", "strength"),
    "PhotoMakerLoader": _one("photomaker", "photomaker_model_name"),
    "AudioEncoderLoader": _one("audio_encoders", "audio_encoder_name"),
    "ModelPatchLoader": _one("model_patches", "name"),
    "CreateHookLora": _one("loras", "lora_name", "strength_model", "strength_clip"),
    "CreateHookLoraModelOnly": _one("loras", "lora_name", "strength_model"),
    "CreateHookModelAsLora": _one("checkpoints", "ckpt_name", "strength_model", "strength_clip"),
    "TrainLoraNode": Loader(folders={"existing_lora": "loras"}, every="loras"),
    # loaders of newer official templates
    "LatentUpscaleModelLoader": _one("latent_upscale_models", "model_name"),
    "LTXAVTextEncoderLoader": Loader(("text_encoder", "ckpt_name", "device"),
                                     {"text_encoder": "text_encoders", "ckpt_name": "checkpoints"}),
    "LTXVAudioVAELoader": _one("checkpoints", "ckpt_name"),
    "LoadMoGeModel": _one("geometry_estimation", "model_name"),
    "LoadDA3Model": _one("geometry_estimation", "model_name"),
    "LoadBackgroundRemovalModel": _one("background_removal", "bg_removal_name"),
    "ConditioningLoader": _one("embeddings", "conditioning_name"),
    "SAM3DBody_Loader": Loader(every="detection"),
    "FrameInterpolationModelLoader": _one("frame_interpolation", "model_name"),
    "OpticalFlowLoader": _one("optical_flow", "model_name"),
    # ComfyUI-GGUF
    "UnetLoaderGGUF": _one("diffusion_models", "unet_name"),
    "UnetLoaderGGUFAdvanced": _one("diffusion_models", "unet_name"),
    "CLIPLoaderGGUF": _one("text_encoders", "clip_name", "type"),
    "DualCLIPLoaderGGUF": _many("text_encoders", _CLIP[:2], "type"),
    "TripleCLIPLoaderGGUF": _many("text_encoders", _CLIP[:3]),
    "QuadrupleCLIPLoaderGGUF": _many("text_encoders", _CLIP),
    # LoRA stacks: a varying number of (switch, name, weights) groups, or rgthree's {"on","lora","strength"}
    "LoRA Stacker": Loader(every="loras"),
    "CR LoRA Stack": Loader(every="loras"),
    "Power Lora Loader (rgthree)": Loader(every="loras"),
    "Lora Loader Stack (rgthree)": Loader(every="loras"),
    "LoraLoader|pysssss": _one("loras", "lora_name", "strength_model", "strength_clip"),
    "CheckpointLoader|pysssss": _one("checkpoints", "ckpt_name"),
})


def loader(node_type: str | None) -> Loader | None:
    return LOADERS.get(node_type) if node_type else None


def is_model_file(value: str) -> bool:
    """Whether a widget value names a model file: one line, a sane length, a model extension, not a URL."""
    if not 4 < len(value) <= 1024 or "\n" in value:
        return False
    lower = value.lower()
    return lower.endswith(MODEL_EXTENSIONS) and not lower.startswith(("http://", "https://"))
