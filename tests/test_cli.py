"""The `depot` CLI over real HTTP against the app and a real worker: download with --wait, the task table,
scan, resolve, and bad input turning into a clear message and exit code 1 (no traceback)."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from cli import main


def _weights(tmp_path) -> bytes:
    path = tmp_path / "w.safetensors"
    save_file({"w": np.arange(4096, dtype=np.float32)}, str(path))
    return path.read_bytes()


def test_download_wait_then_tasks_and_scan(served: str, settings: Any, workers: Any, upstream: Any,
                                           tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a worker and a model behind a direct link
    workers(queues=["downloads", "scan"])
    data = _weights(tmp_path)
    url = upstream.add_direct("/files/tiny.safetensors", data)
    # When the CLI downloads it and waits
    assert main(["download", url, "--folder", "loras", "--wait"]) == 0
    # Then the exact bytes are in the store under the file's name
    assert (settings.store / "loras" / "tiny.safetensors").read_bytes() == data
    out = capsys.readouterr().out
    assert "succeeded" in out or "loras/tiny.safetensors" in out
    # And the task table shows it finished
    assert main(["tasks", "--kind", "download"]) == 0
    table = capsys.readouterr().out
    assert "download" in table and "succeeded" in table
    # And a scan over the CLI finds the model already indexed, said in a sentence
    assert main(["scan", "--folder", "loras", "--wait"]) == 0
    assert capsys.readouterr().out == "Scanned 1 model files: 0 added, 0 changed, 0 removed.\n"
    # And so does a scan of the folder's first root alone, its result as JSON for a script
    assert main(["scan", "--folder", "loras", "--path-index", "0", "--wait", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 1


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url})
    return settings_env


def test_resolve_prints_the_model_its_files_and_where_it_goes(served: str, upstream: Any, tmp_path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    upstream.add_civitai_model(7, "Ink Lines", "LORA", versions=[
        {"id": 71, "name": "v2", "baseModel": "SDXL 1.0",
         "files": [{"id": 710, "name": "ink-v2.safetensors", "data": _weights(tmp_path)}]},
        {"id": 70, "name": "v1", "baseModel": "SD 1.5",
         "files": [{"id": 700, "name": "ink.safetensors", "data": _weights(tmp_path)}]}])
    assert main(["resolve", f"{upstream.url}/models/7"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Civitai: Ink Lines (LORA)"
    assert out[1].startswith("version v2 (id 71, base model SDXL 1.0); 1 other version: add ?modelVersionId=")
    assert any(line.startswith("*") and "ink-v2.safetensors" in line and "loras" in line for line in out)
    assert out[-1].startswith("A download saves loras/ink-v2.safetensors (")
    assert main(["resolve", f"{upstream.url}/models/7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version_id"] == 71


def test_bad_input_is_a_message_and_exit_1(served: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["download", "ftp://example.invalid/x.safetensors"]) == 1
    err = capsys.readouterr().err
    assert "depot:" in err and "Traceback" not in err
    assert main(["tasks", "--state", "bogus"]) == 1
    assert "state" in capsys.readouterr().err
    assert main(["scan", "--folder", "loras", "--path-index", "9"]) == 1
    assert "path_index" in capsys.readouterr().err


def test_unreachable_server_says_how_to_fix(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support import free_port
    monkeypatch.setenv("DEPOT_URL", f"http://127.0.0.1:{free_port()}")
    assert main(["tasks"]) == 1
    assert "depot up" in capsys.readouterr().err
