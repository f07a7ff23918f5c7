"""Metadata for models that lack it: their SHA256s are looked up on Civitai in batches of at most 100
(``POST /api/v1/model-versions/by-hash``), and for each match ``NAME.md`` (upstream layout) and a preview are
written, then the model is re-indexed. A 429 closes a gate shared by every worker (a Redis key living for the
server's Retry-After) so no host keeps hammering Civitai; calls wait for the gate to open."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from shared.downloads.http import HttpClient, raise_for_status, retry_after
from shared.downloads.sidecar import MAX_PREVIEW_BYTES, eligible_images
from shared.errors import DepotError, UpstreamError
from shared.jobs import JobContext
from shared.previews.imaging import save_preview
from shared.services import Services
from shared.store import sidecars
from shared.store.index import StoreIndex

GATE = "depot:civitai:gate"
BATCH = 100
_DEFAULT_RETRY_AFTER_S = 30.0


def close_gate(redis: Any, seconds: float) -> None:
    """Pause every worker's Civitai calls for ``seconds`` (the longest pause wins)."""
    ms = max(1, int(seconds * 1000))
    current = redis.pttl(GATE)
    if current is None or current < ms:
        redis.set(GATE, "1", px=ms)


def wait_for_gate(ctx: JobContext, redis: Any) -> None:
    """Sleep while the gate is closed, staying cancellable."""
    # PTTL is -2 once the key is gone; 0 means "under a millisecond left", still closed.
    while (left := redis.pttl(GATE)) is not None and left >= 0:
        ctx.check()
        time.sleep(min(max(left, 1) / 1000.0, 1.0))


def lookup_one(ctx: JobContext, services: Services, http: HttpClient, sha: str,
               key: str | None) -> dict[str, Any] | None:
    """The model version Civitai knows for one SHA256 (``GET …/by-hash/<sha>``), or None."""
    data = _gated_json(ctx, services, http, f"/api/v1/model-versions/by-hash/{sha}", key, unknown_ok=True,
                       headers={"Accept": "application/json"})
    return data if isinstance(data, dict) else None


def gated_get(ctx: JobContext, services: Services, http: HttpClient, path: str, key: str | None, *,
              timeout: float = 60.0) -> Any:
    """A GET on Civitai's API (``path`` from ``/api/v1/``) through the shared gate; None for a 404."""
    return _gated_json(ctx, services, http, path, key, unknown_ok=True, timeout=timeout,
                       headers={"Accept": "application/json"})


def lookup_batch(ctx: JobContext, services: Services, http: HttpClient, shas: list[str],
                 key: str | None) -> list[dict[str, Any]]:
    """One by-hash call for up to BATCH SHA256s (``POST …/by-hash``)."""
    data = _gated_json(ctx, services, http, "/api/v1/model-versions/by-hash", key, method="POST",
                       data=json.dumps(shas).encode(),
                       headers={"Content-Type": "application/json", "Accept": "application/json"})
    return [v for v in data if isinstance(v, dict)] if isinstance(data, list) else []


def _gated_json(ctx: JobContext, services: Services, http: HttpClient, path: str, key: str | None,
                unknown_ok: bool = False, **request: Any) -> Any:
    """A Civitai API call through the shared gate: each 429 closes the gate for every worker (for the
    server's Retry-After) and the call is tried again, up to 5 times. With ``unknown_ok`` a 404 gives None."""
    url = services.settings.civitai_url.rstrip("/") + path
    timeout = request.pop("timeout", 60.0)
    for _attempt in range(5):
        wait_for_gate(ctx, services.redis)
        resp = http.open(url, key=key, stream=False, timeout=timeout, **request)
        if resp.status_code == 429:
            pause = max(1.0, retry_after(resp) or _DEFAULT_RETRY_AFTER_S)
            close_gate(services.redis, pause)
            ctx.log(f"Civitai rate limit: pausing lookups for {pause:.0f} s")
            continue
        if resp.status_code == 404 and unknown_ok:
            return None
        raise_for_status(resp, "civitai")
        try:
            return resp.json()
        except ValueError:
            raise UpstreamError("Civitai's hash lookup did not answer with JSON; retry later.") from None
    raise DepotError("Civitai kept answering 429; retry later.", code="rate_limited", http_status=429)


def _write_sidecars(http: HttpClient, path: Path, version: dict[str, Any], sha: str, nsfw_level: int) -> bool:
    files = [f for f in version.get("files") or [] if isinstance(f, dict)]
    match = next((f for f in files if str((f.get("hashes") or {}).get("SHA256", "")).upper() == sha), {})
    model = version.get("model") if isinstance(version.get("model"), dict) else {}
    images = [i for i in version.get("images") or [] if isinstance(i, dict) and i.get("url")]
    sidecars.write_description(
        path, model_name=model.get("name"), author=(version.get("creator") or {}).get("username"),
        base_model=version.get("baseModel"), hashes=match.get("hashes"), metadata=match.get("metadata"),
        model_page=f"https://civitai.com/models/{version.get('modelId')}?modelVersionId={version.get('id')}",
        preview=[i["url"] for i in images], website="Civitai", trigger_words=version.get("trainedWords"),
        about=version.get("description"), description=model.get("description"))
    if sidecars.find_preview(path) is not None:
        return False
    for image in eligible_images(images, nsfw_level):
        try:
            data = http.fetch_bytes(image["url"], MAX_PREVIEW_BYTES, timeout=60.0)
            if data is not None:
                save_preview(data, path)
                return True
        except DepotError:
            continue
    return False


def fetch_missing_metadata(ctx: JobContext, services: Services, index: StoreIndex,
                           folder: str | None) -> dict[str, Any]:
    """Look up every hashed model without a known source; returns ``{looked_up, found, previews}``."""
    from shared.keystore import KeyStore
    key = KeyStore.from_settings(services.settings).get("civitai")
    http = HttpClient(services.settings)
    nsfw_level = services.nsfw_level()
    wanted = {}
    for doc in index.models(folder):
        sha = (doc.get("hashes") or {}).get("SHA256")
        if sha and doc.get("hashed") and not doc.get("source") and not doc.get("dir"):
            wanted.setdefault(sha, []).append(doc)
    shas = sorted(wanted)
    found = previews = 0
    for start in range(0, len(shas), BATCH):
        ctx.progress(start, len(shas), phase="metadata")
        for version in lookup_batch(ctx, services, http, shas[start:start + BATCH], key):
            for f in version.get("files") or []:
                sha = str(((f or {}).get("hashes") or {}).get("SHA256", "")).upper()
                for doc in wanted.pop(sha, []):
                    path = index.layout.resolve(doc["folder"], doc["path_index"], doc["relpath"])
                    ctx.fence()  # about to write files next to a model
                    previews += _write_sidecars(http, path, version, sha, nsfw_level)
                    index.record_file(path)
                    found += 1
    return {"looked_up": len(shas), "found": found, "previews": previews}
