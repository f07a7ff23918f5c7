"""The ComfyUI ``extra_model_paths.yaml`` for a GPU host, parsed back with the store's own loader (ComfyUI's
semantics): each folder points at the host's mount of the shared store, in ComfyUI's order."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from shared.store.extra_paths import parse_extra_model_paths


@pytest.fixture
def mounted_app(settings_env, redis):
    from shared.config import load_settings
    from web import create_app
    env = {**settings_env, "DEPOT_HOST_MOUNTS": "gpu1=/mnt/models,gpu2=/data/depot/"}
    application = create_app(load_settings(env))
    application.config["TESTING"] = True
    return application


def _parse(text: str, tmp_path: Path) -> dict[str, list[str]]:
    path = tmp_path / "cfg" / "extra_model_paths.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return parse_extra_model_paths(path)


def test_host_mount_mapping_is_honoured(mounted_app, tmp_path: Path):
    client = mounted_app.test_client()
    # When gpu1 asks for its config
    resp = client.get("/api/v1/comfyui/extra_model_paths.yaml?host=gpu1")
    assert resp.status_code == 200 and resp.mimetype == "application/yaml"
    # Then ComfyUI would see every folder under /mnt/models, multi-dir folders in ComfyUI's order
    table = _parse(resp.get_data(as_text=True), tmp_path)
    assert table["loras"] == ["/mnt/models/loras"]
    assert table["checkpoints"] == ["/mnt/models/checkpoints"]
    assert table["text_encoders"] == ["/mnt/models/text_encoders", "/mnt/models/clip"]
    assert table["diffusion_models"] == ["/mnt/models/unet", "/mnt/models/diffusion_models"]
    assert "configs" not in table and "custom_nodes" not in table
    # And gpu2's trailing slash does not matter
    table2 = _parse(client.get("/api/v1/comfyui/extra_model_paths.yaml?host=gpu2").get_data(as_text=True), tmp_path)
    assert table2["vae"] == ["/data/depot/vae"]


def test_unmapped_host_gets_the_servers_store_path(mounted_app, settings_env, tmp_path: Path):
    text = mounted_app.test_client().get("/api/v1/comfyui/extra_model_paths.yaml?host=gpu9").get_data(as_text=True)
    store = str(Path(settings_env["DEPOT_STORE"]).resolve())
    assert _parse(text, tmp_path)["loras"] == [f"{store}/loras"]


def test_bad_host_is_a_400_json_error(mounted_app):
    resp = mounted_app.test_client().get("/api/v1/comfyui/extra_model_paths.yaml?host=../etc")
    assert resp.status_code == 400
    assert resp.json["error"]["code"] == "invalid_request"


def test_cli_writes_the_same_yaml_over_http(mounted_app, tmp_path: Path, monkeypatch, capsys):
    # Given the API served over loopback
    server = make_server("127.0.0.1", 0, mounted_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("DEPOT_URL", f"http://127.0.0.1:{server.server_port}")
        from web.cli import main
        out = tmp_path / "extra_model_paths.yaml"
        # When `depot comfyui-config --host gpu1 -o FILE` runs
        assert main(["comfyui-config", "--host", "gpu1", "-o", str(out)]) == 0
        # Then the file parses to gpu1's mount
        assert parse_extra_model_paths(out)["embeddings"] == ["/mnt/models/embeddings"]
        # And a bad host is reported, not a traceback
        assert main(["comfyui-config", "--host", "a b"]) == 1
        assert "invalid_request" in capsys.readouterr().err
    finally:
        server.shutdown()
