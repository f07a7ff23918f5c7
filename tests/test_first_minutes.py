"""A newcomer's first minutes in the dashboard (Chromium against the real app, Redis and a worker): a banner says
why jobs would wait while no worker runs and goes once one starts; an empty store says what to do and its
button scans the store, after which the library lists the files."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.support import wait_for
from tests.test_dashboard import Site, _tiny_safetensors, browser, open_view, page, site  # noqa: F401 - fixtures


def test_no_worker_banner_then_empty_library_scan_button(page: Any, site: Site, workers: Any, settings: Any,
                                                          tmp_path: Path) -> None:
    # Given a store with files nobody has scanned yet, and no worker running
    loras = Path(settings.store) / "loras"
    loras.mkdir(parents=True, exist_ok=True)
    for name in ("first", "second"):
        (loras / f"{name}.safetensors").write_bytes(_tiny_safetensors())
    # When the dashboard opens
    open_view(page, site, "library")
    # Then a banner says jobs will wait and how to start a worker
    banner = page.locator("#health-banner")
    banner.wait_for(state="visible", timeout=10000)
    assert "No worker is running" in banner.inner_text() and "depot worker" in banner.inner_text()
    assert banner.locator("code").all_inner_texts() == ["depot worker", "make up"]
    # And the empty library says what to do, naming the store
    empty = page.locator("#library-empty")
    empty.wait_for(state="visible")
    text = empty.inner_text()
    assert "Add a model" in text and "DEPOT_STORE" in text and str(settings.store) in text
    out = Path(os.environ.get("DEPOT_SCREENSHOTS", str(tmp_path)))
    page.screenshot(path=str(out / "first-minutes-empty-1280.png"))
    # When a worker starts, Then the banner goes away by itself
    workers()
    banner.wait_for(state="hidden", timeout=30000)
    # When the user presses the scan button, Then the files are listed without a reload
    page.click("#empty-scan")
    wait_for(lambda: page.locator("#models .model").count() == 2, timeout=30, what="two scanned models")
    assert page.locator("#library-empty").is_hidden()
    assert "2 models" in page.locator("#library-status").inner_text()


def test_hosts_view_offers_each_hosts_comfyui_config(page: Any, site: Site, workers: Any) -> None:
    # Given a worker on gpu7
    workers(host="gpu7")
    open_view(page, site, "hosts")
    link = page.locator(".host h3 a", has_text="extra_model_paths.yaml").first
    link.wait_for(timeout=20000)
    # When the user downloads gpu7's extra_model_paths.yaml
    with page.expect_download() as info:
        link.click()
    text = Path(info.value.path()).read_text()
    # Then it is that host's ComfyUI config; the second link makes the store ComfyUI's first path
    assert "for host gpu7" in text and "is_default: false" in text
    assert "default=1" in page.locator(".host h3 a").nth(1).get_attribute("href")
