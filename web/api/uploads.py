"""Uploads from a browser, resumable (``shared/uploads/uploads.py``):

- ``POST /uploads`` ``{"folder", "path_index"?, "subfolder"?, "filename", "size", "sha256"?}`` → 201 Upload;
- ``PATCH /uploads/<id>`` with ``Upload-Offset: <the upload's offset>`` and the next bytes as the body
  (``application/offset+octet-stream``, at most ``MAX_CHUNK`` per request) → Upload, with ``model`` once the
  last byte arrived; a wrong offset is a 409 whose ``details.offset`` says where to resume;
- ``GET /uploads/<id>`` → Upload (its ``offset``: where to resume after a lost connection or a reload);
- ``DELETE /uploads/<id>`` → 204, the partial removed;
- ``POST /uploads/inspect`` with the file's first bytes (its safetensors header) → ``{"kind", "family",
  "folder"}``: what the file is and the folder suggested for it."""
from __future__ import annotations

import posixpath
import re
from typing import Any

from flask import Blueprint, jsonify, request

from shared.errors import InvalidRequest
from shared.media.safetensors_kind import MAX_HEADER_BYTES, detect_bytes
from shared.store.model_types import folder_for
from shared.store.sidecar_files import check_model_name
from web.api.params import field, folder_field, int_field, json_body, named, path_index_field, relpath_field, text_field
from web.context import depot

bp = Blueprint("uploads", __name__)
MAX_CHUNK = 64 * 1024 * 1024
BODY_LIMITS = {"uploads.write_chunk": MAX_CHUNK, "uploads.inspect": MAX_HEADER_BYTES + 8}
_SHA256 = re.compile(r"[0-9a-fA-F]{64}\Z")
_OFFSET = re.compile(r"[0-9]{1,15}\Z")


@bp.post("/uploads")
def create_upload() -> Any:
    body = json_body(("folder", "path_index", "subfolder", "filename", "size", "sha256"))
    folder = folder_field(body, required=True)
    pi = path_index_field(body, folder, default=0)
    subfolder = relpath_field(body, "subfolder")
    filename = text_field(body, "filename", max_len=255, required=True)
    if "/" in filename or "\\" in filename:
        raise InvalidRequest("Field 'filename' must be a file name, without folders (put those in 'subfolder').")
    named("filename", check_model_name, filename)
    relpath = relpath_field({"filename": posixpath.join(subfolder, filename) if subfolder else filename},
                            "filename", required=True)
    size = int_field(body, "size", lo=1, hi=2**53, required=True)
    sha256 = field(body, "sha256", str)
    if sha256 is not None and not _SHA256.match(sha256):
        raise InvalidRequest("Field 'sha256' must be 64 hexadecimal characters.")
    up = depot().uploads.create(folder, pi, relpath, size, sha256)
    return jsonify(up), 201, {"Location": f"/api/v1/uploads/{up['id']}"}


@bp.get("/uploads/<upload_id>")
def upload_status(upload_id: str) -> Any:
    return jsonify(depot().uploads.get(upload_id))


@bp.patch("/uploads/<upload_id>")
def write_chunk(upload_id: str) -> Any:
    raw = request.headers.get("Upload-Offset", "")
    if not _OFFSET.match(raw):
        raise InvalidRequest(f"Header 'Upload-Offset' must be the upload's current offset in bytes, got "
                             f"{raw[:40]!r}; GET /api/v1/uploads/<id> says it.")
    length = request.content_length
    if not length:
        raise InvalidRequest("Send the chunk's bytes as the body, with a Content-Length.")
    if request.mimetype not in ("application/offset+octet-stream", "application/octet-stream"):
        raise InvalidRequest("Send a chunk as application/offset+octet-stream.", code="unsupported_media_type",
                             http_status=415)
    return jsonify(depot().uploads.write(upload_id, int(raw), request.stream, length))


@bp.delete("/uploads/<upload_id>")
def cancel_upload(upload_id: str) -> Any:
    json_body(())
    depot().uploads.cancel(upload_id)
    return "", 204


@bp.post("/uploads/inspect")
def inspect() -> Any:
    found = detect_bytes(request.get_data(cache=False))
    return jsonify({"kind": found.kind, "family": found.family, "folder": folder_for(found.kind)})
