"""The Workflows view in Chromium, as a person uses it: drop a PNG that ComfyUI saved on the page, see the two
models it needs marked missing, press "Download missing", and watch them turn present while the workers fetch
them from the fake upstream."""
from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from tests.test_dashboard import Site, browser, open_view, page, site  # noqa: F401 - fixtures
from tests.test_workflow_fetch import fleet, served_files, settings_env, workflow  # noqa: F401 - fixture
from tests.workflow_support import comfy_png

DROP = """([name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name, { type: "image/png" }));
  return dt;
}"""


def test_drop_a_workflow_png_download_missing_and_watch_them_turn_present(page: Any, site: Site, workers: Any,
                                                                          upstream: Any, settings: Any,
                                                                          tmp_path: Path) -> None:
    # Given a workflow PNG whose two models the store lacks, and a GPU host's workers
    files = served_files(upstream, seed=31)
    for f in files.values():
        upstream.fault(f["path"], "slow", bytes_per_s=2 * 1024 * 1024)
    fleet(workers)
    png = comfy_png(workflow(files), None)
    open_view(page, site, "workflows")
    # When the user drops it on the page
    dt = page.evaluate_handle(DROP, ["portrait.png", base64.b64encode(png).decode()])
    page.dispatch_event("#wf-drop", "drop", {"dataTransfer": dt})
    # Then both models are listed as missing, and the workflow is not ready on gpu1
    rows = page.locator(".wf-table tbody tr")
    rows.first.wait_for(timeout=20000)
    assert rows.count() == 2
    assert [rows.nth(i).get_attribute("data-state") for i in range(2)] == ["missing", "missing"]
    assert "2 missing" in page.locator("#wf-status").inner_text()
    assert "Ready on: no host" in page.locator("#wf-status").inner_text()
    out = Path(os.environ.get("DEPOT_SCREENSHOTS", str(tmp_path)))
    page.screenshot(path=str(out / "workflow-missing-1280.png"))
    # When they press "Download missing"
    page.click("#wf-fetch")
    # Then the fetch shows progress, and both rows turn present, the workflow ready on gpu1
    page.locator("#wf-task").wait_for(timeout=20000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.wf-table tbody tr')].every((r) => r.dataset.state === 'present')",
        timeout=60000)
    page.wait_for_function("() => document.getElementById('wf-status').textContent.includes('Ready on: gpu1')",
                           timeout=20000)
    assert page.locator(".wf-table td[data-host='gpu1']").all_inner_texts() == ["yes", "yes"]
    # The rows turn present as each download lands; the workflow task itself ends a poll later
    page.wait_for_function("() => document.getElementById('wf-task')?.textContent.startsWith('Fetch succeeded')",
                           timeout=30000)
    page.screenshot(path=str(out / "workflow-present-1280.png"))
    for name, f in files.items():
        assert (Path(settings.store) / f["folder"] / name).read_bytes() == f["data"]
