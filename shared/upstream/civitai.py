"""Civitai's public API. A download reads the model and version a link names (``fetch``, with the client's own
retries). Everything else goes through the rate gate every worker shares: model versions by SHA256 (one, or a
batch of at most 100 with ``POST /api/v1/model-versions/by-hash``) and any other GET. A 429 closes the gate (a
Redis key living for the server's Retry-After) so no host keeps hammering Civitai; calls wait for the gate to
open."""
from __future__ import annotations

import json
import time
from typing import Any

from shared.config import Settings
from shared.errors import DepotError, InvalidRequest, NotFound, RateLimited, UpstreamError
from shared.jobs import JobContext
from shared.services import Services
from shared.upstream.http import HttpClient, raise_for_status, retry_after
from shared.upstream.urls import Source

GATE = "depot:civitai:gate"
BATCH = 100
_DEFAULT_RETRY_AFTER_S = 30.0


def _api(settings: Settings) -> str:
    return settings.civitai_url.rstrip("/") + "/api/v1"


def require_version(src: Source) -> None:
    """A Civitai link must name a model or a version (InvalidRequest otherwise)."""
    if src.model_id is None and src.version_id is None:
        raise InvalidRequest("This Civitai link names no model or version.")


def fetch(http: HttpClient, settings: Settings, src: Source,
          key: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (model body or {}, version body) for a Civitai source."""
    model: dict[str, Any] = {}
    if src.model_id is not None:
        model = http.get_json(f"{_api(settings)}/models/{src.model_id}", key=key, source="civitai")
        versions = model.get("modelVersions") or []
        if not versions:
            raise NotFound(f"Civitai model {src.model_id} has no published versions.")
        vid = src.version_id or versions[0]["id"]
    else:
        vid = src.version_id
    version = http.get_json(f"{_api(settings)}/model-versions/{vid}", key=key, source="civitai")
    if not model and version.get("modelId"):
        try:
            model = http.get_json(f"{_api(settings)}/models/{version['modelId']}", key=key, source="civitai")
        except DepotError:
            model = {}  # creator/description are nice to have; the version alone is enough to download
    return model, version

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
    raise RateLimited("Civitai kept answering 429; retry later.")
