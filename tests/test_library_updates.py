"""Civitai updates, against the fake upstream with a real worker: the check asks for the models that came from
Civitai in one batch, marks the one whose version is no longer the newest (kept in its NAME.md, so a rescan
keeps it; ``has:update`` and ``update=true`` find it), ignores what the user ignored until a newer version comes;
and in Chromium: the badge, then one click downloads the new version next to the old one."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.store.front_matter import split_front_matter
from shared.store.layout import StoreLayout
from tests.download_support import civitai_at_upstream, safetensors_bytes  # noqa: F401 - the fixture
from tests.multihost_support import finished
from tests.support import wait_for
from tests.test_dashboard import Site, browser, open_view, page, site  # noqa: F401 - fixtures
from tests.test_scan import scan

OLD = safetensors_bytes(4000, seed=1)
NEW = safetensors_bytes(4000, seed=2)
URL = "/api/v1/models/loras/0/styles/ink-v1.safetensors"


@pytest.fixture
def store(settings: Settings, upstream: Any) -> Path:
    StoreLayout(settings.store).ensure_default_dirs()
    styles = settings.store / "loras" / "styles"
    styles.mkdir()
    upstream.add_civitai_model(7, "Ink", "LORA", versions=[
        {"id": 70, "name": "v1.0", "baseModel": "SDXL 1.0", "files": [{"id": 700, "name": "ink-v1.safetensors",
                                                                      "data": OLD}]}])
    upstream.add_civitai_model(8, "Neon", "LORA", versions=[
        {"id": 80, "name": "v1.0", "baseModel": "SD 1.5", "files": [{"id": 800, "name": "neon.safetensors",
                                                                     "data": b"n" * 100}]}])
    (styles / "ink-v1.safetensors").write_bytes(OLD)
    (styles / "ink-v1.md").write_text(f"---\nmodelPage: {upstream.url}/models/7?modelVersionId=70\nwebsite: Civitai\n"
                                      "metadata:\n  tags:\n  - ink\n---\n\n# Ink\n")
    (settings.store / "loras" / "neon.safetensors").write_bytes(b"n" * 100)
    (settings.store / "loras" / "neon.md").write_text(f"---\nmodelPage: {upstream.url}/models/8?modelVersionId=80\n"
                                                      "website: Civitai\n---\n")
    (settings.store / "loras" / "mine.safetensors").write_bytes(b"m" * 100)
    # a newer version of Ink appears on Civitai
    upstream.add_civitai_version(7, {"id": 71, "name": "v2.0", "baseModel": "SDXL 1.0",
                                     "files": [{"id": 710, "name": "ink-v2.safetensors", "data": NEW}]})
    scan(settings)
    return settings.store


def _check(client: Any, app: Any) -> dict[str, Any]:
    got = client.post("/api/v1/bulk", json={"action": "updates", "query": {}})
    assert got.status_code == 202, got.get_json()
    done = finished(app.extensions["depot"].services.records, got.get_json()["id"], timeout=60)
    assert done["state"] == "succeeded", done["error"]
    return done["result"]


def _with_update(client: Any) -> list[str]:
    return [m["relpath"] for m in client.get("/api/v1/models?q=has:update").get_json()["items"]]


def test_the_check_marks_ignores_and_marks_again(client: Any, app: Any, store: Path, settings: Settings,
                                                 upstream: Any, workers: Any) -> None:
    workers()
    result = _check(client, app)
    # Then both Civitai models were asked about in one request, and only Ink has a newer version
    assert result["updates"] == {"checked": 2, "updates": 1, "changed": 1}
    assert upstream.requests("/api/v1/models") == 1
    model = client.get(URL).get_json()
    assert model["update_available"] == {"model_id": 7, "version_id": 71, "name": "v2.0", "base_model": "SDXL 1.0",
                                         "url": f"{upstream.url}/models/7?modelVersionId=71"}
    assert _with_update(client) == ["styles/ink-v1.safetensors"]
    assert [m["relpath"] for m in client.get("/api/v1/models?update=true").get_json()["items"]] == [
        "styles/ink-v1.safetensors"]
    assert client.get("/api/v1/facets").get_json()["updates"] == 1
    # It lives in NAME.md beside the user's tags: a full rescan keeps it
    front, _ = split_front_matter((store / "loras" / "styles" / "ink-v1.md").read_text())
    assert front["metadata"]["tags"] == ["ink"] and front["metadata"]["update"]["version_id"] == 71
    scan(settings, mode="full")
    assert _with_update(client) == ["styles/ink-v1.safetensors"]
    # A second check writes nothing new
    assert _check(client, app)["updates"]["changed"] == 0
    # When the user ignores it, it is gone, and a check does not bring it back
    assert client.patch(URL, json={"ignore_update": True}).get_json()["update_available"] is None
    assert _with_update(client) == []
    _check(client, app)
    assert _with_update(client) == []
    again = client.patch(URL, json={"ignore_update": True})
    assert again.status_code == 409 and "no update to ignore" in again.get_json()["error"]["message"]
    # Until a newer version than the one ignored appears
    upstream.add_civitai_version(7, {"id": 72, "name": "v3.0", "baseModel": "SDXL 1.0",
                                     "files": [{"id": 720, "name": "ink-v3.safetensors", "data": b"x" * 10}]})
    _check(client, app)
    assert client.get(URL).get_json()["update_available"]["name"] == "v3.0"


def test_badge_then_one_click_downloads_the_new_version(page: Any, site: Site, store: Path, workers: Any,
                                                        tmp_path: Path) -> None:
    workers()
    open_view(page, site, "maintenance")
    page.click("button[data-job=updates]")
    page.wait_for_selector("#maint-tasks li[data-state=succeeded]", timeout=30000)
    page.click(".tabs a[data-view=library]")
    page.click(".folder-tab[data-folder=loras]")
    # The card carries the badge, and the Updates chip narrows to it
    card = page.locator("#models .model", has_text="Ink")
    card.locator(".badge.update", has_text="v2.0").wait_for(timeout=10000)
    page.locator(".facet[data-facet=update] button").click()
    wait_for(lambda: page.locator("#models .model").count() == 1, timeout=10, what="only the model with an update")
    # One click on the detail's button downloads v2.0 into the same subfolder
    card.click()
    page.locator("#detail .update-note", has_text="Update available: v2.0").wait_for()
    page.click("#download-update")
    page.locator("#detail h2", has_text="Ink").wait_for()
    page.locator(".toast", has_text="Downloaded").wait_for(timeout=60000)
    assert (store / "loras" / "styles" / "ink-v2.safetensors").read_bytes() == NEW
    assert (store / "loras" / "styles" / "ink-v1.safetensors").read_bytes() == OLD
