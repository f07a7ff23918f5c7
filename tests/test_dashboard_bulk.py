"""Bulk work in the library, in Chromium with a real worker: select all 50 models of a subfolder and move them
in one task; shift-click a range and tag it; the selection follows the search."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support import wait_for
from tests.test_dashboard import Site, _tiny_safetensors, browser, open_view, page, site  # noqa: F401 - fixtures
from tests.test_scan import scan


@pytest.fixture
def library(settings: Any) -> Path:
    incoming = Path(settings.store) / "loras" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    for i in range(50):
        (incoming / f"batch_{i:02}.safetensors").write_bytes(_tiny_safetensors(64 + i))
    (Path(settings.store) / "loras" / "other.safetensors").write_bytes(_tiny_safetensors(32))
    scan(settings, folder="loras")
    return Path(settings.store) / "loras"


def _count(pg: Any) -> str:
    return pg.locator("#bulk-count").inner_text()


def test_select_all_matching_then_move_and_tag_a_range(page: Any, site: Site, library: Path, workers: Any,
                                                       tmp_path: Path) -> None:
    out = Path(os.environ.get("DEPOT_SCREENSHOTS", str(tmp_path)))
    workers()
    open_view(page, site, "library")
    page.click(".folder-tab[data-folder=loras]")
    page.locator("#subfolders li[data-path=incoming] button").click()
    wait_for(lambda: page.locator("#bulk-bar").is_hidden() and page.locator("#library-status").inner_text()
             .startswith("50 models"), timeout=10, what="the 50 models of incoming")
    # When the user selects, picks a range with shift-click, and tags it
    page.click("#select-mode")
    cards = page.locator("#models .model")
    cards.nth(0).click()
    cards.nth(4).click(modifiers=["Shift"])
    assert _count(page) == "5 selected"
    assert page.locator("#models .model.selected").count() == 5
    page.locator("#bulk-bar button[data-action=tag]").click()
    page.get_by_label("Tags").fill("batch")
    page.click("#confirm-ok")
    page.locator(".toast", has_text="Add tag: done (5)").wait_for(timeout=30000)
    # Then the tag chip counts them
    page.locator(".facet[data-facet=tag] button[data-value=batch]", has_text="5").wait_for(timeout=10000)
    # When everything the subfolder holds is selected and moved in one task
    page.click("#select-mode")
    page.click("#select-all")
    assert _count(page) == "50 selected"
    assert page.locator("#bulk-bar").inner_text().split("\n")[0:2] == ["50 selected", "Clear"]
    page.screenshot(path=str(out / "library-bulk-1280.png"))
    page.locator("#bulk-bar button[data-action=move]").click()
    page.get_by_label("Move to subfolder").fill("sorted")
    page.click("#confirm-ok")
    page.locator(".toast", has_text="Move to: done (50)").wait_for(timeout=60000)
    # Then the files are in the new subfolder, and the tree says so
    assert len(list((library / "sorted").glob("*.safetensors"))) == 50
    assert not list((library / "incoming").glob("*.safetensors"))
    page.locator("#subfolders li[data-path=sorted] .count", has_text="50").wait_for(timeout=10000)
