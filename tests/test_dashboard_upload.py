"""Uploading a 200 MiB model from the browser (Add model), in Chromium: the folder suggested from the file's own
header, the upload cut off half-way (the connection drops) and resumed from where the server stands by picking
the file again, then the model listed with its hashes; nothing under its name until it was complete."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from shared.media.hashing import hash_file
from tests.support import wait_for
from tests.test_dashboard import Site, browser, open_view, page, site  # noqa: F401 - fixtures
from tests.test_safetensors_kind import LORA_SDXL, sparse_safetensors

MIB = 1024 * 1024


def test_upload_200_mib_cut_off_and_resumed(page: Any, site: Site, settings: Any, tmp_path: Path) -> None:
    out = Path(os.environ.get("DEPOT_SCREENSHOTS", str(tmp_path)))
    big = tmp_path / "neon_xl.safetensors"
    sparse_safetensors(big, {**LORA_SDXL, "pad": [100 * MIB]})  # F16: 200 MiB of weights
    assert big.stat().st_size > 200 * MIB
    target = Path(settings.store) / "loras" / "styles" / "neon_xl.safetensors"
    open_view(page, site, "add")
    # When a file is chosen, its header says what it is and where it goes
    page.locator("#upload-file").set_input_files(str(big))
    page.locator("#upload-kind", has_text="This is a LoRA for SDXL 1.0: it goes in loras").wait_for()
    assert page.locator("#upload-folder").input_value() == "loras"
    assert page.locator("#upload-name").input_value() == "neon_xl.safetensors"
    page.fill("#upload-subfolder", "styles")
    # And the connection drops after three chunks
    sent = []

    def drop_after_three(route: Any) -> None:
        if route.request.method == "PATCH":
            sent.append(1)
            if len(sent) > 3:
                route.abort()
                return
        route.continue_()

    page.route("**/api/v1/uploads/*", drop_after_three)
    page.click("#upload-start")
    page.locator("#upload-status", has_text="connection to the server was lost").wait_for(timeout=30000)
    # Then nothing is under the model's name yet
    assert not target.exists()
    page.unroute("**/api/v1/uploads/*")
    # When the same file is picked again, the page says it resumes, and the upload goes on from the server's offset
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.locator("#upload-file").set_input_files(str(big))
    page.locator("#upload-status", has_text="Upload resumes it").wait_for()
    page.fill("#upload-subfolder", "styles")
    resumed = []
    page.on("request", lambda r: resumed.append(r.headers.get("upload-offset")) if r.method == "PATCH" else None)
    page.click("#upload-start")
    page.locator(".toast", has_text="Uploaded loras/styles/neon_xl.safetensors").wait_for(timeout=120000)
    assert resumed and int(resumed[0]) == 3 * 8 * MIB  # the first three chunks were not sent again
    page.screenshot(path=str(out / "upload-1280.png"))
    # And the model is listed, with the hashes of its bytes
    assert target.read_bytes() == big.read_bytes()
    page.click(".tabs a[data-view=library]")
    page.click(".folder-tab[data-folder=loras]")
    wait_for(lambda: page.locator("#models .model", has_text="neon_xl").count() == 1, timeout=10, what="listed")
    page.locator("#models .model", has_text="neon_xl").click()
    page.locator("#detail h2", has_text="neon_xl").wait_for()
    shown = page.locator("#detail dl").inner_text()
    hashes = hash_file(target)
    assert hashes["SHA256"] in shown and hashes["BLAKE3"] in shown and hashes["AutoV3"] in shown
    assert "LoRA" in shown and "SDXL 1.0" in shown


def test_the_folder_list_is_there_when_the_page_opens_on_add(page: Any, site: Site) -> None:
    open_view(page, site, "add")
    wait_for(lambda: page.locator("#upload-folder option").count() > 10, timeout=10, what="the folders")
    assert page.locator("#upload-folder").input_value() == "checkpoints"
