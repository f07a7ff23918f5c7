"""``POST /api/v1/workflows/resolve`` and ``depot workflow check`` as a person uses them: a PNG ComfyUI saved,
uploaded over HTTP; per-host readiness with two live worker hosts (real worker subprocesses) where one host's
mount lacks the loras folder; the CLI's table, JSON and exit codes; every kind of bad input a JSON 4xx."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from shared.store.layout import StoreLayout
from shared.workflows.formats import MAX_BYTES
from tests.test_workflow_resolve import scan
from tests.workflow_support import comfy_png, comfy_webp, node, ui_graph


@pytest.fixture
def settings_env(settings_env):  # type: ignore[no-untyped-def]
    # gpu2 mounts the store, but not its loras folder
    settings_env["DEPOT_HOST_MOUNTS"] = "gpu1=/mnt/models,gpu2=/srv/models,gpu2:loras="
    return settings_env


@pytest.fixture
def indexed(settings) -> None:  # type: ignore[no-untyped-def]
    StoreLayout(settings.store).ensure_default_dirs()
    for rel, seed in (("checkpoints/base.safetensors", 1), ("loras/ink.safetensors", 2)):
        save_file({"w": np.full(8, seed, dtype=np.float32)}, str(settings.store / rel))
    scan(settings)


NEEDS_LORA = ui_graph([node(1, "CheckpointLoaderSimple", ["base.safetensors"]),
                       node(2, "LoraLoader", ["ink.safetensors", 1, 1])])
NEEDS_CHECKPOINT = ui_graph([node(1, "CheckpointLoaderSimple", ["base.safetensors"]),
                             node(2, "LoraLoader", ["ink.safetensors", 1, 1], mode=4)])  # bypassed


def post_file(client: Any, data: bytes, name: str = "wf.png", **form: str) -> Any:
    return client.post("/api/v1/workflows/resolve", data={"file": (io.BytesIO(data), name), **form},
                       content_type="multipart/form-data")


def test_readiness_per_live_host_where_one_mount_lacks_a_folder(client, indexed, workers):
    workers(host="gpu1")
    workers(host="gpu2")
    resp = post_file(client, comfy_png(NEEDS_LORA, None), offline="true")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["ready"] == {"gpu1": True, "gpu2": False}
    assert (body["format"], body["contents"]) == ("png", ["ui"])
    hosts = {r["name"]: r["hosts"] for r in body["references"]}
    assert hosts == {"base.safetensors": {"gpu1": True, "gpu2": True},
                     "ink.safetensors": {"gpu1": True, "gpu2": False}}
    # the LoRA only on a bypassed node: the workflow runs on both hosts
    body = post_file(client, comfy_webp(NEEDS_CHECKPOINT, {"1": {"class_type": "CheckpointLoaderSimple",
                                                                  "inputs": {"ckpt_name": "base.safetensors"}}}),
                     "wf.webp", offline="true").get_json()
    assert body["ready"] == {"gpu1": True, "gpu2": True}
    assert [r["optional"] for r in body["references"]] == [False, True]
    # gpu2's ComfyUI config leaves the folder out too
    yaml_text = client.get("/api/v1/comfyui/extra_model_paths.yaml?host=gpu2").get_data(as_text=True)
    assert "loras" not in yaml_text and "checkpoints" in yaml_text


def test_json_and_text_bodies_and_explicit_hosts(client, indexed):
    resp = client.post("/api/v1/workflows/resolve", json={"workflow": NEEDS_LORA, "hosts": ["gpu1", "gpu2"],
                                                          "offline": True})
    assert resp.status_code == 200 and resp.get_json()["ready"] == {"gpu1": True, "gpu2": False}
    resp = client.post("/api/v1/workflows/resolve", json={"text": "urn:air:sdxl:lora:civitai:1@2", "offline": True})
    ref = resp.get_json()["references"][0]
    assert (ref["state"], ref["folder"], ref["source"]) == ("missing", "loras", None)
    assert resp.get_json()["ready"] == {}  # no live worker, none asked about


def test_cli_table_json_and_exit_codes(served, indexed, workers, tmp_path: Path, capsys):
    from web.cli import main
    workers(host="gpu1")
    workers(host="gpu2")
    png = tmp_path / "castle.png"
    png.write_bytes(comfy_png(NEEDS_LORA, None))
    # Not ready on gpu2: exit 1, and the table says where and why
    assert main(["workflow", "check", str(png), "--offline"]) == 1
    out = capsys.readouterr().out
    assert "ink.safetensors" in out and "loras/ink.safetensors" in out
    assert "ready on: gpu1; not ready on: gpu2" in out
    # Asked about gpu1 only: exit 0
    assert main(["workflow", "check", str(png), "--offline", "--host", "gpu1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ready"] == {"gpu1": True}
    # A missing model: exit 1 even where the rest is ready
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps(ui_graph([node(1, "VAELoader", ["nowhere.safetensors"])])))
    assert main(["workflow", "check", str(missing), "--offline", "--host", "gpu1"]) == 1
    assert "MISSING" in capsys.readouterr().out
    # A file with no workflow: exit 2 and the server's reason
    junk = tmp_path / "photo.png"
    junk.write_bytes(comfy_png(None, None))
    assert main(["workflow", "check", str(junk)]) == 2
    assert "This PNG has no ComfyUI workflow" in capsys.readouterr().err


def _deep(n: int) -> bytes:
    return b'{"workflow": ' + b'{"a": ' * n + b"1" + b"}" * n + b"}"


@pytest.mark.parametrize("kwargs,status,code", [
    ({"data": b"{", "content_type": "application/json"}, 400, "invalid_request"),
    ({"data": b"", "content_type": "application/json"}, 400, "invalid_request"),
    ({"json": []}, 400, "invalid_request"),
    ({"json": {"workflow": "{\"nodes\": []}"}}, 400, "invalid_request"),
    ({"json": {"workflow": {"a": 1}}}, 400, "not_a_workflow"),
    ({"json": {"workflow": {"nodes": []}, "text": "x"}}, 400, "invalid_request"),
    ({"json": {"text": 5}}, 400, "invalid_request"),
    ({"json": {"text": "nothing here"}}, 400, "not_a_workflow"),
    ({"json": {"workflow": {"nodes": []}, "hosts": "gpu1"}}, 400, "invalid_request"),
    ({"json": {"workflow": {"nodes": []}, "hosts": ["../x"]}}, 400, "invalid_request"),
    ({"json": {"workflow": {"nodes": []}, "hosts": [1]}}, 400, "invalid_request"),
    ({"json": {"workflow": {"nodes": []}, "offline": "yes"}}, 400, "invalid_request"),
    ({"data": _deep(3000), "content_type": "application/json"}, 400, "invalid_request"),
    ({"data": b"\x89PNG\r\n\x1a\n", "content_type": "image/png"}, 415, "unsupported_media_type"),
    ({"data": {"other": "x"}, "content_type": "multipart/form-data"}, 400, "invalid_request"),
    ({"data": {"file": (io.BytesIO(b"\x00\x01junk" * 50), "x.bin")},
      "content_type": "multipart/form-data"}, 415, "unsupported_file"),
    ({"data": {"file": (io.BytesIO(b"{}"), "x.json"), "offline": "maybe"},
      "content_type": "multipart/form-data"}, 400, "invalid_request"),
    ({"data": {"file": (io.BytesIO(b"{}"), "x.json")}, "content_type": "multipart/form-data"},
     400, "not_a_workflow"),
])
def test_bad_input_is_a_json_4xx(client, kwargs, status, code):
    resp = client.post("/api/v1/workflows/resolve", **kwargs)
    assert resp.status_code == status, resp.get_data(as_text=True)[:300]
    assert resp.get_json()["error"]["code"] == code


def test_this_route_alone_takes_big_bodies_and_never_past_the_cap(client, app):
    big = json.dumps(ui_graph([node(i, "LoraLoader", [f"l{i}.safetensors", 1, 1]) for i in range(12000)])).encode()
    assert 1024 * 1024 < len(big) < MAX_BYTES
    resp = client.post("/api/v1/workflows/resolve", data=b'{"offline": true, "workflow": ' + big + b"}",
                       content_type="application/json")
    assert resp.status_code == 200 and len(resp.get_json()["references"]) == 12000
    # other routes keep the default limit
    resp = client.post("/api/v1/downloads", data=b'{"url": "' + b"a" * (2 * 1024 * 1024) + b'"}',
                       content_type="application/json")
    assert resp.status_code == 413
    # over the cap, declared or streamed without a length: 413, nothing read past it
    huge = b"x" * (MAX_BYTES + 128 * 1024)
    resp = post_file(client, huge, "huge.json")
    assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "body_too_large"
    assert str(MAX_BYTES + 64 * 1024) in resp.get_json()["error"]["message"]

    class Counting(io.BytesIO):
        """A body sent without a length (chunked), counting what the server reads of it."""
        taken = 0

        def read(self, size: int | None = -1) -> bytes:
            out = super().read(size)
            Counting.taken += len(out)
            return out

    stream = Counting(b'{"text": "' + b"a" * (MAX_BYTES + 8 * 1024 * 1024) + b'"}')
    resp = client.post("/api/v1/workflows/resolve", input_stream=stream, content_type="application/json",
                       environ_overrides={"wsgi.input_terminated": True})
    assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "body_too_large"
    assert Counting.taken <= MAX_BYTES + 64 * 1024 + 1024 * 1024
