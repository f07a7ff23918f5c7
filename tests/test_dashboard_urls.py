"""The library in a real browser (Debian's Chromium driven by Playwright) with file names holding ``%``, ``#``,
``?``, spaces and Unicode: every card shows its own preview, and the detail panel (thumbnail, metadata) and
delete reach the right file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from shared.config import Settings
from tests.support import wait_for
from tests.test_dashboard import browser, open_view, page, site  # noqa: F401 - fixtures
from tests.test_model_urls import NAMES, make_store
from tests.test_scan import scan

#: Each loaded <img> of the grid: its model and natural size (0 x 0 when its URL failed).
_IMAGES = """() => [...document.querySelectorAll('#models .model')].map((card) => {
  const img = card.querySelector('img');
  return {relpath: card.dataset.relpath, done: img.complete, w: img.naturalWidth, h: img.naturalHeight};
})"""


def test_cards_show_their_previews_and_detail_and_delete_reach_the_file(page: Any, site: Any, settings: Settings,
                                                                        tmp_path: Path) -> None:
    # Given a scanned folder of awkwardly named models, each with a 2:1 preview (the placeholder is square)
    loras = make_store(settings.store)
    scan(settings, folder="loras")
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    # When the library opens on that folder
    open_view(page, site, "library")
    page.click(".folder-tab[data-folder=loras]")
    wait_for(lambda: page.locator("#models .model").count() == len(NAMES), timeout=10, what="every model")
    # Then every card has loaded its own preview
    wait_for(lambda: all(i["done"] for i in page.evaluate(_IMAGES)), timeout=15, what="the thumbnails")
    shown = {i["relpath"]: (i["w"], i["h"]) for i in page.evaluate(_IMAGES)}
    assert sorted(shown) == sorted(NAMES)
    assert all(w and w == 2 * h for w, h in shown.values()), shown
    out = Path(os.environ.get("DEPOT_SCREENSHOTS", str(tmp_path)))
    page.screenshot(path=str(out / "library-odd-names.png"))
    # When the card of "issue #12" is opened, Then the detail is that file's, with its picture
    page.locator("#models .model[data-relpath='issue #12.safetensors']").click()
    page.wait_for_selector("#detail h2")
    assert "loras/issue #12.safetensors" in page.locator("#detail dl").inner_text()
    wait_for(lambda: page.evaluate("(() => { const i = document.querySelector('#detail .detail-img');"
                                   " return i && i.complete && i.naturalWidth > 0 })()"), timeout=10,
             what="the detail picture")
    # And Delete removes exactly that file
    page.click("#detail button.danger")
    page.click("#confirm-ok")
    wait_for(lambda: page.locator("#models .model").count() == len(NAMES) - 1, timeout=10, what="the card gone")
    assert not (loras / "issue #12.safetensors").exists() and (loras / "what?.safetensors").exists()
    assert not failed, failed
