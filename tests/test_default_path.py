"""The README's path, as a user takes it: a fresh copy of the checkout, ``depot up`` (what ``make up`` runs)
started in it with no path setting at all — the store and the state are the defaults ``var/models`` and ``var``,
relative to the folder it was started in — models with PNG previews dropped into the default store, a scan with
the ``depot`` CLI, then the dashboard in Chromium: every card's picture loads, the detail view shows it, and a
download from the (fake) Civitai shows its progress and then its picture. Ctrl-C stops the whole stack and
leaves no process behind. Every other test sets absolute temporary paths, so this one is the only guard of the
defaults."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.download_support import safetensors_bytes
from tests.fake_upstream_fixture import upstream  # noqa: F401 - fixture
from tests.proc_tree import descendants, interrupt_tree, kill_tree
from tests.support import ROOT, VENV_BIN, base_env, free_port, wait_for

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RED, BLUE, GREEN = (220, 30, 30), (30, 30, 220), (30, 200, 30)

#: The centre pixel of an <img> as the browser decoded it (same origin, so the canvas is readable).
CENTRE_PIXEL = """(img) => {
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data.slice(0, 3));
}"""


def _copy_checkout(dest: Path) -> None:
    """What a fresh clone has: the tracked (and new, not ignored) files of this checkout — no .venv, no var/."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():  # a file deleted in the work tree is still listed as cached
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _png(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (96, 64), colour).save(buf, "PNG")
    return buf.getvalue()


def _close(seen: list[int], want: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 40 for a, b in zip(seen, want, strict=False))


def _images_loaded(pg: Any, selector: str) -> list[Any]:
    """Every <img> under ``selector`` once each has finished loading (broken ones have naturalWidth 0)."""
    imgs = pg.locator(selector)
    wait_for(lambda: imgs.count() and all(i.evaluate("(el) => el.complete") for i in imgs.all()), timeout=20,
             what=f"the images of {selector} to finish loading")
    widths = [i.evaluate("(el) => el.naturalWidth") for i in imgs.all()]
    assert all(w > 0 for w in widths), f"broken images under {selector}: naturalWidth {widths}"
    return imgs.all()


def test_make_up_defaults_show_every_preview(tmp_path: Path, upstream: Any) -> None:  # noqa: F811
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make test installs it)")
    # Given a fresh clone and `depot up` started in it exactly as `make up` does, with no path setting at all:
    # only free ports (so it runs beside other tests) and the fake upstream standing in for Civitai
    checkout = tmp_path / "checkout"
    _copy_checkout(checkout)
    ports = {"DEPOT_WEB_PORT": free_port(), "DEPOT_FLOWER_PORT": free_port(), "DEPOT_EMBEDDED_REDIS_PORT": free_port()}
    env = base_env({k: str(v) for k, v in ports.items()})
    env.update({"PYTHONPATH": str(checkout),  # the copy's own code, as its own `make up` would run it
                "DEPOT_ALLOW_PRIVATE_URLS": "1", "DEPOT_CIVITAI_URL": upstream.url, "HF_ENDPOINT": upstream.url,
                "DEPOT_SOFT_SHUTDOWN_S": "2"})
    web = f"http://127.0.0.1:{ports['DEPOT_WEB_PORT']}"
    log_path = tmp_path / "up.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([str(VENV_BIN / "depot"), "up"], env=env, cwd=checkout, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    stopped, tree = False, set()
    try:
        wait_for(lambda: requests.get(f"{web}/api/v1/health", timeout=2).json()["workers"], timeout=90,
                 what=f"a live worker in health; log: {log_path}")
        tree = descendants(proc.pid)
        # The store is where the README says: var/models in the folder `depot up` was started in
        store = checkout / "var" / "models"
        assert (store / "loras").is_dir() and (store / "checkpoints").is_dir()
        folders = {f["name"]: f["paths"] for f in requests.get(f"{web}/api/v1/folders", timeout=10).json()}
        assert folders["loras"][0] == str(store / "loras")

        # When the user drops two LoRAs with PNG previews (both names ComfyUI tools use) into the default store
        (store / "loras" / "ink_wash.safetensors").write_bytes(safetensors_bytes(4096, seed=1))
        (store / "loras" / "ink_wash.preview.png").write_bytes(_png(RED))
        (store / "loras" / "film_grain.safetensors").write_bytes(safetensors_bytes(4096, seed=2))
        (store / "loras" / "film_grain.png").write_bytes(_png(BLUE))
        # And scans with the CLI from the same folder
        scan = subprocess.run([str(VENV_BIN / "depot"), "scan", "--wait"], env={**env, "DEPOT_URL": web},
                              cwd=checkout, capture_output=True, text=True, timeout=120)
        assert scan.returncode == 0, scan.stdout + scan.stderr

        upstream.add_civitai_model(7, "Green Ink", "LORA", versions=[{
            "id": 70, "name": "v1", "trainedWords": ["green ink"],
            "files": [{"id": 700, "name": "green_ink.safetensors", "data": safetensors_bytes(3 * 1024 * 1024)}],
            "images": [{"data": _png(GREEN), "ext": "png", "nsfwLevel": 1}]}])
        upstream.fault("civitai:file:700", "slow", bytes_per_s=1024 * 1024)  # slow enough to watch it move

        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            pg = context.new_page()
            js_errors: list[str] = []
            bad: list[str] = []
            pg.on("pageerror", lambda exc: js_errors.append(str(exc)))
            pg.on("response", lambda r: bad.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            try:
                # Then the library shows both cards, each with its own picture
                pg.goto(f"{web}/#library")
                pg.wait_for_selector("body[data-ready='1']")
                wait_for(lambda: pg.locator("#models .model").count() == 2, timeout=20, what="two model cards")
                _images_loaded(pg, "#models .model img")
                for relpath, colour in (("ink_wash.safetensors", RED), ("film_grain.safetensors", BLUE)):
                    seen = pg.locator(f"#models .model[data-relpath='{relpath}'] img").evaluate(CENTRE_PIXEL)
                    assert _close(seen, colour), (relpath, seen)
                # And the detail view shows the preview
                pg.locator("#models .model[data-relpath='ink_wash.safetensors']").click()
                pg.wait_for_selector("#detail h2")
                (detail,) = _images_loaded(pg, "#detail img.detail-img")
                assert _close(detail.evaluate(CENTRE_PIXEL), RED), detail.evaluate(CENTRE_PIXEL)
                pg.keyboard.press("Escape")

                # When a model is downloaded from Civitai through the dashboard
                pg.goto(f"{web}/#add")
                pg.fill("#url", f"{upstream.url}/models/7")
                pg.click("#resolve-form button[type=submit]")
                pg.wait_for_selector("#add-start")
                pg.click("#add-start")
                pg.wait_for_url("**/#queue")
                # (the download's row: the scan's is there already)
                row = pg.locator("#tasks li", has_text="green_ink").first
                row.wait_for()
                # Then its progress moves live, and it finishes
                wait_for(lambda: float(row.locator("progress").get_attribute("value") or 0) > 0, timeout=30,
                         what="the download's progress bar to move")
                task_id = row.get_attribute("data-task-id")
                pg.wait_for_selector(f"#tasks li[data-task-id='{task_id}'][data-state=succeeded]", timeout=60000)
                # And the library (reloaded: it does not refresh itself on a finished download) shows it with
                # the picture Civitai has for it
                pg.goto(f"{web}/#library")
                pg.reload()
                pg.wait_for_selector("body[data-ready='1']")
                wait_for(lambda: pg.locator("#models .model").count() == 3, timeout=20, what="three model cards")
                _images_loaded(pg, "#models .model img")
                new = pg.locator("#models .model[data-relpath='green_ink.safetensors'] img")
                assert _close(new.evaluate(CENTRE_PIXEL), GREEN), new.evaluate(CENTRE_PIXEL)
                pg.screenshot(path=str(tmp_path / "library.png"))
            finally:
                context.close()
                browser.close()
        assert not js_errors, f"JavaScript errors on the page: {js_errors}"
        assert not bad, f"requests that failed: {bad}"
        # The thumbnail cache is under var/ of the folder `depot up` was started in, and nowhere else
        assert list((checkout / "var" / "thumbs").rglob("*.webp"))
        assert not (checkout / "web" / "var").exists()

        # When Ctrl-C reaches `depot up`, Then the whole stack stops by itself and leaves no process
        assert len(tree) >= 5
        left = interrupt_tree(proc, timeout=60)
        stopped = True
        assert left == [], f"still running after Ctrl-C: {left}; log: {log_path}"
    finally:
        if not stopped:
            kill_tree(proc, tree | descendants(proc.pid))
        log.close()
    assert "Traceback" not in log_path.read_text(errors="replace"), f"a traceback in {log_path}"
