"""Helpers for the download tests: valid safetensors bytes, a JPEG preview, and a claimed JobContext on real
Redis so ``run_download`` can be called directly."""
from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.jobs import JobContext
from shared.services import Services


def safetensors_bytes(n: int, seed: int = 1) -> bytes:
    """A structurally valid safetensors file with one U8 tensor of ``n`` pseudo-random bytes."""
    header = json.dumps({"__metadata__": {"format": "pt"},
                         "w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    header += b" " * (-len(header) % 8)
    block = bytes((i * 31 + seed) % 251 for i in range(65536))
    body = block * (n // len(block) + 1)
    return struct.pack("<Q", len(header)) + header + body[:n]


def tiny_safetensors(body: bytes) -> bytes:
    """The smallest safetensors a scan takes for a model: an 8-byte header ``{"a":1}``, then ``body``."""
    return b"\x08" + b"\0" * 7 + b'{"a":1} ' + body


def styled_lora(settings: Settings, stem: str, body: bytes, sidecars: dict[str, str | bytes],
                plain: tuple[str, bytes]) -> Path:
    """A store of default folders with ``loras/styles/<stem>.safetensors`` (``tiny_safetensors(body)``), its
    sidecars (suffix -> content) and one more LoRA ``loras/<plain name>`` (``plain``: name, bytes); returns the
    store."""
    from shared.store.layout import StoreLayout
    StoreLayout(settings.store).ensure_default_dirs()
    styles = settings.store / "loras" / "styles"
    styles.mkdir()
    (styles / f"{stem}.safetensors").write_bytes(tiny_safetensors(body))
    for suffix, content in sidecars.items():
        path = styles / f"{stem}{suffix}"
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    (settings.store / "loras" / plain[0]).write_bytes(plain[1])
    return settings.store


def jpeg_bytes(color: str = "red") -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buf, "JPEG")
    return buf.getvalue()


def job_context(settings: Settings, params: dict[str, Any], *, host: str | None = None) -> tuple[JobContext, Services]:
    """Create and claim a download task; returns its context (attempt 1) and the services."""
    services = Services.build(settings)
    task, _ = services.records.create("download", params, queue="downloads")
    return claim(services, task["id"], params, host=host or settings.host), services


def claim(services: Services, task_id: str, params: dict[str, Any], *, host: str) -> JobContext:
    got = services.records.claim(task_id, host=host, worker=f"test@{host}")
    assert got is not None
    return JobContext(services.records, task_id, got.attempt, params, host, progress_interval_s=0.05)


def model_files(root: Any) -> list[str]:
    """Every file under ``root`` (relative, sorted), partials included."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)


def _gguf_string(text: str, wide: bool = True) -> bytes:
    raw = text.encode()
    return struct.pack("<Q" if wide else "<I", len(raw)) + raw


def gguf_bytes(arch: str | None, size: int = 64 * 1024, *, version: int = 3, before: int = 0, seed: int = 1) -> bytes:
    """A GGUF file of about ``size`` bytes whose header says ``general.architecture = arch`` (None: no such
    key), after ``before`` other keys (a string array and a u32 array each, as a tokenizer puts first)."""
    wide = version >= 2
    count = "<Q" if wide else "<I"
    kvs = b""
    for i in range(before):
        words = [f"tok{j}" for j in range(50)]
        kvs += _gguf_string(f"tokenizer.ggml.tokens{i}", wide) + struct.pack("<I", 9) + struct.pack("<I", 8)
        kvs += struct.pack(count, len(words)) + b"".join(_gguf_string(w, wide) for w in words)
        kvs += _gguf_string(f"tokenizer.ggml.ids{i}", wide) + struct.pack("<I", 9) + struct.pack("<I", 4)
        kvs += struct.pack(count, 30) + struct.pack("<30I", *range(30))
    n_kv = 2 * before
    if arch is not None:
        kvs += _gguf_string("general.architecture", wide) + struct.pack("<I", 8) + _gguf_string(arch, wide)
        n_kv += 1
    kvs += _gguf_string("general.quantization_version", wide) + struct.pack("<I", 4) + struct.pack("<I", 2)
    n_kv += 1
    head = b"GGUF" + struct.pack("<I", version) + struct.pack(count, 1) + struct.pack(count, n_kv) + kvs
    block = bytes((i * 37 + seed) % 256 for i in range(4096))
    body = block * (max(0, size - len(head)) // len(block) + 1)
    return head + body[:max(0, size - len(head))]


def real_gguf(path: Any, arch: str, tokens: int = 0) -> Any:
    """A GGUF written by llama.cpp's own writer (the ``gguf`` package ComfyUI-GGUF reads with): the
    architecture, an optional token list, a key after it and one tensor."""
    import gguf
    import numpy as np
    writer = gguf.GGUFWriter(str(path), arch)
    if tokens:
        writer.add_token_list([f"tok{i}" for i in range(tokens)])
    writer.add_uint32(f"{arch}.context_length", 512)
    writer.add_tensor("blk.0.weight", np.arange(64, dtype=np.float32).reshape(8, 8))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(name="settings_env")
def civitai_at_upstream(settings_env: dict[str, str], upstream: Any) -> dict[str, str]:
    """The test's settings with Civitai at the fake upstream: a module that imports this fixture gets them."""
    settings_env["DEPOT_CIVITAI_URL"] = upstream.url
    return settings_env
