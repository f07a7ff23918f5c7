"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against the real stack: the app over
HTTP on loopback, a real worker subprocess, real Redis and the fake upstream. Library and search, a download
whose progress bar moves to done without a reload, pause/resume, reload mid-download, a failed download's
message, masked keys, and the token prompt."""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from tests.fake_upstream_fixture import upstream  # noqa: F401 - fixture
from tests.support import free_port, wait_for

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MB = 1_000_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make test installs it)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


class Site:
    def __init__(self, application: Any) -> None:
        self.app = application
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, application, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}"

    def api(self, method: str, path: str, **kw: Any) -> Any:
        resp = requests.request(method, f"{self.url}/api/v1{path}", timeout=10, **kw)
        assert resp.status_code < 400, resp.text
        return resp.json() if resp.content else None

    def stop(self) -> None:
        self.server.shutdown()
        relay = self.app.extensions["depot"].relay
        if relay is not None:
            relay.stop()
        self.server.server_close()


@pytest.fixture
def site(app: Any) -> Iterator[Site]:
    s = Site(app)
    yield s
    s.stop()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def open_view(pg: Any, site: Site, view: str) -> None:
    pg.goto(f"{site.url}/#{view}")
    pg.wait_for_selector("body[data-ready='1']")


def task_row(pg: Any, task_id: str) -> Any:
    return pg.locator(f"#tasks li[data-task-id='{task_id}']")


def progress_value(pg: Any, task_id: str) -> float:
    return float(task_row(pg, task_id).locator("progress").get_attribute("value") or 0)


def test_download_progress_pause_resume_and_reload(page: Any, site: Site, workers: Any, upstream: Any) -> None:
    # Given a worker reading in small chunks and a 4 MB file the upstream serves slowly (progress is visible)
    workers(env={"DEPOT_CHUNK_BYTES": "65536"})
    url = upstream.add_direct("/files/slow_model.safetensors", _tiny_safetensors(4 * MB))
    upstream.fault("/files/slow_model.safetensors", "slow", bytes_per_s=500_000)
    # When the user pastes the URL, looks it up and starts the download
    open_view(page, site, "add")
    page.fill("#url", url)
    page.click("#resolve-form button[type=submit]")
    page.wait_for_selector("#add-start")
    assert page.input_value("#add-filename") == "slow_model.safetensors"
    page.click("#add-start")
    # Then the queue shows it, with a progress bar that moves without reloading
    page.wait_for_url("**/#queue")
    row = page.locator("#tasks li").first
    row.wait_for()
    task_id = row.get_attribute("data-task-id")
    wait_for(lambda: progress_value(page, task_id) > 0, timeout=20, what="the progress bar to move")
    first = progress_value(page, task_id)
    wait_for(lambda: progress_value(page, task_id) > first, timeout=20, what="more progress, live")
    wait_for(lambda: "B/s · ETA" in task_row(page, task_id).locator(".progress-text").inner_text(), timeout=10,
             what="speed and ETA")
    # When the page is reloaded mid-download, Then the state and progress are still there
    seen = progress_value(page, task_id)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    task_row(page, task_id).wait_for()
    assert task_row(page, task_id).get_attribute("data-state") == "running"
    assert progress_value(page, task_id) >= seen
    # When the user pauses it, Then it shows paused
    task_row(page, task_id).locator("button[data-action=pause]").click()
    page.wait_for_selector(f"#tasks li[data-task-id='{task_id}'][data-state=paused]", timeout=20000)
    # And when resumed it runs to done, live
    upstream.clear_faults()
    upstream.fault("/files/slow_model.safetensors", "slow", bytes_per_s=2_000_000)
    task_row(page, task_id).locator("button[data-action=resume]").click()
    page.wait_for_selector(f"#tasks li[data-task-id='{task_id}'][data-state=succeeded]", timeout=30000)
    assert task_row(page, task_id).locator(".progress-text").inner_text().startswith("100%")
    assert site.api("GET", f"/tasks/{task_id}")["state"] == "succeeded"


def test_failed_download_shows_its_message(page: Any, site: Site, workers: Any, upstream: Any) -> None:
    # Given a link that answers with an HTML login page instead of the model
    workers()
    url = upstream.add_direct("/files/broken.safetensors", b"\0" * 200_000)
    upstream.fault("/files/broken.safetensors", "html", times=None)
    open_view(page, site, "queue")
    # When a download of it is started
    task = site.api("POST", "/downloads", json={"url": url, "folder": "loras"})
    # Then the queue shows it failed, with the error code and the server's message
    page.wait_for_selector(f"#tasks li[data-task-id='{task['id']}'][data-state=failed]", timeout=30000)
    final = site.api("GET", f"/tasks/{task['id']}")
    shown = task_row(page, task["id"]).locator(".task-error").inner_text()
    assert final["error"]["code"] in shown and final["error"]["message"][:40] in shown
    assert task_row(page, task["id"]).locator("button[data-action=retry]").is_visible()


def test_library_scan_search_and_detail(page: Any, site: Site, workers: Any, settings: Any) -> None:
    # Given a store with a few LoRA files
    loras = Path(settings.store) / "loras"
    loras.mkdir(parents=True, exist_ok=True)
    for name in ("detail_tweaker_xl", "add_detail", "film_grain", "pixel_art_style"):
        (loras / f"{name}.safetensors").write_bytes(_tiny_safetensors())
    os.symlink("detail_tweaker_xl.safetensors", loras / "favourite.safetensors")
    workers()
    # When the user starts a quick scan from Maintenance, Then it runs to success live
    open_view(page, site, "maintenance")
    page.select_option("#maint-folder", "loras")
    page.click("button[data-job=scan-quick]")
    page.wait_for_selector("#maint-tasks li[data-state=succeeded]", timeout=30000)
    done = page.locator("#maint-tasks li[data-state=succeeded]").first.inner_text()
    assert "4 models: 4 added, 0 changed, 0 removed, 4 hashed." in done, done
    assert "1 symbolic link not followed (loras/favourite.safetensors)" in done, done
    # And the library lists them; typing filters as you type
    page.click(".tabs a[data-view=library]")
    page.click(".folder-tab[data-folder=loras]")
    wait_for(lambda: page.locator("#models .model").count() == 4, timeout=10, what="four models")
    page.fill("#search", "detail")
    wait_for(lambda: page.locator("#models .model").count() == 2, timeout=10, what="search to narrow to two")
    names = sorted(page.locator("#models .model .name").all_inner_texts())
    assert names == ["add_detail", "detail_tweaker_xl"], names
    # And the detail panel opens with the file's metadata
    page.locator("#models .model").first.click()
    page.wait_for_selector("#detail h2")
    assert "loras/add_detail.safetensors" in page.locator("#detail dl").inner_text()
    page.keyboard.press("Escape")
    assert page.locator("#detail").is_hidden()


def test_detail_shows_what_a_model_shares_with_its_same_stem_sibling(page: Any, site: Site, settings: Any,
                                                                    tmp_path: Path) -> None:
    # Given x.safetensors and x.gguf sharing x.md and a preview, scanned
    from tests.test_same_stem import build_pairs
    from tests.test_scan import scan
    build_pairs(Path(settings.store) / "loras")
    scan(settings, folder="loras")
    # When the user opens the GGUF's detail
    open_view(page, site, "library")
    page.click(".folder-tab[data-folder=loras]")
    page.fill("#search", "xword")
    wait_for(lambda: page.locator("#models .model").count() == 2, timeout=10, what="the pair")
    metas = sorted(page.locator("#models .model .meta").all_inner_texts())
    assert [m.split(" · ")[1] for m in metas] == ["GGUF", "SAFETENSORS"], metas
    page.click("#models .model[data-relpath='pair/x.gguf']")
    page.wait_for_selector("#detail .shares")
    # Then it says what it shares, with whom, and shows the shared metadata
    assert page.locator("#detail .shares").inner_text() == \
        "Shares x.civitai.info, x.md and x.webp with x.safetensors."
    assert "SDXL 1.0" in page.locator("#detail dl").inner_text()
    page.screenshot(path=str(Path(os.environ.get("DEPOT_SCREENSHOTS", str(tmp_path))) / "detail-same-stem.png"))
    # And the sibling's name opens the sibling's detail
    page.click("#detail .shares a.sibling")
    wait_for(lambda: "loras/pair/x.safetensors" in page.locator("#detail dl").inner_text(), timeout=10,
             what="the sibling's detail")
    assert page.locator("#detail .shares").inner_text().endswith("with x.gguf.")


def test_settings_show_masked_keys_and_set_the_nsfw_level(page: Any, site: Site) -> None:
    secret = "civitai-abcdef0123456789-secret"
    site.api("PUT", "/settings/keys/civitai", json={"value": secret})
    open_view(page, site, "settings")
    mask = page.locator("#mask-civitai")
    wait_for(lambda: mask.inner_text() not in ("—", ""), timeout=10, what="masked key")
    assert secret not in page.content()
    assert mask.inner_text() == site.api("GET", "/settings/keys")["civitai"]
    assert page.locator("#mask-huggingface").inner_text() == "not set"
    # When the NSFW ceiling is raised in the settings view
    select = page.locator("#nsfw-level")
    assert select.input_value() == str(site.api("GET", "/settings")["nsfw_level_default"])
    select.select_option("8")
    # Then the server keeps it for every host, and a reload shows it
    wait_for(lambda: site.api("GET", "/settings")["nsfw_level"] == 8, timeout=10, what="NSFW level saved")
    open_view(page, site, "settings")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#nsfw-level").input_value() == "8"
    assert "server default" in page.locator("#nsfw-default").inner_text()


def test_token_is_asked_once_and_used_for_writes_and_the_socket(browser: Any, settings: Any) -> None:
    from web import create_app
    s = Site(create_app(settings.replace(api_token="tok-123")))
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        pg = context.new_page()
        # Given a server that requires a token, When the dashboard opens, Then it asks for it (the socket needs it)
        pg.goto(f"{s.url}/#queue")
        pg.wait_for_selector("#token-dialog[open]", timeout=10000)
        pg.fill("#token-input", "tok-123")
        pg.click("#token-form button[value=ok]")
        # And the live feed connects with it
        pg.wait_for_selector("#live[data-state=live]", timeout=10000)
        assert pg.evaluate("localStorage.getItem('depot.token')") == "tok-123"
        # And /?token= fills it in on another browser profile without asking
        other = browser.new_context()
        pg2 = other.new_page()
        pg2.goto(f"{s.url}/?token=tok-123#queue")
        pg2.wait_for_selector("#live[data-state=live]", timeout=10000)
        assert "token=" not in pg2.url
        other.close()
    finally:
        context.close()
        s.stop()


def test_scan_of_one_root_from_maintenance(browser: Any, settings: Any, tmp_path: Path) -> None:
    from web import create_app
    # Given the loras folder with a second root (a NAS) next to the store's own
    (tmp_path / "nas" / "Lora").mkdir(parents=True)
    yml = tmp_path / "extra.yaml"
    yml.write_text(f"nas:\n  base_path: {tmp_path / 'nas'}\n  loras: Lora\n")
    s = Site(create_app(settings.replace(extra_model_paths=(yml,))))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        pg = context.new_page()
        open_view(pg, s, "maintenance")
        # When the NAS root alone is picked and a quick scan started
        pg.select_option("#maint-folder", "loras#1")
        pg.click("button[data-job=scan-quick]")
        # Then the scan task asks for that root only
        wait_for(lambda: s.api("GET", "/tasks?kind=scan")["items"], timeout=10, what="the scan task")
        params = s.api("GET", "/tasks?kind=scan")["items"][0]["params"]
        assert (params["folder"], params["path_index"]) == ("loras", 1), params
        assert str(tmp_path / "nas" / "Lora") in pg.locator("#maint-folder option[value='loras#1']").inner_text()
    finally:
        context.close()
        s.stop()


def _tiny_safetensors(size: int = 64) -> bytes:
    """A valid safetensors file with one F32 tensor, about ``size`` bytes long."""
    import json
    import struct
    n = max(2, size // 4)
    header = json.dumps({"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + os.urandom(4 * n)


def test_screenshots_are_readable(page: Any, site: Site, tmp_path: Path) -> None:
    """Not an assertion on pixels: renders both widths so a reviewer can look at them (kept under var/)."""
    records = site.app.extensions["depot"].services.records
    task, _ = records.create("download", {"url": "https://example.invalid/m.safetensors", "folder": "loras"},
                             queue="downloads")
    open_view(page, site, "queue")
    task_row(page, task["id"]).wait_for()
    out = Path(os.environ.get("DEPOT_SCREENSHOTS", str(tmp_path)))
    page.screenshot(path=str(out / "queue-1280.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(out / "queue-390.png"))
    # The tab bar and the task stay within the phone width
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width


def test_queue_recovers_after_redis_restart_without_reload(page: Any, site: Site, redis_server: Any) -> None:
    # Given the queue open and live
    open_view(page, site, "queue")
    page.wait_for_selector("#live[data-state=live]")
    # When Redis restarts (the relay tells the page to resync and the page reconnects)
    redis_server.restart(down_for=0.5)
    page.wait_for_selector("#live[data-state=live]", timeout=20000)
    # Then tasks created afterwards still appear live, without a reload
    records = site.app.extensions["depot"].services.records
    task = wait_for(lambda: records.create("scan", {"mode": "quick"}, queue="scan")[0], timeout=10,
                    what="Redis to accept writes")
    page.wait_for_selector(f"#tasks li[data-task-id='{task['id']}'][data-state=queued]", timeout=15000)


def test_live_indicator_says_reconnecting_while_redis_is_away(page: Any, site: Site, redis_server: Any) -> None:
    records = site.app.extensions["depot"].services.records
    task, _ = records.create("scan", {"mode": "quick"}, queue="scan")
    # Given the queue open and live, showing a task
    open_view(page, site, "queue")
    page.wait_for_selector("#live[data-state=live]")
    task_row(page, task["id"]).wait_for()
    # When Redis goes away (a restart, or a Sentinel failover still choosing a new master)
    redis_server.stop()
    try:
        # Then the indicator says it is reconnecting, and the page keeps showing what it had
        page.wait_for_selector("#live[data-state=down]", timeout=20000)
        assert page.inner_text("#live") == "reconnecting…"
        assert task_row(page, task["id"]).is_visible()
        out = Path(os.environ.get("DEPOT_SCREENSHOTS", str(site.app.extensions["depot"].settings.var_dir)))
        page.screenshot(path=str(out / "queue-redis-away.png"))
    finally:
        redis_server.start()
    # And once Redis is back it is live again without a reload
    page.wait_for_selector("#live[data-state=live]", timeout=20000)
