"""``depot verify [PATH|--folder F] [--mode all] [--wait]`` and ``depot previews [--folder F] [--source S]
[--wait]``: queue a verify or preview job through the API and, with ``--wait``, draw its progress and print
the per-file verdicts. ``depot verify`` exits 1 when a file is corrupt, so scripts can act on it."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from cli.client import ApiClient, ApiError, wait_for_task


def register(sub: Any) -> None:
    v = sub.add_parser("verify", help="check model files against their recorded hashes and formats")
    v.add_argument("path", nargs="?", help="a model file (absolute path, or folder/[path_index/]relpath)")
    v.add_argument("--folder", help="verify every model of this folder (default: the whole store)")
    v.add_argument("--mode", choices=("sha256", "all"), default="sha256", help="hashes to recompute")
    v.add_argument("--wait", action="store_true", help="wait for the result and show progress")
    v.set_defaults(func=run_verify)
    p = sub.add_parser("previews", help="regenerate model previews and thumbnails")
    p.add_argument("path", nargs="?", help="one model (absolute path, or folder/[path_index/]relpath)")
    p.add_argument("--folder", help="only this folder (default: the whole store)")
    p.add_argument("--source", choices=("auto", "embedded", "civitai"), default="auto")
    p.add_argument("--wait", action="store_true", help="wait for the result and show progress")
    p.set_defaults(func=run_previews)


def _locate(api: ApiClient, path: str) -> dict[str, Any] | None:
    """The ref of a file on this machine, from the server's folder list (most specific root wins)."""
    full = os.path.realpath(path)
    best: tuple[int, dict[str, Any]] | None = None
    for folder in api.get("/folders"):
        for index, root in enumerate(folder["paths"]):
            prefix = os.path.realpath(root).rstrip(os.sep) + os.sep
            if full.startswith(prefix) and (best is None or len(prefix) > best[0]):
                rel = full[len(prefix):].replace(os.sep, "/")
                best = (len(prefix), {"folder": folder["name"], "path_index": index, "relpath": rel})
    return best[1] if best else None


def model_ref(api: ApiClient, path: str) -> dict[str, Any]:
    """A model reference from a file path on this machine, or from ``folder/[path_index/]relpath``."""
    if os.path.exists(path):
        ref = _locate(api, path)
        if ref is None:
            raise ApiError(0, "invalid_path", f"{path} is not inside any folder of the model store "
                           "(GET /api/v1/folders lists them).")
        return ref
    folder, _, rest = path.strip("/").partition("/")
    index, _, rel = rest.partition("/")
    if index.isdigit() and rel:
        return {"folder": folder, "path_index": int(index), "relpath": rel}
    if not folder or not rest:
        raise ApiError(0, "invalid_path", f"{path!r}: give a file path or folder/relpath (e.g. loras/x.safetensors).")
    return {"folder": folder, "path_index": 0, "relpath": rest}


def _body(api: ApiClient, args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.path:
        body["models"] = [model_ref(api, args.path)]
    if args.folder:
        body["folder"] = args.folder
    return body


def _run_job(api: ApiClient, path: str, body: dict[str, Any], wait: bool) -> dict[str, Any] | int:
    """Start a job; returns the exit code when there is no result to show (not waited for: 0, did not
    succeed: 1), else the job's result."""
    task = api.post(path, json=body)
    print(f"{task['kind']} task {task['id']} {task['state']}")
    if not wait:
        return 0
    final = wait_for_task(api, task["id"])
    if final["state"] != "succeeded":
        err = final.get("error") or {}
        print(f"{final['state']}: {err.get('code', '')} {err.get('message', '')}".rstrip(), file=sys.stderr)
        return 1
    return final["result"]


def run_verify(args: argparse.Namespace) -> int:
    api = ApiClient()
    result = _run_job(api, "/verifications", {**_body(api, args), "mode": args.mode}, args.wait)
    if isinstance(result, int):
        return result
    for item in result["files"]:
        if item["status"] != "ok":
            m = item["model"]
            reason = f"  {item['reason']}" if item.get("reason") else ""
            print(f"{item['status']:<9} {m['folder']}/{m['relpath']}{reason}")
    print(" ".join(f"{k}={result[k]}" for k in ("checked", "ok", "mismatch", "invalid", "unknown")))
    return 1 if result["mismatch"] or result["invalid"] else 0


def run_previews(args: argparse.Namespace) -> int:
    api = ApiClient()
    result = _run_job(api, "/previews/regenerate", {**_body(api, args), "source": args.source}, args.wait)
    if isinstance(result, int):
        return result
    for item in result["files"]:
        if item.get("error"):
            print(f"failed    {item['model']['folder']}/{item['model']['relpath']}  {item['error']}")
    print(" ".join(f"{k}={result[k]}" for k in ("generated", "skipped", "failed")))
    return 0
