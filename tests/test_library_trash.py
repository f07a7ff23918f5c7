"""The trash: DELETE moves a model and its sidecars into its root's trash (a rename), which neither the library,
a rescan nor ComfyUI lists; restore puts them back with the hashes the index knew (409 when the path was taken
since); entries older than DEPOT_TRASH_DAYS are emptied by the maintenance pass; ``depot trash`` does the same
over HTTP."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from cli import main
from shared.config import Settings
from shared.library import trash
from shared.store.layout import StoreLayout
from tests.download_support import styled_lora
from tests.test_same_stem import comfyui_filename_list
from tests.test_scan import scan

URL = "/api/v1/models/loras/0/styles/Ink.safetensors"


@pytest.fixture
def store(settings: Settings) -> Path:
    styled_lora(settings, "Ink", b"i" * 1000, {".md": "---\nbaseModel: SDXL 1.0\n---\n\n# Trigger Words\n\ninky\n",
                                               ".preview.png": b"\x89PNG\r\n\x1a\n"},
                ("Other.safetensors", b"o" * 10))
    scan(settings, mode="full")
    return settings.store


def _listed(client: Any) -> list[str]:
    return sorted(m["relpath"] for m in client.get("/api/v1/models?folder=loras").get_json()["items"])


def test_delete_moves_to_trash_and_restore_brings_it_back(client: Any, store: Path, settings: Settings) -> None:
    styles = store / "loras" / "styles"
    sha = client.get(URL).get_json()["sha256"]
    assert sha
    # When the model is deleted
    got = client.delete(URL)
    assert got.status_code == 204
    location = got.headers["Location"]
    assert location.startswith("/api/v1/trash/")
    # Then it and its sidecars left their folder, and the library and a rescan no longer list it
    assert sorted(os.listdir(styles)) == []
    assert _listed(client) == ["Other.safetensors"]
    scan(settings, mode="full")
    assert _listed(client) == ["Other.safetensors"]
    # Nor does ComfyUI (which walks hidden folders too): a trashed file has no model extension
    loras = StoreLayout.from_settings(settings).folder("loras")
    assert comfyui_filename_list(tuple(loras.paths), frozenset(loras.extensions)) == ["Other.safetensors"]
    # And the trash lists it with its size and when it will be emptied
    entries = client.get("/api/v1/trash").get_json()
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["folder"], entry["relpath"], entry["size"]) == ("loras", "styles/Ink.safetensors", 1016)
    assert entry["files"] == ["styles/Ink.safetensors", "styles/Ink.md", "styles/Ink.preview.png"]
    assert entry["expires_at"] == pytest.approx(entry["deleted_at"] + 7 * 86400)
    assert client.get(location).get_json()["id"] == entry["id"]

    # When it is restored
    back = client.post(f"{location}/restore")
    assert back.status_code == 200, back.get_json()
    model = back.get_json()
    # Then every file is where it was, the index knows its hash without reading it again, the trash is empty
    assert sorted(os.listdir(styles)) == ["Ink.md", "Ink.preview.png", "Ink.safetensors"]
    assert model["sha256"] == sha and model["base_model"] == "SDXL 1.0"
    assert _listed(client) == ["Other.safetensors", "styles/Ink.safetensors"]
    assert client.get("/api/v1/trash").get_json() == []
    assert not any((store / "loras" / ".trash").iterdir())


def test_restore_into_a_taken_path_is_refused(client: Any, store: Path) -> None:
    location = client.delete(URL).headers["Location"]
    # Given a new file under the deleted model's name
    (store / "loras" / "styles" / "Ink.safetensors").write_bytes(b"new")
    got = client.post(f"{location}/restore")
    assert got.status_code == 409 and got.get_json()["error"]["code"] == "conflict"
    assert "styles/Ink.safetensors is taken" in got.get_json()["error"]["message"]
    # Then nothing moved: the new file stays, the entry is still restorable
    assert (store / "loras" / "styles" / "Ink.safetensors").read_bytes() == b"new"
    assert len(client.get("/api/v1/trash").get_json()) == 1


def test_old_entries_are_emptied_and_bad_ids_refused(client: Any, store: Path, settings: Settings) -> None:
    old = client.delete(URL).headers["Location"].rsplit("/", 1)[1]
    new = client.delete("/api/v1/models/loras/0/Other.safetensors").headers["Location"].rsplit("/", 1)[1]
    # Given one entry deleted eight days ago
    box = store / "loras" / ".trash" / old
    entry = orjson.loads((box / "entry.json").read_bytes())
    entry["deleted_at"] = time.time() - 8 * 86400
    (box / "entry.json").write_bytes(orjson.dumps(entry))
    # When the maintenance pass runs with the default of 7 days
    gone = trash.empty(StoreLayout.from_settings(settings), older_than_days=settings.trash_days)
    # Then only the old one is gone, files and all
    assert [e["id"] for e in gone] == [old] and not box.exists()
    assert [e["id"] for e in client.get("/api/v1/trash").get_json()] == [new]
    # An id that is not one, and one that is not there
    for bad, status in (("../../x", 404), ("abc", 400), ("0" * 32, 404)):
        got = client.post(f"/api/v1/trash/{bad}/restore")
        assert got.status_code == status, (bad, got.get_json())
        assert got.get_json()["error"]["code"] in ("invalid_request", "not_found")
    assert client.delete(f"/api/v1/trash/{old}").status_code == 404
    assert client.post(f"/api/v1/trash/{new}/restore", json={"x": 1}).status_code == 400


def test_cli_lists_restores_and_empties(served: str, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import requests
    requests.delete(served + URL, timeout=10).raise_for_status()
    requests.delete(served + "/api/v1/models/loras/0/Other.safetensors", timeout=10).raise_for_status()
    assert main(["trash"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "DELETED", "SIZE", "MODEL"] and len(lines) == 3
    assert "loras/styles/Ink.safetensors" in out and "7 days after its deletion" in err
    ink = next(line.split()[0] for line in lines if "Ink" in line)
    assert main(["trash", "restore", ink]) == 0
    assert capsys.readouterr().out == "restored loras/styles/Ink.safetensors\n"
    assert (store / "loras" / "styles" / "Ink.safetensors").is_file()
    assert main(["trash", "restore", ink]) == 1  # already restored: a message, not a traceback
    assert "Nothing in the trash has id" in capsys.readouterr().err
    assert main(["trash", "empty"]) == 0
    assert capsys.readouterr().out == "deleted 1 model for good\n"
    assert json.loads(requests.get(served + "/api/v1/trash", timeout=10).text) == []


def test_a_store_that_refuses_writes_is_said_so(client: Any, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = trash._move

    def refuse(src: Any, dst: Any) -> None:
        if str(src).endswith(".md"):  # the model went in; its sidecar cannot follow
            raise PermissionError(13, "Permission denied", str(dst))
        real(src, dst)

    monkeypatch.setattr(trash, "_move", refuse)
    got = client.delete(URL)
    assert got.status_code == 503 and got.get_json()["error"]["code"] == "store_not_writable"
    assert "Permission denied" in got.get_json()["error"]["message"]
    # and the model is still where it was with its sidecars, listed, and nothing is in the trash
    assert sorted(os.listdir(store / "loras" / "styles")) == ["Ink.md", "Ink.preview.png", "Ink.safetensors"]
    assert "styles/Ink.safetensors" in _listed(client)
    assert client.get("/api/v1/trash").get_json() == []
