"""``POST /workflows/resolve``: the models a workflow needs, what the store has for each, and on which GPU hosts
it can run. The body is a multipart ``file`` (a ComfyUI ``.json``, a PNG/WebP/JPEG with the workflow inside, an
A1111 image or text file), or JSON ``{"workflow": <UI or API graph>}`` or ``{"text": "<A1111 parameters or AIR
URNs>"}``. Options: ``hosts`` (default: the hosts of the live workers; a form field takes them comma-separated)
and ``offline`` (no Civitai lookups for missing models). This route alone takes bodies up to the workflow file
cap, read as a stream and never past it."""
from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, jsonify, request

from shared.errors import InvalidRequest
from shared.keystore import KeyStore
from shared.store.lookup import ModelLookup
from shared.workflows import readiness
from shared.workflows.check import check
from shared.workflows.errors import FileTooLarge
from shared.workflows.formats import MAX_BYTES, Payload, read_bytes, read_json_value, read_text
from shared.workflows.sources import CivitaiSources
from web.api.models import store_index
from web.api.params import field
from web.context import depot
from workers.presence import live_workers

bp = Blueprint("workflows", __name__)

#: The file cap plus room for the multipart envelope and the other form fields.
BODY_LIMITS = {"workflows.resolve_workflow": MAX_BYTES + 64 * 1024}
_MAX_HOSTS = 64
_BAD_HOST_CHARS = set(" /\\:@\n\r\t\0")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


@bp.post("/workflows/resolve")
def resolve_workflow():  # type: ignore[no-untyped-def]
    if request.mimetype == "multipart/form-data":
        payload, hosts, offline = _from_form()
    elif request.mimetype in ("application/json", "") or request.is_json:
        payload, hosts, offline = _from_json()
    else:
        raise InvalidRequest(f"Send the workflow as multipart/form-data (field 'file') or as JSON, not "
                             f"{request.mimetype}.", code="unsupported_media_type", http_status=415)
    ctx = depot()
    names = hosts if hosts is not None else sorted({w["host"] for w in live_workers(ctx.services.redis)})
    finder = None
    if not offline:
        finder = CivitaiSources(ctx.services, KeyStore.from_settings(ctx.settings).get("civitai")).find
    index = store_index()
    result = check(payload, redis=ctx.services.redis, lookup=_lookup(), layout=index.layout,
                   hosts=readiness.hosts_for(ctx.settings, names), find=finder)
    return jsonify(result.to_json())


def _lookup() -> ModelLookup:
    """One set of lookup tables per web process (they are kept current from the index's change log)."""
    ctx = depot()
    lookup = ctx.extras.get("model_lookup")
    if lookup is None:
        lookup = ctx.extras["model_lookup"] = ModelLookup(ctx.services.redis)
    return lookup


def _from_form() -> tuple[Payload, list[str] | None, bool]:
    upload = request.files.get("file")
    if upload is None:
        raise InvalidRequest("Send the workflow file in the multipart field 'file'.")
    data = upload.stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise FileTooLarge(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MiB; no workflow is that big.")
    raw_hosts = request.form.get("hosts")
    hosts = None if raw_hosts is None else _hosts([h.strip() for h in raw_hosts.split(",") if h.strip()])
    offline = request.form.get("offline", "").strip().lower()
    if offline not in _TRUE | _FALSE:
        raise InvalidRequest("Form field 'offline' must be true or false.")
    return read_bytes(data), hosts, offline in _TRUE


def _from_json() -> tuple[Payload, list[str] | None, bool]:
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise InvalidRequest('Give {"workflow": <ComfyUI workflow>} or {"text": "<A1111 parameters or AIR '
                             'URNs>"}, or upload the file as multipart field \'file\'.')
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON ({exc}).") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    given = [k for k in ("workflow", "text") if body.get(k) is not None]
    if len(given) != 1:
        raise InvalidRequest('Give exactly one of "workflow" (the workflow JSON object) or "text".')
    hosts = field(body, "hosts", list)
    offline = field(body, "offline", bool, default=False)
    if given == ["workflow"]:
        payload = read_json_value(field(body, "workflow", dict), "json")
    else:
        payload = read_text(field(body, "text", str))
    return payload, None if hosts is None else _hosts(hosts), offline


def _hosts(values: list[Any]) -> list[str]:
    if len(values) > _MAX_HOSTS:
        raise InvalidRequest(f"At most {_MAX_HOSTS} hosts per request.")
    for v in values:
        if not isinstance(v, str) or not v or len(v) > 253 or set(v) & _BAD_HOST_CHARS:
            raise InvalidRequest(f"{v!r} is not a host name; use the name a worker runs with (DEPOT_HOST).")
    return list(values)
