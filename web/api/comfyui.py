"""``GET /comfyui/extra_model_paths.yaml?host=``: the ComfyUI config that makes a GPU host see the shared store."""
from __future__ import annotations

import re

from flask import Blueprint, Response, request

from shared.errors import InvalidRequest
from shared.store.comfyui_config import extra_model_paths_yaml, unmapped_host_warning
from web.api.params import choice_arg
from web.context import depot

bp = Blueprint("comfyui", __name__)
_NOT_IN_HOST = re.compile(r"[\x00-\x20\x7f/\\:@]")


@bp.get("/comfyui/extra_model_paths.yaml")
def extra_model_paths():  # type: ignore[no-untyped-def]
    host = request.args.get("host") or None
    if host is not None and (len(host) > 253 or _NOT_IN_HOST.search(host)):
        raise InvalidRequest(f"Query parameter 'host': {host[:40]!r} is not a host name; use the name the worker "
                             "runs with (DEPOT_HOST), e.g. ?host=gpu1")
    default = choice_arg("default", ("0", "1", "true", "false"), "0")
    settings = depot().settings
    text = extra_model_paths_yaml(settings, host, default=default in ("1", "true"))
    headers = {"Content-Disposition": 'inline; filename="extra_model_paths.yaml"'}
    warning = unmapped_host_warning(settings, host)
    if warning:
        # For the CLI to print (the YAML carries it as a comment too); a header holds ASCII only
        headers["X-Depot-Warning"] = warning.encode("ascii", "backslashreplace").decode()
    return Response(text, mimetype="application/yaml", headers=headers)
