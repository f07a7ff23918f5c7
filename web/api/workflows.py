"""``POST /workflows/resolve`` and ``POST /workflows/fetch``: the models a workflow needs, what the store has for
each, and on which GPU hosts it can run. The body is a multipart ``file`` (a ComfyUI ``.json``, a PNG/WebP/JPEG
with the workflow inside, an A1111 image or text file), or JSON ``{"workflow": <UI or API graph>}`` or
``{"text": "<A1111 parameters or AIR URNs>"}``. Options: ``hosts`` (default: the hosts of the live workers; a
form field takes them comma-separated) and ``offline`` (no Civitai lookups for missing models). These routes alone
take bodies up to the workflow file cap, read as a stream and never past it. ``fetch`` takes the same body (plus
``title`` in JSON) and downloads what is missing (``shared/workflows/fetch.py``)."""
from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, jsonify, request

from shared.errors import InvalidRequest
from shared.upstream.keystore import KeyStore
from shared.workflows import readiness
from shared.workflows.check import Result, check
from shared.workflows.errors import FileTooLarge
from shared.workflows.fetch import start_fetch
from shared.workflows.formats import MAX_BYTES, Payload, read_bytes, read_json_value, read_text
from shared.workflows.sources import CivitaiSources
from web.api.params import field
from web.context import depot
from workers.presence import live_workers

bp = Blueprint("workflows", __name__)

#: The file cap plus room for the multipart envelope and the other form fields.
BODY_LIMITS = {"workflows.resolve_workflow": MAX_BYTES + 64 * 1024,
               "workflows.fetch_workflow": MAX_BYTES + 64 * 1024}
_MAX_HOSTS = 64
_BAD_HOST_CHARS = set(" /\\:@\n\r\t\0")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


@bp.post("/workflows/resolve")
def resolve_workflow():  # type: ignore[no-untyped-def]
    payload, hosts, offline, _ = _read_request()
    return jsonify(_check(payload, hosts, offline).to_json())


@bp.post("/workflows/fetch")
def fetch_workflow():  # type: ignore[no-untyped-def]
    """Resolve, then download what is missing (one download per file, shared with any other fetch of it) and
    track the set with one workflow task: 202 with that task (``params.children``: its downloads,
    ``params.skipped``: what it could not fetch, and why). 200 with the check's answer when nothing is to fetch."""
    payload, hosts, offline, title = _read_request()
    ctx = depot()
    result = _check(payload, hosts, offline)
    started = start_fetch(ctx.settings, ctx.layout, result, ctx.dispatcher.submit, title=title)
    if started.task is not None:
        return jsonify(started.task), 202
    # Nothing to start: the check's answer says why (all present, or what has no source, in ``skipped``)
    return jsonify({**result.to_json(), "skipped": started.skipped}), 200


def _read_request() -> tuple[Payload, list[str] | None, bool, str]:
    """The workflow, the hosts asked about, whether to stay offline, and a title for the fetch's task."""
    if request.mimetype == "multipart/form-data":
        return _from_form()
    if request.mimetype in ("application/json", "") or request.is_json:
        return _from_json()
    raise InvalidRequest(f"Send the workflow as multipart/form-data (field 'file') or as JSON, not "
                         f"{request.mimetype}.", code="unsupported_media_type", http_status=415)


def _check(payload: Payload, hosts: list[str] | None, offline: bool) -> Result:
    ctx = depot()
    names = hosts if hosts is not None else sorted({w["host"] for w in live_workers(ctx.services.redis)})
    finder = None
    if not offline:
        finder = CivitaiSources(ctx.services, KeyStore.from_settings(ctx.settings).get("civitai")).find
    return check(payload, redis=ctx.services.redis, lookup=ctx.lookup, layout=ctx.layout,
                 hosts=readiness.hosts_for(ctx.settings, names), find=finder)


def _from_form() -> tuple[Payload, list[str] | None, bool, str]:
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
    title = _title(upload.filename)
    return read_bytes(data), hosts, offline in _TRUE, title


def _from_json() -> tuple[Payload, list[str] | None, bool, str]:
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
    title = _title(field(body, "title", str))
    if given == ["workflow"]:
        payload = read_json_value(field(body, "workflow", dict), "json")
    else:
        payload = read_text(field(body, "text", str))
    return payload, None if hosts is None else _hosts(hosts), offline, title


def _title(name: str | None) -> str:
    """A file's name (or the given title) names the fetch's task; control characters and length trimmed."""
    clean = "".join(ch for ch in (name or "") if ch.isprintable()).strip()
    return clean[:120] or "workflow"


def _hosts(values: list[Any]) -> list[str]:
    if len(values) > _MAX_HOSTS:
        raise InvalidRequest(f"At most {_MAX_HOSTS} hosts per request.")
    for v in values:
        if not isinstance(v, str) or not v or len(v) > 253 or set(v) & _BAD_HOST_CHARS:
            raise InvalidRequest(f"{v!r} is not a host name; use the name a worker runs with (DEPOT_HOST).")
    return list(values)
