"""Downloads: ``GET /resolve`` (what a URL offers) and ``POST /downloads`` (one task per artifact: the same request
from several hosts gets the live task back). The fields are checked here; ``shared/downloads/submit.py`` plans
and submits."""
from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, jsonify, request

from shared.downloads.resolve import describe
from shared.downloads.submit import DOWNLOAD_FIELDS, submit_download
from shared.errors import InvalidRequest
from shared.store.paths import normalise_relpath
from shared.upstream.http import HttpClient
from shared.upstream.urls import normalise_url, parse_source
from web.api.params import (
    field,
    folder_field,
    given,
    int_field,
    json_body,
    json_type,
    named,
    path_index_field,
    relpath_field,
    text_field,
)
from web.context import depot

bp = Blueprint("downloads", __name__)
_MAX_URL = 4096
#: A Civitai file id is a positive 32-bit integer (as ``GET /resolve`` lists them).
_MAX_CIVITAI_ID = 2**31 - 1
_MAX_REPO_PATH = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _url_arg(value: object, label: str = "Field 'url'") -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidRequest(f"{label} is required: give the URL to download, e.g. a Civitai model page or a "
                             "Hugging Face file link.")
    if not isinstance(value, str):
        raise InvalidRequest(f"{label} must be a string, got {json_type(value)}.")
    if len(value) > _MAX_URL:
        raise InvalidRequest(f"{label} is longer than {_MAX_URL} characters.")
    if _CONTROL.search(value):
        raise InvalidRequest(f"{label} holds a control character (a line break, tab or NUL); give the link alone.")
    return normalise_url(value)


@bp.get("/resolve")
def resolve():  # type: ignore[no-untyped-def]
    settings = depot().settings
    url = _url_arg(request.args.get("url"), "Query parameter 'url'")
    return jsonify(describe(settings, HttpClient(settings), url, nsfw_level=depot().services.nsfw_level()))


def _file_id(body: dict[str, Any], url: str) -> int | str | None:
    """Which file of a multi-file source: a Civitai file id (a number), or a path inside a Hugging Face repo."""
    if not given(body, "file_id"):
        return None
    kind = parse_source(url, depot().settings).kind
    if kind == "civitai":
        value = body["file_id"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequest(f"Field 'file_id' must be a Civitai file id, a whole number (GET /resolve lists "
                                 f"them), got {json_type(value)}.")
        return int_field(body, "file_id", lo=1, hi=_MAX_CIVITAI_ID)
    if kind == "huggingface":
        path = text_field(body, "file_id", max_len=_MAX_REPO_PATH)
        return named("file_id", normalise_relpath, path)
    raise InvalidRequest("Field 'file_id' picks one file of a Civitai or Hugging Face link; a direct link is one "
                         "file already, so leave it out.")


@bp.post("/downloads")
def create_download():  # type: ignore[no-untyped-def]
    ctx = depot()
    body = json_body(DOWNLOAD_FIELDS)
    url = _url_arg(body.get("url"))
    folder = folder_field(body)
    params = {
        "url": url,
        "folder": folder,
        "path_index": path_index_field(body, folder, default=0),
        "subfolder": relpath_field(body, "subfolder"),
        "filename": field(body, "filename", str),
        "file_id": _file_id(body, url),
        "sha256": field(body, "sha256", str),  # its form is checked by the plan before anything is fetched
        "overwrite": field(body, "overwrite", bool, default=False),
    }
    task, _created = submit_download(ctx.settings, ctx.layout, params, ctx.dispatcher.submit,
                                     http=HttpClient(ctx.settings))
    return jsonify(task), 202
