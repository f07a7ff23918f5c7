"""A download over several connections in the queue, in Chromium: one bar for the whole file, the number of
connections in its text, and a strip showing where each connection is in the file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.download_support import safetensors_bytes
from tests.support import wait_for
from tests.test_dashboard import Site, browser, open_view, page, site, task_row  # noqa: F401 - fixtures

MIB = 1024 * 1024


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_DOWNLOAD_CONNECTIONS": "4", "DEPOT_SEGMENT_BYTES": str(MIB),
                         "DEPOT_CHUNK_BYTES": str(64 * 1024)})
    return settings_env


def test_the_queue_shows_one_bar_and_the_connections_of_a_segmented_download(page: Any, site: Site, workers: Any,
                                                                             upstream: Any, tmp_path: Path) -> None:
    out = Path(os.environ.get("DEPOT_SCREENSHOTS", str(tmp_path)))
    data = safetensors_bytes(12 * MIB)
    url = upstream.add_direct("/files/wide.safetensors", data)
    upstream.fault("/files/wide.safetensors", "slow", bytes_per_s=400_000, times=None)
    workers(queues=["downloads"])
    open_view(page, site, "queue")
    task = site.api("POST", "/downloads", json={"url": url, "folder": "loras"})
    row = task_row(page, task["id"])
    wait_for(lambda: "4 connections" in row.locator(".progress-text").inner_text(), timeout=30,
             what="the connections in the progress text")
    assert row.locator("progress").count() == 1
    wait_for(lambda: row.locator(".segments .segment").count() >= 2, timeout=10, what="the segment strip")
    # each segment sits where it lies in the file
    lefts = row.locator(".segments .segment").evaluate_all("ss => ss.map((s) => parseFloat(s.style.left))")
    assert lefts == sorted(lefts) or len(set(lefts)) == len(lefts)
    assert all(0 <= x < 100 for x in lefts), lefts
    page.screenshot(path=str(out / "queue-segments-1280.png"))
    upstream.clear_faults()
    page.wait_for_selector(f"#tasks li[data-task-id='{task['id']}'][data-state=succeeded]", timeout=60000)
    assert row.locator(".segments").is_hidden()
