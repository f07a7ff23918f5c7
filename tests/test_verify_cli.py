"""``depot verify`` and ``depot previews`` over real HTTP against the app and a real worker subprocess."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from cli import main
from cli.client import ApiClient, ApiError
from cli.maintenance import model_ref
from shared.config import Settings


def _model(settings: Settings, name: str) -> Path:
    path = settings.store / "loras" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.ones(16, dtype=np.float32)}, str(path))
    return path


def test_model_ref_parsing(served: str, settings: Settings) -> None:
    api = ApiClient()
    path = _model(settings, "a.safetensors")
    assert model_ref(api, str(path)) == {"folder": "loras", "path_index": 0, "relpath": "a.safetensors"}
    assert model_ref(api, "loras/sub/b.safetensors") == {"folder": "loras", "path_index": 0,
                                                         "relpath": "sub/b.safetensors"}
    assert model_ref(api, "text_encoders/1/c.safetensors") == {"folder": "text_encoders", "path_index": 1,
                                                              "relpath": "c.safetensors"}
    with pytest.raises(ApiError):
        model_ref(api, "justaname")


def test_depot_verify_wait_exits_1_on_a_corrupt_file(served: str, settings: Settings, workers: Any,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # Given a worker, one good and one corrupt model with recorded hashes
    workers(queues=["verify", "previews"])
    for name, corrupt in (("good.safetensors", False), ("bad.safetensors", True)):
        path = _model(settings, name)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        path.with_suffix(".md").write_text(f"---\nhashes:\n  SHA256: {sha}\n---\n")
        if corrupt:
            data = bytearray(path.read_bytes())
            data[-1] ^= 1
            path.write_bytes(bytes(data))
    # When the folder is verified from the command line and waited for
    code = main(["verify", "--folder", "loras", "--wait"])
    out = capsys.readouterr().out
    # Then the corrupt file is named, the summary printed, and the exit code says something is wrong
    assert code == 1
    assert "mismatch  loras/bad.safetensors" in out
    assert "checked=2 ok=1 mismatch=1" in out
    # And a single good model verifies cleanly by path
    assert main(["verify", str(settings.store / "loras" / "good.safetensors"), "--wait"]) == 0
    # And previews run from the CLI too
    assert main(["previews", "--folder", "loras", "--source", "embedded", "--wait"]) == 0
    assert "generated=0 skipped=2 failed=0" in capsys.readouterr().out
