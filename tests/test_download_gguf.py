"""GGUF downloads land where a GGUF loader reads them, through the REST API, a real worker subprocess and the
fake upstream: a Civitai "Checkpoint" that is a quantized Flux goes to ``diffusion_models``, a T5 encoder GGUF
(planned into ``diffusion_models`` from its name alone) is sent to ``text_encoders`` by its header when it is
published, and a folder the user chose or an architecture no loader is known for keeps the file where it was
asked to go, saying so in the task log and result."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.download_support import gguf_bytes, model_files, real_gguf
from tests.support import wait_for


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url, "HF_ENDPOINT": upstream.url})
    return settings_env


def _gguf(tmp_path: Path, arch: str) -> bytes:
    return real_gguf(tmp_path / f"src-{arch}.gguf", arch, tokens=500).read_bytes()


def _checkpoint(upstream: Any, model_id: int, name: str, data: bytes) -> str:
    upstream.add_civitai_model(model_id, name, "Checkpoint", versions=[{
        "id": model_id * 10, "name": "Q4_K_S", "baseModel": "Flux.1 D",
        "files": [{"id": model_id * 100, "name": f"{name}.gguf", "data": data,
                   "metadata": {"format": "GGUF", "size": None, "fp": None}}]}])
    return f"{upstream.url}/models/{model_id}"


def _download(client: Any, body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    resp = client.post("/api/v1/downloads", json=body)
    assert resp.status_code == 202, resp.json
    task_id = resp.json["id"]
    done = wait_for(lambda: (t := client.get(f"/api/v1/tasks/{task_id}").json)["state"] in ("succeeded", "failed")
                    and t, timeout=40, what="the download to finish")
    assert done["state"] == "succeeded", done["error"]
    events = client.get(f"/api/v1/tasks/{task_id}/events").json["events"]
    return done["result"], [e["task"].get("message", "") for e in events if e["type"] == "log"]


def _log_text(log: list[str]) -> str:
    return "\n".join(str(m) for m in log)


def test_civitai_gguf_checkpoint_goes_to_diffusion_models(client, workers, settings, upstream, tmp_path) -> None:
    # Given a quantized Flux published on Civitai as a "Checkpoint"
    url = _checkpoint(upstream, 31, "fluxDevQ4", _gguf(tmp_path, "flux"))
    workers()
    # When the user looks it up, Then the suggested folder is where ComfyUI-GGUF reads it
    info = client.get("/api/v1/resolve", query_string={"url": url}).json
    assert info["suggested_folder"] == "diffusion_models"
    assert [f["folder"] for f in info["files"]] == ["diffusion_models"]
    # When it is downloaded without choosing a folder
    result, log = _download(client, {"url": url})
    # Then it is in diffusion_models (its first path, models/unet), not checkpoints, and not flagged
    store = Path(settings.store)
    assert (store / "unet" / "fluxDevQ4.gguf").is_file()
    assert not list((store / "checkpoints").iterdir())
    assert result["model"]["folder"] == "diffusion_models" and result["model"]["misplaced"] is None
    assert result["gguf"]["architecture"] == "flux" and result["gguf"]["folder"] == "diffusion_models"
    assert "diffusion model (flux)" in _log_text(log)


def test_t5_gguf_is_routed_to_text_encoders_by_its_header(client, workers, settings, upstream, tmp_path) -> None:
    # Given a T5 encoder GGUF on Hugging Face, whose name says nothing of what it is
    data = _gguf(tmp_path, "t5encoder")
    upstream.add_hf_file("city96/t5-v1_1-xxl-encoder-gguf", "t5-v1_1-xxl-encoder-Q5_K_M.gguf", data)
    url = f"{upstream.url}/city96/t5-v1_1-xxl-encoder-gguf/blob/main/t5-v1_1-xxl-encoder-Q5_K_M.gguf"
    workers()
    # When it is downloaded without choosing a folder (planned into diffusion_models from its name)
    info = client.get("/api/v1/resolve", query_string={"url": url}).json
    assert info["suggested_folder"] == "diffusion_models"
    result, log = _download(client, {"url": url})
    # Then its header sent it to text_encoders when it was published, with nothing left behind
    store = Path(settings.store)
    assert (store / "text_encoders" / "t5-v1_1-xxl-encoder-Q5_K_M.gguf").read_bytes() == data
    assert (store / "text_encoders" / "t5-v1_1-xxl-encoder-Q5_K_M.md").is_file()
    assert [f for f in model_files(store) if not f.startswith("text_encoders/")] == []
    assert result["model"]["folder"] == "text_encoders"
    assert result["gguf"] == {"architecture": "t5encoder", "folder": "text_encoders",
                              "routed_from": "diffusion_models", "note": result["gguf"]["note"]}
    assert "saved in text_encoders" in result["gguf"]["note"] and result["gguf"]["note"] in _log_text(log)


def test_chosen_folders_and_unknown_architectures_are_kept_and_said(client, workers, settings, upstream,
                                                                    tmp_path) -> None:
    store = Path(settings.store)
    workers()
    # Given a Flux GGUF the user explicitly sends to checkpoints
    url = _checkpoint(upstream, 41, "fluxChosen", _gguf(tmp_path, "flux"))
    result, log = _download(client, {"url": url, "folder": "checkpoints"})
    # Then it is kept there, the task log warns, and the model is flagged for a move
    assert (store / "checkpoints" / "fluxChosen.gguf").is_file()
    assert result["gguf"]["routed_from"] is None and result["gguf"]["folder"] == "checkpoints"
    assert "warning: " in _log_text(log) and "kept in checkpoints as you chose" in _log_text(log)
    assert result["model"]["misplaced"]["suggested_folder"] == "diffusion_models"
    # Given a GGUF of an architecture no loader is known for, the user choosing checkpoints
    url = _checkpoint(upstream, 42, "oddChosen", gguf_bytes("mystery"))
    result, log = _download(client, {"url": url, "folder": "checkpoints"})
    assert (store / "checkpoints" / "oddChosen.gguf").is_file()
    assert "'mystery'" in result["gguf"]["note"] and "kept in checkpoints as you chose" in result["gguf"]["note"]
    assert result["gguf"]["note"] in _log_text(log)
    # And the same from a direct link without a folder: kept where it was planned (diffusion_models), said so
    url = upstream.add_direct("/files/odd-direct.gguf", gguf_bytes("mystery", seed=5))
    result, log = _download(client, {"url": url})
    assert (store / "unet" / "odd-direct.gguf").is_file()
    assert result["gguf"]["folder"] == "diffusion_models" and result["gguf"]["routed_from"] is None
    assert "kept in diffusion_models." in result["gguf"]["note"] and result["gguf"]["note"] in _log_text(log)


def test_cli_download_says_where_a_gguf_went(served, workers, settings, upstream, tmp_path, capsys) -> None:
    # Given a T5 encoder GGUF behind a direct link
    url = upstream.add_direct("/files/umt5-xxl-Q8.gguf", _gguf(tmp_path, "t5"))
    workers(queues=["downloads"])
    from cli import main
    # When the CLI downloads it and waits, Then it says where the file went and why
    assert main(["download", url, "--wait"]) == 0
    out, err = capsys.readouterr()
    assert "saved text_encoders/umt5-xxl-Q8.gguf" in out
    assert "text encoder (t5): saved in text_encoders" in err
