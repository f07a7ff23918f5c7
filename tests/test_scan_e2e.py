"""A scan submitted over REST runs in a real worker subprocess; metadata fetching talks to a fake Civitai over
loopback; the shared 429 gate."""
from __future__ import annotations

import hashlib
import time
from typing import Any

from shared.config import Settings
from shared.store.index import StoreIndex
from shared.store.layout import StoreLayout
from shared.upstream.civitai import GATE, close_gate, wait_for_gate
from tests.support import wait_for
from tests.test_models_api import populate
from tests.test_scan import build_library, make_ctx, scan


def test_post_scans_runs_in_a_worker(client: Any, workers: Any, settings: Settings, redis: Any) -> None:
    # Given a populated store and a worker on this host
    populate(settings.store)
    workers(host="testhost")
    # When a scan is submitted over REST
    r = client.post("/api/v1/scans", json={"mode": "quick"})
    assert r.status_code == 202
    task_id = r.get_json()["id"]
    # Then it succeeds with the contract's counts and the listing shows the models
    body = wait_for(lambda: (b := client.get(f"/api/v1/tasks/{task_id}").get_json())["state"] in
                    ("succeeded", "failed") and b, timeout=60, what="scan finished")
    assert body["state"] == "succeeded", body.get("error")
    assert {k: body["result"][k] for k in ("files", "added", "removed")} == {"files": 5, "added": 5, "removed": 0}
    assert body["result"]["unreachable_roots"] == [] and body["result"]["hashed"] == 5
    assert client.get("/api/v1/models").get_json()["total"] == 5


def test_fetch_metadata_writes_md_and_preview(settings: Settings, redis: Any, upstream: Any) -> None:
    # Given a model on disk that Civitai knows by its SHA256, and one it does not know
    s = settings.replace(civitai_url=upstream.url, allow_private_urls=True)
    StoreLayout(s.store).ensure_default_dirs()
    data = b"known-lora" * 100
    (s.store / "loras" / "known.safetensors").write_bytes(data)
    (s.store / "loras" / "unknown.safetensors").write_bytes(b"other" * 10)
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, "PNG")
    upstream.add_civitai_model(11, "Known Lora", "LORA", [{
        "id": 22, "name": "v1", "baseModel": "SDXL 1.0", "trainedWords": ["kword"],
        "files": [{"id": 33, "name": "known.safetensors", "data": data}],
        "images": [{"data": buf.getvalue(), "ext": "png"}]}])
    # When a scan with fetch_metadata runs
    ctx, services = make_ctx(s, {"mode": "quick", "folder": "loras", "fetch_metadata": True})
    from shared.scan import run_scan
    result = run_scan(ctx, services)
    # Then the known model gets NAME.md in the upstream layout and a preview, and the index shows them
    assert result["metadata"] == {"looked_up": 2, "found": 1, "previews": 1}
    md = (s.store / "loras" / "known.md").read_text()
    assert md.startswith("---\n") and "website: Civitai" in md and "# Trigger Words\n\nkword" in md
    assert "modelPage: https://civitai.com/models/11?modelVersionId=22" in md
    assert (s.store / "loras" / "known.webp").exists()
    doc = StoreIndex(redis, s).lookup("loras", 0, "known.safetensors")
    assert (doc["title"], doc["base_model"], doc["source"], doc["preview"]) == \
        ("Known Lora", "SDXL 1.0", "civitai", "known.webp")
    assert doc["hashes"]["SHA256"] == hashlib.sha256(data).hexdigest().upper()
    # And a second quick scan sees the new sidecars without rehashing
    assert scan(s, folder="loras")["hashed"] == 0


def test_rate_limit_gate_is_shared_and_honoured(settings: Settings, redis: Any) -> None:
    ctx, _services = make_ctx(settings, {"mode": "quick"})
    close_gate(redis, 5.0)
    close_gate(redis, 0.1)  # a shorter pause never shortens a longer one
    assert redis.pttl(GATE) > 2000
    redis.delete(GATE)
    start = time.monotonic()
    close_gate(redis, 0.2)
    wait_for_gate(ctx, redis)
    # the wait lasted at least until the gate opened (a lower bound only; never flaky under load)
    assert time.monotonic() - start >= 0.15 and redis.pttl(GATE) < 0


def test_a_big_first_scan_forks_scan_processes_inside_a_prefork_worker(client: Any, workers: Any,
                                                                       settings: Settings) -> None:
    # Given a library of 1,200 models in new folders and a prefork worker (whose children are daemonic)
    StoreLayout(settings.store).ensure_default_dirs()
    models = build_library(settings.store / "loras" / "lib")
    workers(host="testhost", env={"DEPOT_SCAN_PROCESSES": "2"})
    # When a quick scan is submitted over REST
    r = client.post("/api/v1/scans", json={"mode": "quick", "folder": "loras"})
    assert r.status_code == 202
    task_id = r.get_json()["id"]
    # Then it succeeds using two scan processes and the listing has every model with its sidecar summary
    body = wait_for(lambda: (b := client.get(f"/api/v1/tasks/{task_id}").get_json())["state"] in
                    ("succeeded", "failed") and b, timeout=90, what="scan finished")
    assert body["state"] == "succeeded", body.get("error")
    assert body["result"]["processes"] == 2
    assert (body["result"]["added"], body["result"]["hashed"]) == (models, models)
    page = client.get("/api/v1/models?folder=loras&q=civ&limit=1000").get_json()
    assert page["total"] == models // 5 and all(m["source"] == "civitai" for m in page["items"])
