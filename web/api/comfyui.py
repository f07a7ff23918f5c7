"""``GET /comfyui/extra_model_paths.yaml?host=``: the ComfyUI config that makes a GPU host see the shared store."""
from __future__ import annotations

from flask import Blueprint, Response, request

from shared.comfyui_config import extra_model_paths_yaml
from shared.errors import InvalidRequest
from web.context import depot

bp = Blueprint("comfyui", __name__)


@bp.get("/comfyui/extra_model_paths.yaml")
def extra_model_paths():  # type: ignore[no-untyped-def]
    host = request.args.get("host") or None
    if host is not None and (len(host) > 253 or any(c in host for c in " /\\:@\n\r\t")):
        raise InvalidRequest(f"host {host!r} is not a host name; use the name the worker runs with "
                             "(DEPOT_HOST), e.g. ?host=gpu1", code="invalid_request")
    default = request.args.get("default", "0")
    if default not in ("0", "1", "true", "false"):
        raise InvalidRequest(f"default must be 1 or 0 (true or false), got {default!r}.", code="invalid_request")
    text = extra_model_paths_yaml(depot().settings, host, default=default in ("1", "true"))
    return Response(text, mimetype="application/yaml",
                    headers={"Content-Disposition": 'inline; filename="extra_model_paths.yaml"'})
