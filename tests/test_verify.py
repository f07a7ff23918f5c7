"""Verify job: ok / mismatch / invalid / unknown against the index and sidecars, verdicts recorded in the store
index, cancellation, the API, the CLI, and one end-to-end run through a real worker subprocess."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from shared.config import Settings
from shared.errors import JobInterrupted
from shared.jobs import JobContext
from shared.services import Services
from shared.store.index import StoreIndex
from shared.verify.job import run_verify
from tests.support import wait_for


def _ctx(settings: Settings, params: dict[str, Any]) -> tuple[JobContext, Services]:
    services = Services.build(settings)
    task, _ = services.records.create("verify", params, queue="verify")
    claim = services.records.claim(task["id"], host="testhost", worker="w1")
    return JobContext(services.records, task["id"], claim.attempt, params, "testhost"), services


def _model(settings: Settings, name: str, seed: int = 0) -> Path:
    path = settings.store / "loras" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.full(64, seed, dtype=np.float32)}, str(path))
    return path


def _sidecar(path: Path, sha256: str) -> None:
    path.with_suffix(".md").write_text(f"---\nwebsite: Direct Link\nhashes:\n  SHA256: {sha256}\n---\n")


def _flip(path: Path, offset: int = -3) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["model"]["relpath"]: f for f in result["files"]}


def test_verdicts_for_ok_mismatch_invalid_and_unknown(settings: Settings) -> None:
    # Given a good model with a recorded hash, a same-size corrupt one, an HTML page named .safetensors, a
    # truncated file, and a model nobody recorded a hash for
    good = _model(settings, "good.safetensors", 1)
    _sidecar(good, hashlib.sha256(good.read_bytes()).hexdigest())
    bad = _model(settings, "flipped.safetensors", 2)
    _sidecar(bad, hashlib.sha256(bad.read_bytes()).hexdigest())
    _flip(bad)
    (settings.store / "loras" / "page.safetensors").write_bytes(b"<!DOCTYPE html><html>login</html>")
    trunc = _model(settings, "trunc.safetensors", 3)
    trunc.write_bytes(trunc.read_bytes()[:-10])
    new = _model(settings, "new.safetensors", 4)
    # When the folder is verified
    ctx, services = _ctx(settings, {"folder": "loras"})
    result = run_verify(ctx, services)
    # Then each file has its verdict, and nothing was deleted
    files = _by_name(result)
    assert {k: v["status"] for k, v in files.items()} == {
        "good.safetensors": "ok", "flipped.safetensors": "mismatch", "page.safetensors": "invalid",
        "trunc.safetensors": "invalid", "new.safetensors": "unknown"}
    assert "SHA256" in files["flipped.safetensors"]["reason"]
    assert "HTML" in files["page.safetensors"]["reason"]
    counts = (result["checked"], result["ok"], result["mismatch"], result["invalid"], result["unknown"])
    assert counts == (5, 1, 1, 2, 1)
    assert bad.exists() and trunc.exists()
    # And the verdicts are in the store index, where the listing reads them
    index = StoreIndex(services.redis, settings)
    assert index.lookup("loras", 0, "flipped.safetensors")["verify_status"] == "mismatch"
    assert index.lookup("loras", 0, "page.safetensors")["verified_at"]
    # And the unknown file's hash was recorded, so the next run can say ok
    assert index.lookup("loras", 0, "new.safetensors")["hashes"]["SHA256"] == hashlib.sha256(
        new.read_bytes()).hexdigest().upper()
    ctx, services = _ctx(settings, {"models": [{"folder": "loras", "path_index": 0, "relpath": "new.safetensors"}]})
    assert run_verify(ctx, services)["files"][0]["status"] == "ok"
    # Progress was reported in bytes
    task = services.records.get(ctx.task_id)
    assert task["progress"]["unit"] == "bytes"


def test_all_hashes_mode_and_index_recorded_hash(settings: Settings) -> None:
    # Given a model whose index entry records a download-time BLAKE3 that no longer matches
    path = _model(settings, "m.safetensors", 5)
    services = Services.build(settings)
    index = StoreIndex(services.redis, settings)
    index.record_file(path, hashes={"BLAKE3": "0" * 64})
    # When verified with every hash, the BLAKE3 disagreement is a mismatch; SHA256-only cannot see it
    ctx, services = _ctx(settings, {"models": [{"folder": "loras", "path_index": 0, "relpath": "m.safetensors"}],
                                    "mode": "all"})
    item = run_verify(ctx, services)["files"][0]
    assert item["status"] == "mismatch" and "BLAKE3" in item["reason"]


def test_missing_model_in_a_list_is_reported_not_fatal(settings: Settings) -> None:
    _model(settings, "here.safetensors")
    ctx, services = _ctx(settings, {"models": [
        {"folder": "loras", "path_index": 0, "relpath": "gone.safetensors"},
        {"folder": "loras", "path_index": 0, "relpath": "here.safetensors"}]})
    files = _by_name(run_verify(ctx, services))
    assert files["gone.safetensors"]["status"] == "invalid"
    assert files["here.safetensors"]["status"] == "unknown"


def test_cancel_stops_the_job(settings: Settings) -> None:
    _model(settings, "x.safetensors")
    ctx, services = _ctx(settings, {"folder": "loras"})
    services.records.control(ctx.task_id, "cancel")
    with pytest.raises(JobInterrupted):
        run_verify(ctx, services)


def test_verifications_api_validates_input(client: Any, settings: Settings) -> None:
    assert client.post("/api/v1/verifications", json={"mode": "md5"}).json["error"]["code"] == "invalid_request"
    assert client.post("/api/v1/verifications", json={"folder": "nope"}).status_code == 400
    assert client.post("/api/v1/verifications", json={"models": "x"}).status_code == 400
    assert client.post("/api/v1/verifications", data="[1]", content_type="application/json").status_code == 400
    resp = client.post("/api/v1/verifications",
                       json={"models": [{"folder": "loras", "path_index": 0, "relpath": "a.safetensors"}]})
    assert resp.status_code == 202 and resp.json["kind"] == "verify"


def test_repair_without_a_recorded_source_is_a_clear_409(client: Any, settings: Settings) -> None:
    _model(settings, "handmade.safetensors")
    resp = client.post("/api/v1/models/loras/0/handmade.safetensors/repair")
    assert resp.status_code == 409
    assert resp.json["error"]["code"] == "no_source_recorded"
    assert "POST /api/v1/downloads" in resp.json["error"]["message"]


def test_verify_end_to_end_through_a_worker(client: Any, settings: Settings, workers: Any) -> None:
    # Given a worker on the verify queue and a corrupt model with a recorded hash
    bad = _model(settings, "flipped.safetensors", 7)
    _sidecar(bad, hashlib.sha256(bad.read_bytes()).hexdigest())
    _flip(bad)
    workers(queues=["verify"])
    # When a verification is requested through the API
    task = client.post("/api/v1/verifications", json={"folder": "loras"}).json
    done = wait_for(lambda: (t := client.get(f"/api/v1/tasks/{task['id']}").json)["state"] in
                    ("succeeded", "failed") and t, timeout=60)
    # Then the worker reports the mismatch
    assert done["state"] == "succeeded", done
    assert done["result"]["mismatch"] == 1
    assert done["result"]["files"][0]["status"] == "mismatch"


def test_all_mode_agrees_with_a_civitai_style_hash_set(settings: Settings) -> None:
    # Given a sidecar holding the six hashes as Civitai stores them (AutoV3 cut to 12, no AutoV1 below 2 MiB)
    from shared.media.hashing import ALL, hash_file
    path = _model(settings, "civ.safetensors", 9)
    hashes = hash_file(path, ALL)
    hashes.pop("AutoV1", None)
    hashes["AutoV3"] = hashes["AutoV3"][:12]
    lines = "".join(f"  {k}: '{v}'\n" for k, v in hashes.items())
    path.with_suffix(".md").write_text(f"---\nwebsite: Civitai\nhashes:\n{lines}---\n")
    # When verified with every hash, then it is ok
    ctx, services = _ctx(settings, {"models": [{"folder": "loras", "path_index": 0, "relpath": "civ.safetensors"}],
                                    "mode": "all"})
    assert run_verify(ctx, services)["files"][0]["status"] == "ok"
