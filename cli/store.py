"""``depot scan [--folder F [--path-index N]] [--full] [--fetch-metadata] [--wait]``: start a scan of the model
store."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.client import ApiClient, wait_for_task


def register(sub: Any) -> None:
    p = sub.add_parser("scan", help="bring the model index in line with the disk")
    p.add_argument("--folder", help="scan only this folder (e.g. loras)")
    p.add_argument("--path-index", type=int, metavar="N",
                   help="scan only the folder's N-th root (0 first, in the order GET /api/v1/folders lists them)")
    p.add_argument("--full", action="store_true", help="rehash every file, not only new or changed ones")
    p.add_argument("--fetch-metadata", action="store_true", help="look up models lacking metadata on Civitai")
    p.add_argument("--wait", action="store_true", help="show progress until the scan ends")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    api = ApiClient()
    body = {"mode": "full" if args.full else "quick", "fetch_metadata": bool(args.fetch_metadata)}
    if args.folder:
        body["folder"] = args.folder
    if args.path_index is not None:
        body["path_index"] = args.path_index
    task = api.post("/scans", json=body)
    print(f"scan task {task['id']} ({task['state']})", file=sys.stderr)
    if not args.wait:
        return 0
    task = wait_for_task(api, task["id"])
    if task.get("result") is not None:
        print(json.dumps(task["result"], indent=2))
    if task["state"] != "succeeded":
        err = task.get("error") or {}
        print(f"depot: scan {task['state']}: {err.get('code', '')} {err.get('message', '')}", file=sys.stderr)
        return 1
    return 0
