"""The Add model lookup card in Chromium against the fake Civitai: it shows the preview, base model, trigger words,
the versions and files with sizes, and where the file will be saved (following the folder and name fields); a
version that needs a login, or is in early access, is said before anything is queued, with a way to Settings."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.download_support import jpeg_bytes, safetensors_bytes
from tests.test_dashboard import Site, browser, open_view, page, site  # noqa: F401 - fixtures


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url})
    return settings_env


def _model(upstream: Any, model_id: int, **version: Any) -> str:
    upstream.add_civitai_model(model_id, "Paper Cut", "LORA", versions=[{
        "id": model_id * 10, "name": "v2", "baseModel": "SDXL 1.0", "trainedWords": ["papercut", "layered paper"],
        **version, "files": [{"id": model_id * 100, "name": "papercut.safetensors",
                              "data": safetensors_bytes(300 * 1024)}],
        "images": [{"data": jpeg_bytes(), "nsfwLevel": 1}]}])
    return f"{upstream.url}/models/{model_id}"


def _look_up(page: Any, site: Site, url: str) -> Any:
    open_view(page, site, "add")
    page.fill("#url", url)
    page.press("#url", "Enter")
    page.wait_for_selector("#add-start")
    return page.locator("#resolve-result")


def test_the_lookup_card_shows_the_model_and_where_it_goes(page: Any, site: Site, upstream: Any,
                                                            tmp_path: Path) -> None:
    # (pasted without its scheme, as an address bar that hides it gives it)
    card = _look_up(page, site, _model(upstream, 3).split("://", 1)[1])
    preview = page.locator(".lookup-preview")
    assert preview.get_attribute("src").startswith("data:image/webp;base64,")  # nothing loaded from elsewhere
    assert preview.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    facts = card.locator(".lookup-facts").inner_text()
    assert "SDXL 1.0" in facts and "papercut, layered paper" in facts
    assert "papercut.safetensors" in card.locator(".files").inner_text() and "KB" in card.locator(".files").inner_text()
    assert page.locator("#add-dest").inner_text() == "Saves loras/papercut.safetensors"
    page.fill("#add-filename", "paper-v2.safetensors")
    assert page.locator("#add-dest").inner_text() == "Saves loras/paper-v2.safetensors"
    assert card.locator(".access-warning").count() == 0
    page.screenshot(path=str(Path(os.environ.get("DEPOT_SCREENSHOTS", str(tmp_path))) / "add-lookup-1280.png"))


@pytest.mark.parametrize("flag,code,said", [("require_auth", "login_required", "requires a login"),
                                            ("early_access", "early_access", "Early Access")])
def test_a_login_or_early_access_is_said_before_the_download(page: Any, site: Site, upstream: Any, flag: str,
                                                              code: str, said: str) -> None:
    card = _look_up(page, site, _model(upstream, 4, **{flag: True}))
    warning = card.locator(f".access-warning[data-code={code}]")
    assert said in warning.inner_text()
    assert warning.locator("a.settings-link").count() == (1 if code == "login_required" else 0)
    assert site.api("GET", "/tasks")["items"] == []
