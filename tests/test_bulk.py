"""Bulk actions over the API, run by a real worker: move 50 models chosen by a search (sidecars follow, one
task with progress for the batch), tag and untag a list, favorite, delete into the trash; a model that fails
is reported and the others go on; verify over a selection starts the verify job; bad bodies are 400s naming
the field and start nothing."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.store.front_matter import split_front_matter
from shared.store.layout import StoreLayout
from tests.download_support import tiny_safetensors
from tests.multihost_support import finished
from tests.test_scan import scan


@pytest.fixture
def store(settings: Settings) -> Path:
    StoreLayout(settings.store).ensure_default_dirs()
    incoming = settings.store / "loras" / "incoming"
    incoming.mkdir()
    for i in range(50):
        (incoming / f"m{i:02}.safetensors").write_bytes(tiny_safetensors(bytes([i]) * 64))
        (incoming / f"m{i:02}.md").write_text(f"# Trigger Words\n\nword{i}\n")
    (settings.store / "loras" / "keep.safetensors").write_bytes(b"k" * 10)
    scan(settings, mode="full")
    return settings.store


def _run(client: Any, app: Any, body: dict[str, Any]) -> dict[str, Any]:
    got = client.post("/api/v1/bulk", json=body)
    assert got.status_code == 202, got.get_json()
    done = finished(app.extensions["depot"].services.records, got.get_json()["id"], timeout=60)
    assert done["state"] == "succeeded", done["error"]
    return done


def _relpaths(client: Any, query: str = "folder=loras") -> list[str]:
    return [m["relpath"] for m in client.get(f"/api/v1/models?{query}&limit=1000").get_json()["items"]]


def test_move_tag_favorite_and_delete_in_bulk(client: Any, app: Any, store: Path, workers: Any) -> None:
    workers()
    # When the 50 models of a subfolder are moved by a search, in one task
    task = _run(client, app, {"action": "move", "query": {"folder": "loras", "dir": "incoming"},
                              "to": {"folder": "loras", "subfolder": "sorted/2026"}})
    assert task["kind"] == "bulk" and task["result"] == {"models": 50, "done": 50, "failed": 0, "errors": []}
    assert task["progress"]["done"] == task["progress"]["total"] == 50
    # Then each moved with its sidecar, and the library lists them there
    sorted_dir = store / "loras" / "sorted" / "2026"
    assert len(list(sorted_dir.glob("*.safetensors"))) == 50 and len(list(sorted_dir.glob("*.md"))) == 50
    assert not list((store / "loras" / "incoming").iterdir())
    assert len(_relpaths(client, "folder=loras&dir=sorted/2026")) == 50
    # Tags added to a list, then one removed; the models' NAME.md keep their other sections
    refs = [{"folder": "loras", "path_index": 0, "relpath": f"sorted/2026/m{i:02}.safetensors"} for i in range(3)]
    _run(client, app, {"action": "tag", "models": refs, "tags": ["batch", "style"]})
    _run(client, app, {"action": "untag", "models": refs[:1], "tags": ["STYLE"]})
    assert _relpaths(client, "tag=batch") == [r["relpath"] for r in refs]
    assert _relpaths(client, "tag=style") == [r["relpath"] for r in refs[1:]]
    front, body = split_front_matter((sorted_dir / "m01.md").read_text())
    assert front["metadata"]["tags"] == ["batch", "style"] and "word1" in body
    # Favorites for everything tagged batch
    _run(client, app, {"action": "favorite", "query": {"tag": "batch"}})
    assert _relpaths(client, "favorite=true") == [r["relpath"] for r in refs]
    # A move where one target is taken: that one is reported, the others moved
    (store / "loras" / "taken").mkdir()
    (store / "loras" / "taken" / "m00.safetensors").write_bytes(b"other")
    task = _run(client, app, {"action": "move", "models": refs, "to": {"folder": "loras", "subfolder": "taken"}})
    assert (task["result"]["done"], task["result"]["failed"]) == (2, 1)
    assert task["result"]["errors"][0]["code"] == "conflict"
    assert task["result"]["errors"][0]["model"]["relpath"] == "sorted/2026/m00.safetensors"
    # Delete everything a search matches: into the trash, restorable
    task = _run(client, app, {"action": "delete", "query": {"folder": "loras", "q": "m4"}})
    assert task["result"]["done"] == 10
    assert len(client.get("/api/v1/trash").get_json()) == 10
    assert len(_relpaths(client)) == 51 - 10


def test_verify_over_a_selection_starts_the_verify_job(client: Any, app: Any, store: Path) -> None:
    got = client.post("/api/v1/bulk", json={"action": "verify", "query": {"folder": "loras", "q": "m0"}})
    assert got.status_code == 202
    task = got.get_json()
    assert task["kind"] == "verify" and len(task["params"]["models"]) == 10


BAD = [
    ({"action": "shred", "models": []}, "action"),
    ({"action": "delete"}, "models"),
    ({"action": "delete", "models": [], "query": {}}, "models"),
    ({"action": "delete", "models": [{"folder": "loras", "relpath": "../x.pt"}]}, "models[0].relpath"),
    ({"action": "delete", "query": {"folder": "nope"}}, "query.folder"),
    ({"action": "delete", "query": {"favorite": "yes"}}, "query.favorite"),
    ({"action": "delete", "query": {"colour": 1}}, "query.colour"),
    ({"action": "move", "query": {}}, "to"),
    ({"action": "move", "query": {}, "to": {"folder": "loras", "subfolder": "../up"}}, "to.subfolder"),
    ({"action": "delete", "query": {}, "to": {"folder": "loras"}}, "to"),
    ({"action": "tag", "query": {}}, "tags"),
    ({"action": "tag", "query": {}, "tags": ["two words"]}, "tags"),
    ({"action": "delete", "query": {}, "tags": ["x"]}, "tags"),
    ({"action": "verify", "query": {"q": "nothing-matches-this"}}, ""),
    ({"action": "delete", "query": {"verify": "good"}}, "query.verify"),
    ({"action": "delete", "query": {"preview": "no"}}, "query.preview"),
]


def test_bad_bulk_bodies_start_nothing(client: Any, app: Any, store: Path) -> None:
    for body, field in BAD:
        got = client.post("/api/v1/bulk", json=body)
        assert got.status_code == 400, (body, got.get_json())
        assert f"'{field}'" in got.get_json()["error"]["message"] or not field, (body, got.get_json())
    records = app.extensions["depot"].services.records
    assert records.page(kind="bulk")[0] == [] and records.page(kind="verify")[0] == []
