"""One name for one thing, in Chromium against a real worker and the fake Civitai: the file name a user chose is
the model's name in the queue, the card and the CLI's echo; a download checked against Civitai's SHA256 shows the
verdict "ok (SHA256 matches Civitai)" in its detail; cards with the same name say which file each is."""
from __future__ import annotations

from typing import Any

import pytest

from tests.download_support import safetensors_bytes
from tests.support import wait_for
from tests.test_dashboard import Site, browser, open_view, page, site, task_row  # noqa: F401 - fixtures


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url})
    return settings_env


def test_the_chosen_name_is_the_models_name_and_a_checked_download_is_verified(page: Any, site: Site,
                                                                              workers: Any, upstream: Any) -> None:
    for model_id, data_seed in ((7, 1), (8, 2)):
        upstream.add_civitai_model(model_id, "Ink Lines", "LORA", versions=[{
            "id": model_id * 10, "name": "v1",
            "files": [{"id": model_id * 100, "name": f"ink{model_id}.safetensors",
                       "data": safetensors_bytes(4096, seed=data_seed)}]}])
    workers(queues=["downloads"])
    open_view(page, site, "queue")
    # When one is downloaded under a name the user chose, and the other as it comes
    chosen = site.api("POST", "/downloads", json={"url": f"{upstream.url}/models/7", "filename": "my-ink.safetensors"})
    plain = site.api("POST", "/downloads", json={"url": f"{upstream.url}/models/8"})
    # Then the queue names them by the chosen name and by the model's own name, never by the link
    for task, label in ((chosen, "my-ink → loras"), (plain, "Ink Lines → loras")):
        page.wait_for_selector(f"#tasks li[data-task-id='{task['id']}'][data-state=succeeded]", timeout=30000)
        assert task_row(page, task["id"]).locator(".label").inner_text() == label
    # And the library shows the chosen name (and no file names: the two names differ)
    open_view(page, site, "library")
    page.click(".folder-tab[data-folder=loras]")
    cards = page.locator("#models .model")
    wait_for(lambda: cards.count() == 2, timeout=10, what="two models")
    assert sorted(cards.locator(".name").all_inner_texts()) == ["Ink Lines", "my-ink"]
    assert cards.locator(".file").count() == 0
    # And both carry the verified badge (their bytes were checked against Civitai's SHA256 on the way in)
    assert cards.locator(".badge.verified").all_inner_texts() == ["✓ verified", "✓ verified"]
    # And the detail says the download was verified against Civitai's hash
    page.click("#models .model[data-relpath='my-ink.safetensors']")
    page.wait_for_selector("#detail dl")
    assert "ok (SHA256 matches Civitai)" in page.locator("#detail dl").inner_text()


def test_cards_with_one_name_show_their_files(page: Any, site: Site, settings: Any) -> None:
    from pathlib import Path

    from tests.test_dashboard import _tiny_safetensors
    from tests.test_scan import scan
    loras = Path(settings.store) / "loras"
    for sub in ("sd15", "sdxl"):
        (loras / sub).mkdir(parents=True, exist_ok=True)
        (loras / sub / "detail.safetensors").write_bytes(_tiny_safetensors())
    scan(settings, folder="loras")
    open_view(page, site, "library")
    page.click(".folder-tab[data-folder=loras]")
    wait_for(lambda: page.locator("#models .model").count() == 2, timeout=10, what="two models")
    assert sorted(page.locator("#models .model .file").all_inner_texts()) == ["sd15/detail.safetensors",
                                                                            "sdxl/detail.safetensors"]
