"""The queue as a person reads it, in Chromium: each task says when it started and finished and how long it took,
counts are human (files for a scan), the filter offers every state the server names, "Remove from list" is what
removing a task is called, and "Clear finished" clears finished tasks while the models they made stay. On a phone
(390×844) the queue stays compact."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.download_support import safetensors_bytes
from tests.support import wait_for
from tests.test_dashboard import Site, browser, open_view, page, site, task_row  # noqa: F401 - fixtures


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url})
    return settings_env


def test_the_queue_says_when_and_how_long_and_clears_what_is_finished(page: Any, site: Site, workers: Any,
                                                                      upstream: Any, settings: Any,
                                                                      browser: Any, tmp_path: Path) -> None:
    out = Path(os.environ.get("DEPOT_SCREENSHOTS", str(tmp_path)))
    url = upstream.add_direct("/files/ok.safetensors", safetensors_bytes(256 * 1024))
    workers(queues=["downloads", "scan"])
    open_view(page, site, "queue")
    done = site.api("POST", "/downloads", json={"url": url, "folder": "loras"})
    scan = site.api("POST", "/scans", json={"mode": "quick", "folder": "loras"})
    for task in (done, scan):
        page.wait_for_selector(f"#tasks li[data-task-id='{task['id']}'][data-state=succeeded]", timeout=30000)
    # Then each says when it ran and for how long
    meta = task_row(page, done["id"]).locator(".task-meta").inner_text()
    assert re.search(r"host testhost · [\d:]+(\s?[AP]M)? → [\d:]+(\s?[AP]M)? \(\d+s\)", meta), meta
    # And a scan counts files, not bytes
    assert task_row(page, scan["id"]).locator(".progress-text").inner_text() == "1 file"
    # And the filter offers every state the server names
    states = site.api("GET", "/vocabulary")["states"]
    options = page.locator("#queue-filter option").evaluate_all("os => os.map((o) => o.value)")
    assert options == ["", "active", *states]
    # And removing a task is called what it does
    assert task_row(page, done["id"]).locator("button[data-action=delete]").inner_text() == "Remove from list"
    page.screenshot(path=str(out / "queue-1280.png"))
    phone = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    try:
        open_view(phone, site, "queue")
        phone.wait_for_selector(f"#tasks li[data-task-id='{done['id']}']")
        phone.screenshot(path=str(out / "queue-390.png"))
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    finally:
        phone.context.close()
    # When "Clear finished" is pressed, Then the finished tasks leave the list and the server, the model stays
    page.click("#queue-clear")
    wait_for(lambda: page.locator("#tasks li").count() == 0, timeout=10, what="the list to clear")
    assert site.api("GET", "/tasks")["items"] == []
    assert (Path(settings.store) / "loras" / "ok.safetensors").is_file()
    assert page.locator("#queue-empty").is_visible()
