"""The library as a model browser, in Chromium: the subfolder tree walks the store's real layout, base-model and
type chips filter (toggles that look like toggles), cards carry the content rating, long names wrap between
their words, and the list view is a table its headers sort. Screenshots at 1280×800 and 390×844."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support import wait_for
from tests.test_dashboard import Site, _tiny_safetensors, browser, open_view, page, site  # noqa: F401 - fixtures
from tests.test_scan import scan

LONG = "Super_Detailed_Watercolor_Landscape_Painting_Style_LoRA_v2_final"


def _model(at: Path, name: str, size: int = 64, base: str | None = None) -> None:
    at.mkdir(parents=True, exist_ok=True)
    (at / f"{name}.safetensors").write_bytes(_tiny_safetensors(size))
    if base:
        (at / f"{name}.md").write_text(f"---\nbaseModel: {base}\n---\n\n# Trigger Words\n\nNo trigger words\n")


@pytest.fixture
def library(settings: Any) -> Path:
    loras = Path(settings.store) / "loras"
    _model(loras, "plain", 400)
    _model(loras / "styles", "watercolor", 200, "SDXL 1.0")
    _model(loras / "styles", LONG, 100, "SDXL 1.0")
    _model(loras / "styles" / "anime", "ink", 300, "Pony")
    (loras / "styles" / "anime" / "ink.civitai.info").write_text(json.dumps({
        "id": 7, "modelId": 3, "baseModel": "Pony", "nsfwLevel": 8, "trainedWords": ["ink"],
        "model": {"name": "Ink Lines", "type": "LoCon", "nsfw": True}, "files": []}))
    _model(loras / "characters", "hero", 500, "SD 1.5")
    scan(settings, folder="loras")
    return loras


def _names(pg: Any) -> list[str]:
    return pg.locator("#models .model .name").all_inner_texts()


def test_the_tree_and_the_chips_narrow_the_library(page: Any, site: Site, library: Path, browser: Any,
                                                   tmp_path: Path) -> None:
    out = Path(os.environ.get("DEPOT_SCREENSHOTS", str(tmp_path)))
    page.set_viewport_size({"width": 1280, "height": 800})
    open_view(page, site, "library")
    page.click(".folder-tab[data-folder=loras]")
    wait_for(lambda: page.locator("#models .model").count() == 5, timeout=10, what="five models")
    # The tree shows the store's real layout, with counts
    tree = page.locator("#subfolders")
    tree.locator("li[data-path='styles/anime']").wait_for()
    assert tree.locator("li[data-path='styles'] > details > summary .count").inner_text() == "3"
    assert tree.locator("li[data-path=characters] .count").inner_text() == "1"
    # When a subfolder is chosen, Then the library shows what is in it (and below it)
    tree.locator("li[data-path=styles] > details > summary button").click()
    wait_for(lambda: page.locator("#models .model").count() == 3, timeout=10, what="the styles subfolder")
    tree.locator("li[data-path='styles/anime'] button").click()
    wait_for(lambda: _names(page) == ["Ink Lines"], timeout=10, what="the anime subfolder")
    # (the tree is drawn again once the folder's counts arrive, just after the models)
    wait_for(lambda: tree.locator("li[data-path='styles/anime'] button").get_attribute("aria-current") == "true",
             timeout=10, what="the chosen subfolder marked in the tree")
    # The card carries its rating and its type
    card = page.locator("#models .model").first
    assert card.locator(".badge.nsfw").inner_text() == "X"
    assert card.locator(".meta").inner_text().startswith("LyCORIS")
    tree.locator("button", has_text="All of loras").click()
    wait_for(lambda: page.locator("#models .model").count() == 5, timeout=10, what="the whole folder again")
    # Base-model chips filter, and pressing one again clears it
    base = page.locator(".facet[data-facet=base]")
    pony = base.locator("button[data-value=Pony]")
    assert pony.locator(".count").inner_text() == "1"
    assert base.locator("button[data-value='']").inner_text().startswith("unknown")
    base.locator("button[data-value='SDXL 1.0']").click()
    wait_for(lambda: page.locator("#models .model").count() == 2, timeout=10, what="the SDXL models")
    wait_for(lambda: base.locator("button[data-value='SDXL 1.0']").get_attribute("aria-pressed") == "true",
             timeout=10, what="the pressed chip")
    base.locator("button[data-value='SDXL 1.0']").click()
    wait_for(lambda: page.locator("#models .model").count() == 5, timeout=10, what="no base filter")
    page.locator(".facet[data-facet=type] button[data-value=LyCORIS]").click()
    wait_for(lambda: _names(page) == ["Ink Lines"], timeout=10, what="the LyCORIS")
    page.locator(".facet[data-facet=type] button[data-value=LyCORIS]").click()
    wait_for(lambda: page.locator("#models .model").count() == 5, timeout=10, what="no type filter")
    # A toggle looks like a toggle: not the accent fill of a primary button, pressed or not; one height for all
    looks = page.evaluate("""() => {
      const bg = (sel) => getComputedStyle(document.querySelector(sel)).backgroundColor;
      const at = '#view-library .toolbar';
      const hs = [...document.querySelectorAll(`${at} > button, ${at} select, ${at} input, .segmented button`)]
        .map((e) => Math.round(e.getBoundingClientRect().height));
      return { primary: bg('#empty-scan'), on: bg('#view-switch [aria-pressed=true]'),
               off: bg('#view-switch [aria-pressed=false]'), heights: hs };
    }""")
    assert looks["on"] != looks["primary"] and looks["off"] != looks["primary"] and looks["on"] != looks["off"]
    assert len(set(looks["heights"])) == 1, looks["heights"]
    # A long name breaks only between its parts: no piece between two break points spans two lines
    long_card = page.locator("#models .model", has_text="Super_Detailed")
    split = long_card.locator(".name").evaluate("""(el) => {
      const pieces = [...el.childNodes].filter((n) => n.nodeType === 3);
      const lines = new Set();
      let cut = 0;
      for (const t of pieces) {
        const r = document.createRange(); r.selectNodeContents(t);
        const tops = new Set([...r.getClientRects()].map((x) => Math.round(x.top)));
        if (tops.size > 1) cut += 1;
        tops.forEach((y) => lines.add(y));
      }
      return { cut, lines: lines.size, pieces: pieces.length };
    }""")
    assert split["lines"] > 1 and split["cut"] == 0, split
    page.screenshot(path=str(out / "library-browser-1280.png"))
    # The list view is a table its headers sort
    page.click("#view-switch [data-layout=list]")
    page.wait_for_selector("#models table.model-table")
    heads = page.locator(".model-table thead th").all_inner_texts()
    assert [h.strip() for h in heads] == ["Name ▲", "Folder", "Size", "Base model", "Type", "Added", "Verify"]
    page.click(".model-table th[data-column=size] button")
    wait_for(lambda: page.locator(".model-table th[data-column=size]").get_attribute("aria-sort") == "ascending",
             timeout=10, what="sorted by size")
    sizes = page.locator(".model-table tbody tr").evaluate_all(
        "rows => rows.map((r) => r.dataset.relpath)")
    assert sizes[0].endswith(LONG + ".safetensors") and sizes[-1] == "characters/hero.safetensors", sizes
    page.click(".model-table th[data-column=size] button")
    wait_for(lambda: page.locator(".model-table th[data-column=size]").get_attribute("aria-sort") == "descending",
             timeout=10, what="sorted by size, largest first")
    assert page.locator(".model-table tbody tr").first.get_attribute("data-relpath") == "characters/hero.safetensors"
    folders = page.locator(".model-table tbody td[data-column=folder]").all_inner_texts()
    assert sorted(folders) == ["loras", "loras/characters", "loras/styles", "loras/styles", "loras/styles/anime"]
    page.locator(".model-table tbody tr", has_text="Ink Lines").click()
    page.wait_for_selector("#detail h2")
    facts = page.locator("#detail dl").inner_text()
    assert "LyCORIS" in facts and "X (Civitai)" in facts
    page.keyboard.press("Escape")
    page.screenshot(path=str(out / "library-table-1280.png"))
    # On a phone the chips scroll sideways, the tree folds above the models and nothing is wider than the screen
    phone = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    try:
        open_view(phone, site, "library")
        phone.click(".folder-tab[data-folder=loras]")
        # (the chips are drawn again once the folder's counts arrive: asked of whichever is on the page)
        phone.wait_for_function("() => { const e = document.querySelector('.facet[data-facet=base]');"
                                " return e && getComputedStyle(e).overflowX === 'auto'; }", timeout=10000)
        assert phone.locator(".folder-tabs").evaluate("(e) => getComputedStyle(e).overflowX") == "auto"
        assert phone.locator("#subfolders details.tree-box").get_attribute("open") is None
        phone.screenshot(path=str(out / "library-browser-390.png"))
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        phone.context.close()
