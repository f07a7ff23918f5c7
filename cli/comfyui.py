"""``depot comfyui-config [--host NAME] [-o FILE]``: print (or save) a host's ComfyUI ``extra_model_paths.yaml``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import requests

from cli.client import ApiClient, ApiError


def register(sub: Any) -> None:
    p = sub.add_parser("comfyui-config", help="extra_model_paths.yaml for a GPU host's ComfyUI")
    p.add_argument("--host", help="the GPU host (its mount point comes from DEPOT_HOST_MOUNTS on the server)")
    p.add_argument("--default", action="store_true",
                   help="make the store ComfyUI's first path for every folder (is_default: true): the store's "
                        "files win over local files of the same name")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    params = {"host": args.host} if args.host else {}
    if args.default:
        params["default"] = "1"
    text, warning = fetch(ApiClient(), params)
    if warning:
        print(f"depot: warning: {warning}", file=sys.stderr)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def fetch(api: ApiClient, params: dict[str, str]) -> tuple[str, str | None]:
    """The YAML body and the server's warning about it (the JSON client only decodes JSON; errors still come back
    as the JSON error body)."""
    try:
        resp = api.session.get(f"{api.base_url}/api/v1/comfyui/extra_model_paths.yaml", params=params, timeout=30)
    except requests.ConnectionError:
        raise ApiError(0, "unreachable", f"Cannot reach Model Depot at {api.base_url}; is `depot up` running? "
                       "(set DEPOT_URL to point elsewhere)") from None
    if resp.status_code >= 400:
        err = (resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {})
        err = err.get("error") or {}
        raise ApiError(resp.status_code, err.get("code", "http_error"), err.get("message", resp.text[:200]))
    return resp.text, resp.headers.get("X-Depot-Warning")
