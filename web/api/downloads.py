"""Downloads: ``GET /resolve`` (what a URL offers), ``POST /downloads`` (one task per artifact: the same request
from several hosts gets the live task back), and the upstream API keys under ``/settings/keys``."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from shared.downloads.http import HttpClient
from shared.downloads.publish import target_path
from shared.downloads.resolve import describe, make_plan
from shared.errors import InvalidRequest
from shared.keystore import KEY_NAMES, KeyStore
from shared.store.layout import StoreLayout
from web.api.params import field, json_body
from web.context import depot

bp = Blueprint("downloads", __name__)
_MAX_URL = 4096


def _url_arg(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("Give the URL to download, e.g. a Civitai model page or a Hugging Face file link.")
    if len(value) > _MAX_URL:
        raise InvalidRequest(f"The URL is longer than {_MAX_URL} characters.")
    return value.strip()


@bp.get("/resolve")
def resolve():  # type: ignore[no-untyped-def]
    settings = depot().settings
    return jsonify(describe(settings, HttpClient(settings), _url_arg(request.args.get("url"))))


@bp.post("/downloads")
def create_download():  # type: ignore[no-untyped-def]
    ctx = depot()
    body = json_body()
    url = _url_arg(body.get("url"))
    params = {
        "url": url,
        "folder": field(body, "folder", str),
        "path_index": field(body, "path_index", int, default=0),
        "subfolder": field(body, "subfolder", str),
        "filename": field(body, "filename", str),
        "file_id": field(body, "file_id", (int, str)),
        "sha256": field(body, "sha256", str),
        "overwrite": field(body, "overwrite", bool, default=False),
    }
    plan = make_plan(ctx.settings, HttpClient(ctx.settings), url, folder=params["folder"],
                     file_id=params["file_id"], sha256=params["sha256"])
    # Refuse a bad folder/name now, before a task exists.
    target_path(StoreLayout.from_settings(ctx.settings), plan, params)
    params["plan"] = plan.to_dict()
    task, _created = ctx.dispatcher.submit("download", params, idem_key=f"download:{plan.idem_key}")
    return jsonify(task), 202


@bp.get("/settings/keys")
def get_keys():  # type: ignore[no-untyped-def]
    return jsonify(KeyStore.from_settings(depot().settings).masked())


@bp.put("/settings/keys/<name>")
def put_key(name: str):  # type: ignore[no-untyped-def]
    if name not in KEY_NAMES:
        raise InvalidRequest(f"Unknown key {name!r}; use one of {', '.join(KEY_NAMES)}.")
    body = json_body()
    if "value" not in body:
        raise InvalidRequest("Give {\"value\": \"...\"} (null clears the key).")
    masked = KeyStore.from_settings(depot().settings).set(name, field(body, "value", str))
    return jsonify({"name": name, "value": masked})
