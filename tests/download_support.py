"""Helpers for the download tests: valid safetensors bytes, a JPEG preview, and a claimed JobContext on real
Redis so ``run_download`` can be called directly."""
from __future__ import annotations

import io
import json
import os
import struct
from typing import Any

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
