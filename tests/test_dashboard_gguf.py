"""GGUFs in the dashboard (Chromium via Playwright, the real stack): GGUFs found in ``checkpoints`` carry a badge
and their detail a one-click move to the folder ComfyUI-GGUF reads them from; adding a Civitai GGUF
"Checkpoint" shows the folder it will go to and leaves the choice to the server unless the user picks one."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.download_support import civitai_at_upstream, real_gguf  # noqa: F401 - the fixture
from tests.support import wait_for
from tests.test_dashboard import Site, browser, open_view, page, site  # noqa: F401 - fixtures

pytest.importorskip("playwright.sync_api")


def _shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("DEPOT_SCREENSHOTS", str(tmp_path)))


def _card(pg: Any, relpath: str) -> Any:
    return pg.locator(f"#models .model[data-relpath='{relpath}']")


def test_gguf_in_checkpoints_has_a_badge_and_a_one_click_move(page: Any, site: Site, workers: Any, settings: Any,
                                                               tmp_path: Path) -> None:
    # Given a quantized Flux and a T5 encoder GGUF left in checkpoints, next to a real checkpoint, and a scan
    store = Path(settings.store)
    (store / "checkpoints").mkdir(parents=True, exist_ok=True)
    real_gguf(store / "checkpoints" / "flux1-dev-Q4_K_S.gguf", "flux")
    real_gguf(store / "checkpoints" / "t5-v1_1-xxl-encoder-Q5_K_M.gguf", "t5encoder", tokens=100)
    (store / "checkpoints" / "sd15.ckpt").write_bytes(b"PK\x03\x04" + b"\0" * 60)
    workers()
    scan = site.api("POST", "/scans", json={"mode": "quick"})
    wait_for(lambda: site.api("GET", f"/tasks/{scan['id']}")["state"] == "succeeded", timeout=30, what="the scan")
    # When the user opens the checkpoints folder
    open_view(page, site, "library")
    page.click(".folder-tab[data-folder=checkpoints]")
    wait_for(lambda: page.locator("#models .model").count() == 3, timeout=10, what="three models")
    # Then each GGUF carries a badge naming the folder it belongs in, the checkpoint none
    assert _card(page, "flux1-dev-Q4_K_S.gguf").locator(".misplaced").inner_text() == "⚠ belongs in diffusion_models"
    assert _card(page, "t5-v1_1-xxl-encoder-Q5_K_M.gguf").locator(".misplaced").inner_text() == \
        "⚠ belongs in text_encoders"
    assert _card(page, "sd15.ckpt").locator(".misplaced").count() == 0
    page.screenshot(path=str(_shots(tmp_path) / "gguf-badges.png"))
    # When the Flux GGUF's detail is opened, Then it says why and offers the move
    _card(page, "flux1-dev-Q4_K_S.gguf").click()
    note = page.locator("#detail .misplaced-note")
    note.wait_for()
    assert "checkpoint loaders do not read .gguf" in note.inner_text()
    assert page.locator("#move-suggested").inner_text() == "Move to diffusion_models"
    page.screenshot(path=str(_shots(tmp_path) / "gguf-detail.png"))
    # When the user clicks it once
    page.click("#move-suggested")
    # Then the file and its sidecars move to diffusion_models (models/unet), and the detail shows it there, unflagged
    wait_for(lambda: "diffusion_models/flux1-dev-Q4_K_S.gguf" in page.locator("#detail dl").inner_text(),
             timeout=10, what="the detail of the moved model")
    assert page.locator("#detail .misplaced-note").count() == 0
    assert (store / "unet" / "flux1-dev-Q4_K_S.gguf").is_file()
    assert not (store / "checkpoints" / "flux1-dev-Q4_K_S.gguf").exists()
    moved = site.api("GET", "/models?folder=diffusion_models")["items"]
    assert [(m["relpath"], m["misplaced"]) for m in moved] == [("flux1-dev-Q4_K_S.gguf", None)]
    wait_for(lambda: page.locator("#models .model").count() == 2, timeout=10, what="the card to leave checkpoints")


def test_adding_a_gguf_checkpoint_leaves_the_folder_to_the_server(page: Any, site: Site, workers: Any,
                                                                  settings: Any, upstream: Any,
                                                                  tmp_path: Path) -> None:
    # Given a quantized Flux published on Civitai as a "Checkpoint"
    data = real_gguf(tmp_path / "src.gguf", "flux").read_bytes()
    upstream.add_civitai_model(51, "Flux Dev GGUF", "Checkpoint", versions=[{
        "id": 510, "name": "Q4_K_S", "files": [{"id": 5100, "name": "fluxDevGGUF_q4KS.gguf", "data": data,
                                                 "metadata": {"format": "GGUF", "size": None, "fp": None}}]}])
    workers()
    # When the user looks it up
    open_view(page, site, "add")
    page.fill("#url", f"{upstream.url}/models/51")
    page.click("#resolve-form button[type=submit]")
    page.wait_for_selector("#add-start")
    # Then the folder shown is where ComfyUI-GGUF reads it, with a word on how GGUFs are placed
    assert page.input_value("#add-folder") == "diffusion_models"
    assert page.locator("#add-folder-hint").is_visible()
    page.screenshot(path=str(_shots(tmp_path) / "gguf-add.png"))
    # When the download is started without touching the folder
    page.click("#add-start")
    page.wait_for_url("**/#queue")
    task = wait_for(lambda: site.api("GET", "/tasks?kind=download")["items"], timeout=10, what="the task")[0]
    # Then the server chose the folder (none was sent), and the file is in diffusion_models
    assert task["params"]["folder"] is None
    done = wait_for(lambda: (t := site.api("GET", f"/tasks/{task['id']}"))["state"] == "succeeded" and t,
                    timeout=30, what="the download")
    assert done["result"]["model"]["folder"] == "diffusion_models"
    assert (Path(settings.store) / "unet" / "fluxDevGGUF_q4KS.gguf").read_bytes() == data
