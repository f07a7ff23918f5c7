"""Keys in the dashboard, as a person meets them in Chromium: a download refused for want of a login shows, in
the queue, the server's message and a link that opens Settings; there a wrong key is said to be rejected beside
its field (and not saved), a right one accepted; the Settings view says when this browser needs a token."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.download_support import safetensors_bytes
from tests.test_dashboard import Site, browser, open_view, page, site, task_row  # noqa: F401 - fixtures

GOOD = "civitai-good-key-1234567"


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url})
    return settings_env


def test_a_login_refusal_leads_to_settings_where_the_key_is_checked(page: Any, site: Site, workers: Any,
                                                                     upstream: Any, tmp_path: Path) -> None:
    out = Path(os.environ.get("DEPOT_SCREENSHOTS", str(tmp_path)))
    upstream.add_civitai_model(5, "Locked", "LORA", versions=[{
        "id": 50, "name": "v1", "require_auth": True,
        "files": [{"id": 500, "name": "locked.safetensors", "data": safetensors_bytes(64 * 1024)}]}])
    upstream.civitai_tokens.add(GOOD)
    workers(queues=["downloads"])
    open_view(page, site, "queue")
    # Given a download Civitai refuses without a key
    task = site.api("POST", "/downloads", json={"url": f"{upstream.url}/models/5"})
    page.wait_for_selector(f"#tasks li[data-task-id='{task['id']}'][data-state=failed]", timeout=30000)
    error = task_row(page, task["id"]).locator(".task-error")
    assert "depot keys set civitai" in error.inner_text()
    page.screenshot(path=str(out / "queue-login-required-1280.png"))
    # When the user follows its link
    error.locator("a.settings-link").click()
    page.wait_for_selector("#view-settings:not([hidden])")
    assert "no access token" in page.locator("#token-need").inner_text()
    # And saves a wrong key: it is rejected beside the field, and nothing is saved
    page.fill("#key-civitai", "not-the-key-0000000")
    page.click("button[data-save=civitai]")
    said = page.locator("#check-civitai.rejected")
    said.wait_for(timeout=10000)
    assert said.inner_text().startswith("Rejected: Civitai rejected this key")
    assert page.locator("#mask-civitai").inner_text() == "not set"
    page.screenshot(path=str(out / "settings-key-rejected-1280.png"))
    # Then the right key is accepted and shown masked
    page.fill("#key-civitai", GOOD)
    page.click("button[data-save=civitai]")
    page.wait_for_function("() => document.getElementById('check-civitai').textContent.includes('accepted')",
                           timeout=10000)
    assert page.locator("#check-civitai").get_attribute("class") == "key-check muted"
    page.wait_for_function("() => document.getElementById('mask-civitai').textContent.startsWith('civi')",
                           timeout=10000)
    assert GOOD not in page.content()
