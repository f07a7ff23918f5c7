"""A flipped byte in a downloaded model is reported as ``mismatch``, and the repair action re-downloads it from
its recorded source (fake upstream over loopback, the real download job) and restores the exact bytes."""
from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from shared.config import Settings
from shared.jobs import JobContext
from shared.services import Services


def _safetensors_bytes() -> bytes:
    data = np.arange(4096, dtype=np.float32).tobytes()
    header = json.dumps({"w": {"dtype": "F32", "shape": [4096], "data_offsets": [0, len(data)]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


def _run(services: Services, task: dict[str, Any], fn: Any) -> dict[str, Any]:
    claim = services.records.claim(task["id"], host="testhost", worker="w1")
    ctx = JobContext(services.records, task["id"], claim.attempt, task["params"], "testhost")
    return fn(ctx, services)


def _verify(services: Services, ref: dict[str, Any]) -> dict[str, Any]:
    from shared.verify.job import run_verify
    task, _ = services.records.create("verify", {"models": [ref]}, queue="verify")
    return _run(services, task, run_verify)["files"][0]


def test_flipped_byte_is_a_mismatch_and_repair_restores_the_exact_bytes(
        settings: Settings, client: Any, upstream: Any) -> None:
    from shared.downloads.job import run_download
    services = Services.build(settings)
    original = _safetensors_bytes()
    url = upstream.add_direct("/files/style.safetensors", original)
    # Given a model downloaded through the real download job (from a task queued without a plan, as an older
    # version queued them: the job resolves its URL itself)
    task, _ = services.records.create("download", {"url": url, "folder": "loras"}, queue="downloads")
    model = _run(services, task, run_download)["model"]
    ref = {k: model[k] for k in ("folder", "path_index", "relpath")}
    path = settings.store / "loras" / model["relpath"]
    assert path.read_bytes() == original
    assert _verify(services, ref)["status"] == "ok"
    # When one byte of its tensor data flips on disk (same size)
    data = bytearray(original)
    data[-100] ^= 0x01
    path.write_bytes(bytes(data))
    # Then verify reports a mismatch and leaves the file in place
    item = _verify(services, ref)
    assert item["status"] == "mismatch" and "SHA256" in item["reason"]
    assert path.exists()
    listed = client.get(f"/api/v1/models/loras/0/{model['relpath']}").json
    assert listed["verify_status"] == "mismatch"
    # When the user asks for a repair
    resp = client.post(f"/api/v1/models/loras/0/{model['relpath']}/repair")
    assert resp.status_code == 202, resp.json
    repair = resp.json
    assert repair["kind"] == "download" and repair["params"]["overwrite"] is True
    assert repair["params"]["url"] == url and repair["params"]["sha256"]
    assert repair["params"]["plan"]["sha256"] == repair["params"]["sha256"].lower()  # planned before it was queued
    # And the download job it queued runs
    _run(services, repair, run_download)
    # Then the exact original bytes are back and verify says ok
    assert path.read_bytes() == original
    assert _verify(services, ref)["status"] == "ok"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]

