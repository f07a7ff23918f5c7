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


def test_unmapped_host_gets_the_servers_store_path_and_a_warning(mounted_app, settings_env, tmp_path: Path):
    resp = mounted_app.test_client().get("/api/v1/comfyui/extra_model_paths.yaml?host=gpu9")
    text = resp.get_data(as_text=True)
    store = str(Path(settings_env["DEPOT_STORE"]).resolve())
    assert _parse(text, tmp_path)["loras"] == [f"{store}/loras"]
    # The reason is said, in the file and to a client, naming the hosts the mounts do list
    warning = resp.headers["X-Depot-Warning"]
    assert warning.startswith("Host 'gpu9' has no entry in DEPOT_HOST_MOUNTS (it names gpu1, gpu2)")
    assert f"# Warning: {warning}" in text
    mapped = mounted_app.test_client().get("/api/v1/comfyui/extra_model_paths.yaml?host=gpu1")
    assert "X-Depot-Warning" not in mapped.headers and "Warning" not in mapped.get_data(as_text=True)
    # A host name in any script still gets a clean header, not a 500
    odd = mounted_app.test_client().get("/api/v1/comfyui/extra_model_paths.yaml?host=g\u00e9pu")
    assert odd.status_code == 200 and "g\\xe9pu" in odd.headers["X-Depot-Warning"]


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
        from cli import main
        out = tmp_path / "extra_model_paths.yaml"
        # When `depot comfyui-config --host gpu1 -o FILE` runs
        assert main(["comfyui-config", "--host", "gpu1", "-o", str(out)]) == 0
        # Then the file parses to gpu1's mount
        assert parse_extra_model_paths(out)["embeddings"] == ["/mnt/models/embeddings"]
        assert "warning" not in capsys.readouterr().err
        # And a host with no mount entry is warned about
        assert main(["comfyui-config", "--host", "gpu7", "-o", str(out)]) == 0
        assert "depot: warning: Host 'gpu7' has no entry in DEPOT_HOST_MOUNTS" in capsys.readouterr().err
        # And a bad host is reported, not a traceback
        assert main(["comfyui-config", "--host", "a b"]) == 1
        assert "invalid_request" in capsys.readouterr().err
    finally:
        server.shutdown()
        server.server_close()


def _comfyui_own_table(comfy: str) -> dict[str, list[str]]:
    """What a GPU host's ComfyUI registers for its own ``models/`` before reading the YAML (folder_paths.py)."""
    return {"checkpoints": [f"{comfy}/models/checkpoints"], "loras": [f"{comfy}/models/loras"],
            "text_encoders": [f"{comfy}/models/text_encoders", f"{comfy}/models/clip"],
            "diffusion_models": [f"{comfy}/models/unet", f"{comfy}/models/diffusion_models"]}


def _load_like_comfyui(text: str, tmp_path: Path, comfy: str) -> dict[str, list[str]]:
    """ComfyUI's ``load_extra_path_config`` onto its own table: each line, in file order, through
    ``add_model_folder_path`` (appended, or inserted at the front when ``is_default``)."""
    from shared.store.extra_paths import add_folder_path, read_entries
    path = tmp_path / "cfg" / "extra_model_paths.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    table = _comfyui_own_table(comfy)
    for folder, full, is_default in read_entries(path):
        add_folder_path(table, folder, full, is_default)
    return table


def test_path_index_on_a_gpu_host_follows_comfyuis_order(mounted_app, tmp_path: Path):
    client = mounted_app.test_client()
    # Given gpu1's config as written by default (the store after ComfyUI's own models/)
    plain = client.get("/api/v1/comfyui/extra_model_paths.yaml?host=gpu1").get_data(as_text=True)
    assert "is_default: false" in plain and "a local file of the same name wins" in plain
    table = _load_like_comfyui(plain, tmp_path, "/opt/ComfyUI")
    # Then ComfyUI's own dirs come first: the store's path_index i is ComfyUI's index (own dirs) + i
    assert table["loras"] == ["/opt/ComfyUI/models/loras", "/mnt/models/loras"]
    assert table["diffusion_models"] == ["/opt/ComfyUI/models/unet", "/opt/ComfyUI/models/diffusion_models",
                                         "/mnt/models/unet", "/mnt/models/diffusion_models"]
    # When the host should prefer the store (`depot comfyui-config --host gpu1 --default`)
    first = client.get("/api/v1/comfyui/extra_model_paths.yaml?host=gpu1&default=1").get_data(as_text=True)
    assert "is_default: true" in first
    table = _load_like_comfyui(first, tmp_path, "/opt/ComfyUI")
    # Then the store's dirs come first, in the store's own order (ComfyUI inserts each at the front, so a
    # multi-path folder written in store order would come out reversed)
    assert table["diffusion_models"] == ["/mnt/models/unet", "/mnt/models/diffusion_models",
                                         "/opt/ComfyUI/models/unet", "/opt/ComfyUI/models/diffusion_models"]
    assert table["text_encoders"][:2] == ["/mnt/models/text_encoders", "/mnt/models/clip"]
    assert table["loras"] == ["/mnt/models/loras", "/opt/ComfyUI/models/loras"]
    # And a bad value is refused
    resp = client.get("/api/v1/comfyui/extra_model_paths.yaml?host=gpu1&default=yes please")
    assert resp.status_code == 400 and "default" in resp.json["error"]["message"]


def test_cli_default_flag(mounted_app, tmp_path: Path, monkeypatch):
    server = make_server("127.0.0.1", 0, mounted_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("DEPOT_URL", f"http://127.0.0.1:{server.server_port}")
        from cli import main
        out = tmp_path / "extra_model_paths.yaml"
        assert main(["comfyui-config", "--host", "gpu2", "--default", "-o", str(out)]) == 0
        table = _load_like_comfyui(out.read_text(), tmp_path, "/opt/ComfyUI")
        assert table["text_encoders"][:2] == ["/data/depot/text_encoders", "/data/depot/clip"]
    finally:
        server.shutdown()
        server.server_close()


def test_the_detail_says_where_each_host_sees_the_model(settings_env, redis, tmp_path: Path):
    from shared.config import load_settings
    from web import create_app
    env = {**settings_env, "DEPOT_HOST_MOUNTS": "gpu1=/mnt/models,gpu2=/data/depot/,gpu2:loras=/fast/loras,"
                                                "gpu3=/m,gpu3:loras="}
    app = create_app(load_settings(env))
    store = Path(settings_env["DEPOT_STORE"])
    (store / "loras" / "styles").mkdir(parents=True, exist_ok=True)
    (store / "loras" / "styles" / "ink.safetensors").write_bytes(b"x" * 10)
    (store / "clip").mkdir(parents=True, exist_ok=True)
    (store / "clip" / "t5.safetensors").write_bytes(b"y" * 10)
    client = app.test_client()
    got = client.get("/api/v1/models/loras/0/styles/ink.safetensors").get_json()
    # the folder's own mount wins; a host without the folder says so
    assert got["host_paths"] == {"gpu1": "/mnt/models/loras/styles/ink.safetensors",
                                 "gpu2": "/fast/loras/styles/ink.safetensors", "gpu3": None}
    # the second root of text_encoders is the store's clip folder
    got = client.get("/api/v1/models/text_encoders/1/t5.safetensors").get_json()
    assert got["host_paths"]["gpu1"] == "/mnt/models/clip/t5.safetensors"
