"""Path settings are absolute wherever settings are built: relative ones in the environment (and the defaults)
against the working directory, relative ones in the DEPOT_CONFIG file against the file's folder. A child process
started in another folder with the parent's path environment reads the same paths, and every file the processes
of ``depot up`` keep (beat schedule, Redis data, gunicorn's control socket, Flower's db, thumbnails) is named by an
absolute path. The thumbnail API works with a relative DEPOT_VAR_DIR (Flask's send_file would read a relative path
against the app's package)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings, SettingsError, load_settings, path_environment


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_defaults_are_absolute_under_the_working_directory(cwd: Path) -> None:
    s = load_settings({})
    assert (s.store, s.var_dir, s.extra_model_paths, s.config) == (cwd / "var" / "models", cwd / "var", (), None)
    assert s.keys_file == cwd / "var" / "keys.json" and s.thumbs_dir == cwd / "var" / "thumbs"


def test_relative_environment_paths_resolve_against_the_working_directory(cwd: Path, tmp_path: Path) -> None:
    (cwd / "conf").mkdir()
    (cwd / "conf" / "depot.yaml").write_text("host: h1\n")
    s = load_settings({"DEPOT_STORE": "models", "DEPOT_VAR_DIR": "./state/../state", "DEPOT_CONFIG": "conf/depot.yaml",
                       "DEPOT_EXTRA_MODEL_PATHS": "a.yaml:../b.yaml"})
    assert s.store == cwd / "models"
    assert s.var_dir == cwd / "state"  # normalised
    assert s.config == cwd / "conf" / "depot.yaml" and s.host == "h1"
    assert s.extra_model_paths == (cwd / "a.yaml", tmp_path / "b.yaml")
    # And an absolute path is kept as given
    assert load_settings({"DEPOT_STORE": str(tmp_path / "abs")}).store == tmp_path / "abs"


def test_home_and_variables_are_expanded(cwd: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DISK", str(tmp_path / "disk"))
    s = load_settings({"DEPOT_STORE": "~/models", "DEPOT_VAR_DIR": "$DISK/var", "DEPOT_EXTRA_MODEL_PATHS": "~/x.yaml"})
    assert (s.store, s.var_dir) == (tmp_path / "home" / "models", tmp_path / "disk" / "var")
    assert s.extra_model_paths == (tmp_path / "home" / "x.yaml",)


def test_relative_paths_in_the_config_file_are_relative_to_the_file(cwd: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a depot.yaml in another folder, naming every path relative to itself
    conf = tmp_path / "etc" / "depot"
    conf.mkdir(parents=True)
    (conf / "depot.yaml").write_text("store: ../../models\nvar_dir: state\nextra_model_paths: [nas.yaml, /abs/c.yaml]\n"
                                     "config: elsewhere.yaml\n")
    # When it is read from the working directory by a relative name
    s = load_settings({"DEPOT_CONFIG": "../etc/depot/depot.yaml"})
    # Then its paths are resolved against its own folder, not the working directory
    assert s.config == conf / "depot.yaml"
    assert s.store == tmp_path / "models" and s.var_dir == conf / "state"
    assert s.extra_model_paths == (conf / "nas.yaml", Path("/abs/c.yaml"))
    # And a path from the environment, which wins over the file, is still against the working directory
    s = load_settings({"DEPOT_CONFIG": str(conf / "depot.yaml"), "DEPOT_VAR_DIR": "var"})
    assert s.var_dir == cwd / "var" and s.store == tmp_path / "models"
    # And the same file read from another working directory gives the same paths
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    assert load_settings({"DEPOT_CONFIG": str(conf / "depot.yaml")}).store == tmp_path / "models"


def test_settings_built_directly_or_replaced_hold_no_relative_path(cwd: Path) -> None:
    s = Settings(store=Path("m"), var_dir=Path("v"), extra_model_paths=(Path("e.yaml"),))
    assert (s.store, s.var_dir, s.extra_model_paths) == (cwd / "m", cwd / "v", (cwd / "e.yaml",))
    assert s.replace(var_dir=Path("w")).var_dir == cwd / "w"
    assert load_settings({}, store=Path("over")).store == cwd / "over"
    assert load_settings({}, store="over2").store == cwd / "over2"


def test_empty_or_misplaced_paths_are_refused_by_name(cwd: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({"DEPOT_STORE": "", "DEPOT_VAR_DIR": " "})
    assert "DEPOT_STORE" in str(err.value) and "DEPOT_VAR_DIR" in str(err.value)
    # An empty DEPOT_CONFIG or DEPOT_EXTRA_MODEL_PATHS means none
    s = load_settings({"DEPOT_CONFIG": "", "DEPOT_EXTRA_MODEL_PATHS": ""})
    assert s.config is None and s.extra_model_paths == ()
    # A host's mount point is a path on that host: a relative one cannot be resolved here
    with pytest.raises(SettingsError, match="gpu2=data/models"):
        load_settings({"DEPOT_HOST_MOUNTS": "gpu1=/mnt/models,gpu2=data/models"})


def test_a_child_in_another_folder_reads_the_paths_its_parent_resolved(cwd: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a parent started in cwd with relative paths in the environment and in a relative config file
    (cwd / "depot.yaml").write_text("store: models\nextra_model_paths: [extra.yaml]\n")
    parent_env = {"DEPOT_CONFIG": "depot.yaml", "DEPOT_VAR_DIR": "var"}
    parent = load_settings(parent_env)
    # When a child starts in another folder with the parent's environment plus the resolved paths
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    child = load_settings({**parent_env, **path_environment(parent)})
    # Then it uses exactly the same files and folders
    for name in ("store", "var_dir", "extra_model_paths", "config"):
        assert getattr(child, name) == getattr(parent, name), name
    assert parent.store == cwd / "models" and parent.extra_model_paths == (cwd / "extra.yaml",)


def test_depot_up_children_get_absolute_paths_and_state_files(cwd: Path) -> None:
    from cli.procs import EmbeddedRedis, _child_env, beat_cmd, flower_cmd, web_cmd
    from workers.celery_app import celery_config
    s = load_settings({"DEPOT_STORE": "models", "DEPOT_VAR_DIR": "var"})
    env = _child_env(s)
    assert (env["DEPOT_STORE"], env["DEPOT_VAR_DIR"]) == (str(cwd / "models"), str(cwd / "var"))
    assert env["DEPOT_EXTRA_MODEL_PATHS"] == ""
    beat = beat_cmd(s)
    assert beat[beat.index("-s") + 1] == str(cwd / "var" / "celerybeat-schedule")
    assert celery_config(s)["beat_schedule_filename"] == str(cwd / "var" / "celerybeat-schedule")
    web = web_cmd(s)
    assert web[web.index("--control-socket") + 1] == str(cwd / "var" / "gunicorn.ctl")
    assert f"--db={cwd / 'var' / 'flower'}" in flower_cmd(s)
    assert EmbeddedRedis(s).dir == cwd / "var" / "redis"


def test_thumbnails_are_served_with_a_relative_var_dir(settings_env: dict[str, str], redis: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    from web import create_app
    # Given the default-style relative DEPOT_VAR_DIR, read in the folder the server was started in
    monkeypatch.chdir(tmp_path)
    s = load_settings({**settings_env, "DEPOT_VAR_DIR": "var"})
    loras = s.store / "loras"
    loras.mkdir(parents=True)
    (loras / "pic.safetensors").write_bytes(b"\0" * 64)
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (0, 200, 0)).save(buf, "PNG")
    (loras / "pic.preview.png").write_bytes(buf.getvalue())
    client = create_app(s).test_client()
    # When the dashboard asks for the thumbnail, Then it gets the WebP from var/thumbs of that folder
    resp = client.get("/api/v1/previews/loras/0/pic.safetensors")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "image/webp" and resp.data[8:12] == b"WEBP"
    assert list((tmp_path / "var" / "thumbs").rglob("*.webp"))
    # And the placeholder of a model without a preview too
    (loras / "bare.safetensors").write_bytes(b"\0" * 64)
    assert client.get("/api/v1/previews/loras/0/bare.safetensors").status_code == 200


def test_extra_model_paths_relative_to_the_cwd_then_to_their_yaml(cwd: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.store.layout import StoreLayout
    # Given a relative DEPOT_EXTRA_MODEL_PATHS whose YAML has a relative base_path (ComfyUI: relative to the YAML)
    (cwd / "extra").mkdir()
    (cwd / "extra" / "extra_model_paths.yaml").write_text("nas:\n  base_path: ../nas\n  loras: Lora\n")
    s = load_settings({"DEPOT_STORE": "models", "DEPOT_EXTRA_MODEL_PATHS": "extra/extra_model_paths.yaml"})
    # When the layout is built in another working directory
    monkeypatch.chdir(tmp_path)
    layout = StoreLayout.from_settings(s)
    # Then the roots are the store's and the YAML's, as resolved where the settings were read
    assert layout.folder("loras").paths == (str(cwd / "models" / "loras"), str(cwd / "nas" / "Lora"))


def test_cli_takes_a_model_path_relative_to_its_working_directory(served: str, settings: Settings,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.client import ApiClient
    from cli.maintenance import model_ref
    loras = settings.store / "loras"
    (loras / "sub").mkdir(parents=True)
    (loras / "sub" / "a.safetensors").write_bytes(b"\0" * 64)
    monkeypatch.chdir(loras)
    assert model_ref(ApiClient(), "sub/a.safetensors") == {"folder": "loras", "path_index": 0,
                                                           "relpath": "sub/a.safetensors"}
