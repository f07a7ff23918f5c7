"""Newer versions on Civitai of the models that came from there: their model ids are asked about 100 at a time
(``GET /api/v1/models?ids=...``, through the rate gate every worker shares), and a model whose version is not
the newest of its model gets ``metadata.update`` in its ``NAME.md`` (``{model_id, version_id, name,
base_model, url}``, the URL being what a download of it takes), which the index reads as the model's
``update_available`` and the library shows as a badge and the ``has:update`` filter. The record lives beside
the model, so a rescan keeps it and every host sees it; "ignore this update" records the version ignored
(``metadata.update_ignored``), and a later, newer version shows again. A model whose version is the newest
loses its record."""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from shared.jobs import JobContext
from shared.services import Services
from shared.store import ops
from shared.store import sidecar_files as sidecars
from shared.store.edits import Edits
from shared.store.front_matter import split_front_matter
from shared.store.index import ModelDoc, StoreIndex
from shared.upstream.civitai import gated_get
from shared.upstream.http import HttpClient
from shared.upstream.keystore import KeyStore

BATCH = 100
_PAGE = re.compile(r"/models/(\d+)\?(?:.*&)?modelVersionId=(\d+)")


def civitai_ids(doc: ModelDoc) -> tuple[int, int] | None:
    """(model id, version id) of a model that came from Civitai, from its recorded source page."""
    if doc.get("source") != "civitai":
        return None
    m = _PAGE.search(doc.get("source_url") or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def download_url(civitai_url: str, update: dict[str, Any]) -> str:
    """The page of the newer version, which a download takes as its URL."""
    return f"{civitai_url.rstrip('/')}/models/{update['model_id']}?modelVersionId={update['version_id']}"


def _newer(item: dict[str, Any], version_id: int) -> dict[str, Any] | None:
    """The newest version of a Civitai model (its versions come newest first) when ``version_id`` is an older
    one of them; None when it is the newest, or unknown to Civitai (taken down)."""
    versions = [v for v in item.get("modelVersions") or [] if isinstance(v, dict) and isinstance(v.get("id"), int)]
    if not versions or versions[0]["id"] == version_id or version_id not in {v["id"] for v in versions}:
        return None
    latest = versions[0]
    return {"model_id": item["id"], "version_id": latest["id"], "name": latest.get("name"),
            "base_model": latest.get("baseModel")}


def _record(index: StoreIndex, doc: ModelDoc, update: dict[str, Any] | None) -> bool:
    """Write ``update`` into the model's NAME.md when it differs from what is there; whether it did."""
    ref = ops.ModelRef.resolve(index, doc["folder"], doc["path_index"], doc["relpath"])
    front, _body = split_front_matter(sidecars.read_description(ref.path) or "")
    meta: dict[str, Any] = front["metadata"] if isinstance(front.get("metadata"), dict) else {}
    if meta.get("update") == update:
        return False  # nothing new: the file is left as it is
    ops.update_model(index, ref, edits=Edits(update=update))
    return True


def check_updates(ctx: JobContext, services: Services, index: StoreIndex,
                  docs: Iterable[ModelDoc]) -> dict[str, Any]:
    """Ask Civitai about every model of ``docs`` that came from it; returns ``{"checked", "updates",
    "changed"}`` (models asked about, models with a newer version, NAME.md files written)."""
    wanted: dict[int, list[tuple[ModelDoc, int]]] = {}
    for doc in docs:
        ids = civitai_ids(doc)
        if ids is not None:
            wanted.setdefault(ids[0], []).append((doc, ids[1]))
    key = KeyStore.from_settings(services.settings).get("civitai")
    http = HttpClient(services.settings)
    model_ids = sorted(wanted)
    checked = updates = changed = 0
    for start in range(0, len(model_ids), BATCH):
        ctx.progress(start, len(model_ids), phase="updates", unit="models")
        batch = model_ids[start:start + BATCH]
        data = gated_get(ctx, services, http, f"/api/v1/models?ids={','.join(map(str, batch))}&limit={BATCH}", key)
        items = [i for i in (data or {}).get("items") or [] if isinstance(i, dict) and i.get("id") in wanted]
        for item in items:
            for doc, version_id in wanted.pop(item["id"]):
                update = _newer(item, version_id)
                if update is not None:
                    update["url"] = download_url(services.settings.civitai_url, update)
                checked += 1
                updates += update is not None
                ctx.fence()  # about to write beside a model
                changed += _record(index, doc, update)
    return {"checked": checked, "updates": updates, "changed": changed}
