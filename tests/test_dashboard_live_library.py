"""The library keeps itself current in Chromium, with no reload: a scan's new model appears, a model another
client deletes disappears (the count with it), and an open detail of a model moved elsewhere says so."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.support import wait_for
from tests.test_dashboard import Site, _tiny_safetensors, browser, open_view, page, site  # noqa: F401 - fixtures
from tests.test_scan import scan


def test_the_library_follows_scans_deletes_and_moves_live(page: Any, site: Site, settings: Any,
                                                          tmp_path: Path) -> None:
    loras = Path(settings.store) / "loras"
    loras.mkdir(parents=True, exist_ok=True)
    for name in ("alpha", "beta"):
        (loras / f"{name}.safetensors").write_bytes(_tiny_safetensors())
    scan(settings, folder="loras")
    open_view(page, site, "library")
    page.click(".folder-tab[data-folder=loras]")
    cards = page.locator("#models .model")
    wait_for(lambda: cards.count() == 2, timeout=10, what="two models")
    # The folder chips count their models; empty folders wait behind a toggle
    assert page.locator(".folder-tab[data-folder=loras] .count").inner_text() == "2"
    assert page.locator(".folder-tab[data-folder=vae]").count() == 0
    page.click(".folder-toggle")
    assert page.locator(".folder-tab[data-folder=vae] .count").inner_text() == "0"
    page.click(".folder-toggle")
    assert page.locator(".folder-tab[data-folder=vae]").count() == 0
    page.click("#models .model[data-relpath='alpha.safetensors']")
    page.wait_for_selector("#detail h2")
    page.evaluate("window.notReloaded = true")
    # When a scan elsewhere finds a new file, Then its card appears
    (loras / "gamma.safetensors").write_bytes(_tiny_safetensors())
    scan(settings, folder="loras")
    wait_for(lambda: cards.count() == 3, timeout=10, what="the scanned model to appear")
    assert page.locator("#library-status").inner_text() == "3 models"
    wait_for(lambda: page.locator(".folder-tab[data-folder=loras] .count").inner_text() == "3", timeout=10,
             what="the chip's count")
    # When another client deletes one, Then its card goes, and the count with it
    site.api("DELETE", "/models/loras/0/beta.safetensors")
    wait_for(lambda: cards.count() == 2, timeout=10, what="the deleted model to go")
    assert page.locator("#models .model[data-relpath='beta.safetensors']").count() == 0
    assert page.locator("#library-status").inner_text() == "2 models"
    # When the model whose detail is open is moved, Then the detail says so and the card moves
    site.api("PATCH", "/models/loras/0/alpha.safetensors",
             json={"move_to": {"folder": "loras", "path_index": 0, "relpath": "styles/alpha.safetensors"}})
    page.wait_for_function("() => document.getElementById('detail').textContent.includes('no longer in the store')",
                           timeout=10000)
    wait_for(lambda: page.locator("#models .model[data-relpath='styles/alpha.safetensors']").count() == 1,
             timeout=10, what="the moved card")
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=str(Path(os.environ.get("DEPOT_SCREENSHOTS", str(tmp_path))) / "library-live-1280.png"))
