"""Every file shape a workflow arrives in, made byte for byte as the writing tool makes it, is read back; every
file that holds no workflow gets a typed error saying what was wrong."""
from __future__ import annotations

import io
import json
import struct
import zlib

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from shared.workflows.errors import FileTooLarge, MalformedWorkflow, UnsupportedFile, WorkflowFileError
from shared.workflows.formats import MAX_BYTES, read_bytes, read_json_value, read_text
from tests.workflow_support import a1111_jpeg, a1111_png, comfy_apng, comfy_png, comfy_webp, node, ui_graph

WORKFLOW = ui_graph([node(4, "CheckpointLoaderSimple", ["sd_xl_base_1.0.safetensors"])])
PROMPT = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"},
                "_meta": {"title": "Load Checkpoint"}}}


@pytest.mark.parametrize("make,fmt", [
    (lambda: comfy_png(WORKFLOW, PROMPT), "png"),
    (lambda: comfy_apng(WORKFLOW, PROMPT), "png"),
    (lambda: comfy_webp(WORKFLOW, PROMPT), "webp"),
    (lambda: comfy_webp(WORKFLOW, PROMPT, frames=3), "webp"),
])
def test_comfyui_images_give_back_both_graphs(make, fmt):
    payload = read_bytes(make())
    assert (payload.format, payload.workflow, payload.prompt) == (fmt, WORKFLOW, PROMPT)
    assert payload.contents == ["ui", "api"]


def test_png_with_only_the_prompt_and_compressed_itxt_are_read():
    assert read_bytes(comfy_png(None, PROMPT)).prompt == PROMPT
    info = PngInfo()
    info.add_itxt("workflow", json.dumps(WORKFLOW), zip=True)
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG", pnginfo=info)
    assert read_bytes(buf.getvalue()).workflow == WORKFLOW


def test_a1111_parameters_from_png_jpeg_and_webp():
    text = "a cat <lora:cute:0.8>\nNegative prompt: ugly\nSteps: 20, Sampler: Euler a, Seed: 1, Model: v1-5"
    assert read_bytes(a1111_png(text)).parameters == text
    assert read_bytes(a1111_jpeg(text)).parameters == text
    assert read_bytes(a1111_jpeg(text, "WEBP")).parameters == text
    # non-Latin text: PIL writes iTXt (UTF-8), UserComment stays UTF-16
    assert read_bytes(a1111_png("城堡 " + text)).parameters == "城堡 " + text
    assert read_bytes(a1111_jpeg("城堡 " + text)).parameters == "城堡 " + text


def test_json_shapes():
    assert read_bytes(json.dumps(WORKFLOW).encode()).workflow == WORKFLOW
    assert read_bytes(b"\xef\xbb\xbf" + json.dumps(PROMPT).encode()).prompt == PROMPT  # BOM
    body = {"client_id": "x", "prompt": PROMPT, "extra_data": {"extra_pnginfo": {"workflow": WORKFLOW}}}
    both = read_json_value(body)
    assert (both.workflow, both.prompt) == (WORKFLOW, PROMPT)
    # Python's json.dumps (so ComfyUI) may write NaN
    nan = json.dumps(ui_graph([node(1, "KSampler", [1, "fixed", float("nan")])])).encode()
    assert read_bytes(nan).workflow["nodes"][0]["type"] == "KSampler"
    assert read_text("urn:air:sdxl:lora:civitai:1@2").text == "urn:air:sdxl:lora:civitai:1@2"


def _png_with_text(key: str, value: str) -> bytes:
    info = PngInfo()
    info.add_text(key, value)
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("P", (4, 4)).save(buf, format="GIF")
    return buf.getvalue()


def _ztxt_bomb() -> bytes:
    body = b"workflow\0\0" + zlib.compress(b" " * (MAX_BYTES + 10), 9)
    chunk = struct.pack(">I", len(body)) + b"zTXt" + body + struct.pack(">I", zlib.crc32(b"zTXt" + body))
    png = comfy_png(None, PROMPT)
    return png[:33] + chunk + png[33:]


@pytest.mark.parametrize("data,error,words", [
    (_png_with_text("Software", "GIMP"), WorkflowFileError, "this PNG has no ComfyUI workflow"),
    (_png_with_text("workflow", "{not json"), MalformedWorkflow, "not valid JSON"),
    (comfy_png(WORKFLOW, PROMPT)[:60], MalformedWorkflow, "truncated"),
    (_ztxt_bomb(), FileTooLarge, "inflates past"),
    (_gif(), UnsupportedFile, "binary"),
    (b"\x00\x01\x02\xff" * 100, UnsupportedFile, "binary"),
    (b"\xff\xfe\xfa" + b"\x80" * 40, UnsupportedFile, "neither an image"),
    (b"\xff\xd8\xff\xe0garbage", MalformedWorkflow, "cannot be read"),
    (b"[1, 2, 3]", WorkflowFileError, "top level is a list"),
    (b'{"nodes": 5, "links": []}', WorkflowFileError, "neither a UI nor an API workflow"),
    (b'{"1": {"inputs": {}}}', WorkflowFileError, "neither a UI nor an API workflow"),
    (b"[" * 5000 + b"]" * 5000, MalformedWorkflow, "nested too deeply"),
    (b"{\"nodes\": [", MalformedWorkflow, "not valid JSON"),
    (b"just some words", WorkflowFileError, None),
    (b"   \n", WorkflowFileError, "empty"),
    (b"x" * (MAX_BYTES + 1), FileTooLarge, "larger than"),
])
def test_files_without_a_workflow_get_a_typed_error(data, error, words):
    with pytest.raises(error) as info:
        from shared.workflows.check import wanted_in
        wanted_in(read_bytes(data))
    assert info.value.http_status in (400, 413, 415)
    if words:
        assert words.lower() in info.value.message.lower()
