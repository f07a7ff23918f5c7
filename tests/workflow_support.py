"""Workflow files made the way the tools that write them do: ComfyUI's SaveImage (PIL ``PngInfo.add_text`` of
``prompt`` and each ``extra_pnginfo`` key, ``compress_level=4``), its animated PNG (private ``comf`` chunks after
the image data), SaveAnimatedWEBP / webp SaveImage (EXIF 0x0110 ``prompt:{json}``, 0x010F ``workflow:{json}``),
A1111's PNG (``parameters`` text chunk) and JPEG/WebP (EXIF UserComment, piexif's ``UNICODE`` = UTF-16BE), and
the official workflow templates of the ``comfyui-workflow-templates-json`` package."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo


def _image(color: str = "red") -> Image.Image:
    return Image.new("RGB", (16, 16), color)


def comfy_png(workflow: dict[str, Any] | None, prompt: dict[str, Any] | None) -> bytes:
    """``ImageSaveHelper._create_png_metadata`` + ``img.save(..., pnginfo=metadata, compress_level=4)``."""
    metadata = PngInfo()
    if prompt is not None:
        metadata.add_text("prompt", json.dumps(prompt))
    if workflow is not None:
        for key, value in {"workflow": workflow}.items():
            metadata.add_text(key, json.dumps(value))
    buf = io.BytesIO()
    _image().save(buf, format="PNG", pnginfo=metadata, compress_level=4)
    return buf.getvalue()


def comfy_apng(workflow: dict[str, Any], prompt: dict[str, Any]) -> bytes:
    """``_create_animated_png_metadata``: ``comf`` chunks after IDAT, then an animated save."""
    metadata = PngInfo()
    metadata.add(b"comf", "prompt".encode("latin-1", "strict") + b"\0"
                 + json.dumps(prompt).encode("latin-1", "strict"), after_idat=True)
    metadata.add(b"comf", "workflow".encode("latin-1", "strict") + b"\0"
                 + json.dumps(workflow).encode("latin-1", "strict"), after_idat=True)
    frames = [_image("red"), _image("blue")]
    buf = io.BytesIO()
    frames[0].save(buf, format="PNG", pnginfo=metadata, compress_level=4, save_all=True, duration=100,
                   append_images=frames[1:])
    return buf.getvalue()


def comfy_webp(workflow: dict[str, Any], prompt: dict[str, Any], *, frames: int = 1) -> bytes:
    """``_create_webp_metadata`` (EXIF on the first frame) and SaveAnimatedWEBP's ``save``."""
    images = [_image("red"), _image("blue"), _image("green")][:frames]
    exif = images[0].getexif()
    exif[0x0110] = f"prompt:{json.dumps(prompt)}"
    tag = 0x010F
    for key, value in {"workflow": workflow}.items():
        exif[tag] = f"{key}:{json.dumps(value)}"
        tag -= 1
    buf = io.BytesIO()
    images[0].save(buf, format="WEBP", save_all=True, duration=int(1000.0 / 6), append_images=images[1:],
                   exif=exif, lossless=False, quality=80, method=4)
    return buf.getvalue()


def a1111_png(parameters: str) -> bytes:
    """A1111 ``images.save_image_with_geninfo`` for PNG: ``PngInfo.add_text("parameters", geninfo)``."""
    info = PngInfo()
    info.add_text("parameters", parameters)
    buf = io.BytesIO()
    _image().save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def a1111_jpeg(parameters: str, fmt: str = "JPEG") -> bytes:
    """A1111 for JPEG/WebP: EXIF UserComment = piexif ``UserComment.dump(geninfo, encoding="unicode")``."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + parameters.encode("utf_16_be")
    buf = io.BytesIO()
    _image().save(buf, format=fmt, exif=exif, quality=90)
    return buf.getvalue()


A1111_PARAMETERS = (
    "masterpiece, best quality, <lora:add_detail:0.6>, a castle\n"
    "Negative prompt: lowres, bad hands\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567, Size: 512x768, "
    "Model hash: {model_hash}, Model: dreamshaper_8, VAE hash: {vae_hash}, VAE: vae-ft-mse.safetensors, "
    "Lora hashes: \"add_detail: {lora_hash}\", TI hashes: \"easynegative: {ti_hash}\", Version: v1.10.1")


def templates_dir() -> Path:
    import comfyui_workflow_templates_json
    return Path(comfyui_workflow_templates_json.__file__).parent / "templates"


def template_paths() -> list[Path]:
    """The workflow templates (the package's ``index*.json`` and ``fuse_options.json`` are catalogues)."""
    return sorted(p for p in templates_dir().glob("*.json")
                  if not p.name.startswith("index") and p.name != "fuse_options.json")


def node(node_id: int, node_type: str, values: Any, *, mode: int = 0, models: list[dict[str, Any]] | None = None,
         inputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A UI-format node as the ComfyUI frontend saves it."""
    out: dict[str, Any] = {"id": node_id, "type": node_type, "pos": [0, 0], "size": [300, 100], "flags": {},
                           "order": node_id, "mode": mode, "inputs": inputs or [], "outputs": [],
                           "properties": {"Node name for S&R": node_type}, "widgets_values": values}
    if models is not None:
        out["properties"]["models"] = models
    return out


def ui_graph(nodes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": "3f0c4a2e-0000-4000-8000-000000000001", "revision": 0, "last_node_id": len(nodes),
            "last_link_id": 0, "nodes": nodes, "links": [], "groups": [], "config": {}, "extra": {"ds": {}},
            "version": 0.4, **extra}
