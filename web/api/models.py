"""The model store over HTTP: folders, listing/search, model detail, move/rename/description and the edits of
NAME.md, delete (into the trash), repair (download it again from its recorded source, checked against its
recorded hash), duplicates, and the preview a user chooses: an uploaded file (multipart ``file``), a URL
(``{"url"}``) or one of its Civitai images (``{"civitai_image": id}``, ids from ``GET …/civitai_images``). Every path
from a client is validated against its store root; the changes themselves are ``shared/store/ops.py``'s."""
from __future__ import annotations

import posixpath
from typing import Any

from flask import Blueprint, Response, jsonify, request

from shared.downloads.repair import submit_repair
from shared.errors import Conflict, InvalidPath, InvalidRequest
from shared.library import previews as chosen
from shared.library import trash
from shared.store import ops, siblings
from shared.store import sidecar_files as sidecars
from shared.store.comfyui_config import host_paths
from shared.store.description import description_html
from shared.store.edits import EDIT_FIELDS, check_edits
from shared.store.index import SORTS, VERDICTS, Filters, to_model
from shared.store.ops import ModelRef
from shared.upstream.images import MAX_PREVIEW_BYTES
from web.api.params import (
    choice_arg,
    field,
    folder_arg,
    folder_field,
    int_arg,
    json_body,
    named,
    one_line,
    only_fields,
    path_index_field,
    relpath_field,
    text_field,
)
from web.context import depot

bp = Blueprint("models", __name__)
#: An uploaded preview: the cap of a fetched one plus the multipart envelope.
BODY_LIMITS = {"models.set_preview": MAX_PREVIEW_BYTES + 64 * 1024}
#: A description is a sidecar read whole by every scan: as large as the readers take (4 MiB), no larger.
MAX_DESCRIPTION = 1_000_000


def _path_index(raw: str) -> int:
    """The ``path_index`` part of a model URL: ASCII digits only (no sign, spaces or other scripts' digits)."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 5):
        raise InvalidPath(f"The URL's 'path_index' must be a whole number such as 0, got {raw[:40]!r}.")
    return int(raw)


def _ref(folder: str, path_index: str, relpath: str) -> ModelRef:
    return ModelRef.resolve(depot().index, folder, _path_index(path_index), relpath)


@bp.get("/folders")
def folders():  # type: ignore[no-untyped-def]
    index = depot().index
    down = index.unreachable()
    counts = index.folder_counts()
    out = []
    for f in index.layout.folders():
        f["unreachable"] = [i for i in range(len(f["paths"])) if f"{f['name']}/{i}" in down]
        f["count"] = counts.get(f["name"], 0)
        out.append(f)
    return jsonify(out)


def _text_arg(name: str, cap: int) -> str | None:
    """An optional free-text query parameter (absent: None; "" is a value: "none recorded" for a facet)."""
    return one_line(f"Query parameter {name!r}", request.args.get(name), cap)


def _subdir_arg() -> str | None:
    raw = _text_arg("dir", 1024)
    if raw is None or not raw.strip("/"):
        return None
    if any(part in ("", ".", "..") for part in raw.strip("/").split("/")):
        raise InvalidPath(f"Query parameter 'dir' must be a subfolder such as 'styles/anime', got {raw[:40]!r}.")
    return raw.strip("/")


@bp.get("/facets")
def facets():  # type: ignore[no-untyped-def]
    """Models per base model, type and subfolder of one folder (or all): the library's chips and tree."""
    return jsonify(depot().index.facets(folder_arg()))


@bp.get("/models")
def list_models():  # type: ignore[no-untyped-def]
    index = depot().index
    folder = folder_arg()
    q = _text_arg("q", 500) or None
    sort = choice_arg("sort", SORTS, "name")
    order = choice_arg("order", ("asc", "desc"), "asc")
    tag = _text_arg("tag", 64)
    if tag is not None and (not tag or " " in tag):
        raise InvalidRequest(f"Query parameter 'tag' must be one tag (no spaces), got {tag[:40]!r}.")
    filters = Filters(base=_text_arg("base_model", 100), kind=_text_arg("type", 100), subdir=_subdir_arg(),
                      tag=tag, favorite=choice_arg("favorite", ("true", "false"), "false") == "true",
                      update=choice_arg("update", ("true", "false"), "false") == "true",
                      verify=choice_arg("verify", VERDICTS),
                      no_preview={"true": False, "false": True, None: None}[choice_arg("preview", ("true", "false"))],
                      ids=index.duplicate_ids() if choice_arg("duplicates", ("true", "false")) == "true" else None)
    joined, total = index.listing_json(folder=folder, q=q, sort=sort, order=order, offset=int_arg("offset", 0),
                                       limit=int_arg("limit", 100, lo=0, hi=1000), filters=filters)
    # A page arrives as JSON text (``listing_json``): it is joined into the answer, not decoded again.
    return Response(b'{"items":[' + joined + b'],"total":' + str(total).encode() + b"}", mimetype="application/json")


@bp.get("/models/<folder>/<path_index>/<path:relpath>")
def model_detail(folder: str, path_index: str, relpath: str):  # type: ignore[no-untyped-def]
    ref = _ref(folder, path_index, relpath)
    doc = ops.known_doc(depot().index, ref)
    folder, rel, path = ref.folder, ref.relpath, ref.path
    model = to_model(doc)
    model["hashes"] = doc.get("hashes") or {}
    model["metadata"] = siblings.model_summary(depot().layout.folder(folder), path, doc)
    model["description"] = sidecars.read_description(path)
    model["description_html"] = description_html(model["description"])
    model["host_paths"] = host_paths(depot().settings, depot().layout, folder, ref.path_index, rel)
    model["safetensors_metadata"] = sidecars.read_safetensors_metadata(path) if path.is_file() else None
    model["verified_at"], model["verify_reason"] = doc.get("verified_at"), doc.get("verify_reason")
    # Other models of the same stem beside it show the same sidecars and preview (CONTRACT §4).
    shares = siblings.sharing(depot().layout.folder(folder), path)
    rel_dir = rel.rpartition("/")[0]
    model["siblings"] = [f"{rel_dir}/{n}" if rel_dir else n for n in shares["siblings"]]
    model["sidecars"] = shares["sidecars"]
    return jsonify(model)


@bp.patch("/models/<folder>/<path_index>/<path:relpath>")
def model_update(folder: str, path_index: str, relpath: str):  # type: ignore[no-untyped-def]
    body = json_body(("move_to", "description", "ignore_update") + EDIT_FIELDS)
    move_to = field(body, "move_to", dict)
    if move_to is not None:
        move_to = _move_target(move_to, folder, _path_index(path_index))
    description = field(body, "description", str)
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidRequest(f"Field 'description' is {len(description)} characters long; at most "
                             f"{MAX_DESCRIPTION}.")
    edits = check_edits(body)
    if field(body, "ignore_update", bool):
        doc = ops.known_doc(depot().index, _ref(folder, path_index, relpath))
        if not doc.get("update_available"):
            raise Conflict("This model has no update to ignore.")
        edits["update_ignored"] = doc["update_available"]["version_id"]
    if move_to is None and description is None and not edits:
        raise InvalidRequest("Nothing to change: send 'move_to' {folder, path_index, relpath}, 'description', or "
                             f"any of {', '.join(repr(f) for f in EDIT_FIELDS)}.")
    model = ops.update_model(depot().index, _ref(folder, path_index, relpath), move_to=move_to,
                             description=description, edits=edits)
    return jsonify(model)


def _move_target(move_to: dict[str, Any], folder: str, pi: int) -> tuple[str, int, str]:
    """(folder, path_index, relpath) of a move (folder and root default to the model's), each field checked
    before anything is looked up or moved."""
    only_fields(move_to, ("folder", "path_index", "relpath"), "move_to.")
    t_folder = folder_field(move_to, default=folder, prefix="move_to.")
    t_pi = path_index_field(move_to, t_folder, default=pi, prefix="move_to.")
    t_rel = relpath_field(move_to, "relpath", required=True, prefix="move_to.")
    named("move_to.relpath", sidecars.check_model_name, posixpath.basename(t_rel))
    return t_folder, t_pi, t_rel


@bp.delete("/models/<folder>/<path_index>/<path:relpath>")
def model_delete(folder: str, path_index: str, relpath: str):  # type: ignore[no-untyped-def]
    json_body(())
    entry = trash.trash_model(depot().index, _ref(folder, path_index, relpath))
    # 204 as before; where it went, for an undo (POST <Location>/restore)
    return "", 204, {"Location": f"/api/v1/trash/{entry['id']}"}


@bp.post("/models/<folder>/<int:path_index>/<path:relpath>/repair")
def repair(folder: str, path_index: int, relpath: str) -> Any:
    json_body(())  # the recorded source says everything; a body with fields is refused rather than ignored
    ctx = depot()
    ref = ModelRef.resolve(ctx.index, folder, path_index, relpath)
    task, _created = submit_repair(ctx.settings, ctx.index, ctx.services.records, ref, ctx.dispatcher.submit)
    return jsonify(task), 202


@bp.get("/duplicates")
def duplicates():  # type: ignore[no-untyped-def]
    return jsonify(depot().index.duplicates(folder_arg()))


@bp.get("/models/<folder>/<path_index>/<path:relpath>/civitai_images")
def civitai_images(folder: str, path_index: str, relpath: str) -> Any:
    """The pictures Civitai has for this model's version (within the NSFW setting): the preview picker."""
    ctx = depot()
    return jsonify(chosen.civitai_images(ctx.settings, ctx.index, _ref(folder, path_index, relpath),
                                         ctx.services.nsfw_level()))


@bp.put("/models/<folder>/<path_index>/<path:relpath>/preview")
def set_preview(folder: str, path_index: str, relpath: str) -> Any:
    ctx = depot()
    ref = _ref(folder, path_index, relpath)
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None or set(request.form) or len(request.files) != 1:
            raise InvalidRequest("Send the picture as the only multipart field 'file'.")
        data = upload.stream.read(MAX_PREVIEW_BYTES + 1)
        if len(data) > MAX_PREVIEW_BYTES:
            raise InvalidRequest(f"The picture is larger than {MAX_PREVIEW_BYTES // (1024 * 1024)} MiB.",
                                 code="file_too_large", http_status=413)
    else:
        body = json_body(("url", "civitai_image"))
        url = text_field(body, "url", max_len=4096)
        image = field(body, "civitai_image", int)
        if (url is None) == (image is None):
            raise InvalidRequest("Send one of: multipart field 'file', {'url': ...} or {'civitai_image': id}.")
        data = (chosen.fetch_url(ctx.settings, url) if url is not None
                else chosen.civitai_image(ctx.settings, ctx.index, ref, image, ctx.services.nsfw_level()))
    return jsonify(chosen.set_preview(ctx.index, ref, data))


@bp.delete("/models/<folder>/<path_index>/<path:relpath>/preview")
def remove_preview(folder: str, path_index: str, relpath: str) -> Any:
    json_body(())
    return jsonify(chosen.remove_preview(depot().index, _ref(folder, path_index, relpath)))
