"""Where a missing model can be downloaded from when the workflow gives no URL: Civitai, asked by hash
(``GET /api/v1/model-versions/by-hash/{hash}``, which accepts SHA256, AutoV2, AutoV3 and AutoV1) or by version
(AIR URNs, Civitai resource lists), through the rate gate every worker honours (shared/upstream/civitai.py).

A workflow check answers a person who is waiting, so it never waits long for Civitai: at most ``MAX_LOOKUPS``
questions per check, none started after ``DEADLINE_S``, and a closed gate is waited for only until then. Answers
are cached in Redis (``depot:workflows:civitai:*``: a day for a found version, an hour for "unknown"), so asking
again about the same workflow costs nothing upstream. An upstream failure leaves the reference without a source;
it never fails the check."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, cast

from shared.downloads.plan import CIVITAI_FILE_FOLDERS, CIVITAI_FOLDERS
from shared.errors import DepotError
from shared.services import Services
from shared.upstream.civitai import gated_get
from shared.upstream.http import HttpClient
from shared.upstream.urls import civitai_download_url
from shared.workflows.refs import Source, Wanted

log = logging.getLogger(__name__)

CACHE_PREFIX = "depot:workflows:civitai:"
CACHE_FOUND_S = 24 * 3600
CACHE_UNKNOWN_S = 3600
MAX_LOOKUPS = 16
DEADLINE_S = 15.0
_CALL_TIMEOUT_S = 10.0
#: Hash types Civitai's by-hash lookup knows, best first (a shortened SHA256 is not one of them).
_ASKABLE = {"SHA256": 64, "AutoV2": 10, "AutoV3": 12, "AutoV1": 8}


@dataclass(frozen=True, slots=True)
class Found:
    """A Civitai file for a reference: where to download it, its folder by Civitai's type, and its SHA256."""

    source: Source
    folder: str | None


class _OutOfTime(Exception):
    pass


class _Budget:
    """Stands in for a job's context at the rate gate: the gate calls ``check`` while it waits, and a check that
    has used its time stops waiting."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise _OutOfTime()

    def log(self, message: str) -> None:
        log.info("event=workflow_civitai %s", message)


class CivitaiSources:
    """Finds Civitai downloads for one workflow check (build one per check: it carries the budget)."""

    def __init__(self, services: Services, key: str | None, *, max_lookups: int = MAX_LOOKUPS,
                 deadline_s: float = DEADLINE_S) -> None:
        self.services = services
        self.key = key
        self.http = HttpClient(services.settings)
        self.budget = _Budget(deadline_s)
        self.left = max_lookups

    def find(self, w: Wanted) -> Found | None:
        """A source for ``w`` from its Civitai version, else from its hashes; None when Civitai cannot tell."""
        version: dict[str, Any] | None = None
        value = None
        if w.civitai_version is not None:
            version = self._get(f"version:{w.civitai_version}", f"/api/v1/model-versions/{w.civitai_version}")
        elif w.civitai_model is not None:
            model = self._get(f"model:{w.civitai_model}", f"/api/v1/models/{w.civitai_model}")
            versions = (model or {}).get("modelVersions") or []
            if versions and isinstance(versions[0], dict) and isinstance(versions[0].get("id"), int):
                version = self._get(f"version:{versions[0]['id']}", f"/api/v1/model-versions/{versions[0]['id']}")
        else:
            asked = sorted((h for h in w.hashes if _ASKABLE.get(h[0]) == len(h[1])), key=lambda h: -len(h[1]))
            if asked:
                value = asked[0][1]
                version = self._get(f"hash:{value}", f"/api/v1/model-versions/by-hash/{value}")
        if not version:
            return None
        f = _pick_file(version, value, w.file_format)
        if f is None or not isinstance(version.get("id"), int):
            return None
        sha = str((f.get("hashes") or {}).get("SHA256") or "").upper() or None
        file_id = f.get("id") if isinstance(f.get("id"), int) else None
        url = civitai_download_url(self.services.settings, version["id"], file_id)
        model_type = str((version.get("model") or {}).get("type") or "")
        folder = CIVITAI_FILE_FOLDERS.get(str(f.get("type") or "")) or CIVITAI_FOLDERS.get(model_type)
        name = f.get("name") if isinstance(f.get("name"), str) else None
        return Found(Source(url, "civitai", name, sha), folder)

    def _get(self, cache_key: str, path: str) -> dict[str, Any] | None:
        redis = self.services.redis
        cached = redis.get(CACHE_PREFIX + cache_key)
        if cached is not None:
            data = json.loads(cached)
            return data if isinstance(data, dict) else None
        if self.left <= 0:
            return None
        self.left -= 1
        try:
            self.budget.check()
            data = gated_get(cast(Any, self.budget), self.services, self.http, path, self.key,
                             timeout=_CALL_TIMEOUT_S)
        except (_OutOfTime, DepotError) as exc:
            log.info("event=workflow_civitai_skipped path=%s reason=%s", path, type(exc).__name__)
            return None
        found = _trim(data) if isinstance(data, dict) else None
        redis.set(CACHE_PREFIX + cache_key, json.dumps(found), ex=CACHE_FOUND_S if found else CACHE_UNKNOWN_S)
        return found


def _trim(body: dict[str, Any]) -> dict[str, Any]:
    """What a reference needs of a version (or a model's version list), so the cache stays small."""
    keep: dict[str, Any] = {k: body.get(k) for k in ("id", "modelId") if k in body}
    if isinstance(body.get("model"), dict):
        keep["model"] = {"type": body["model"].get("type"), "name": body["model"].get("name")}
    if "type" in body:
        keep["model"] = {"type": body.get("type"), "name": body.get("name")}
    files = [f for f in body.get("files") or [] if isinstance(f, dict)]
    keep["files"] = [{k: f.get(k) for k in ("id", "name", "type", "primary", "hashes", "metadata")} for f in files]
    versions = [v for v in body.get("modelVersions") or [] if isinstance(v, dict)]
    if versions:
        keep["modelVersions"] = [{"id": v.get("id")} for v in versions]
    return keep


def _pick_file(version: dict[str, Any], value: str | None, file_format: str | None) -> dict[str, Any] | None:
    """The file a hash names; else the file of the asked format; else the primary file."""
    files = [f for f in version.get("files") or [] if isinstance(f, dict)]
    if value:
        for f in files:
            if value.upper() in {str(h).upper() for h in (f.get("hashes") or {}).values()}:
                return f
    if file_format:
        files = [f for f in files if (f.get("metadata") or {}).get("format") == file_format] or files
    return next((f for f in files if f.get("primary")), files[0] if files else None)
