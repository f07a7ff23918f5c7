"""``depot scan [--folder F [--path-index N]] [--full] [--fetch-metadata] [--wait]``: start a scan of the model
store."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.client import ApiClient, fmt_size, wait_for_task


def register(sub: Any) -> None:
    p = sub.add_parser("scan", help="bring the model index in line with the disk")
    p.add_argument("--folder", help="scan only this folder (e.g. loras)")
    p.add_argument("--path-index", type=int, metavar="N",
                   help="scan only the folder's N-th root (0 first, in the order GET /api/v1/folders lists them)")
    p.add_argument("--full", action="store_true", help="rehash every file, not only new or changed ones")
    p.add_argument("--fetch-metadata", action="store_true", help="look up models lacking metadata on Civitai")
    p.add_argument("--wait", action="store_true", help="show progress until the scan ends, then what it found")
    p.add_argument("--json", action="store_true", help="with --wait: print the scan's result document")
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
        print(json.dumps(task["result"], indent=2) if args.json else summary(task["result"]))
    if task["state"] != "succeeded":
        err = task.get("error") or {}
        print(f"depot: scan {task['state']}: {err.get('code', '')} {err.get('message', '')}", file=sys.stderr)
        return 1
    return 0


def summary(result: dict[str, Any]) -> str:
    """What a scan found, in a sentence or a few."""
    counts = ", ".join(f"{result.get(k) or 0} {k}" for k in ("added", "changed", "removed"))
    hashed = (f"; hashed {result['hashed']} ({fmt_size(result.get('bytes_hashed'))})" if result.get("hashed")
              else "")
    lines = [f"Scanned {result.get('files', 0):,} model files: {counts}{hashed}."]
    if result.get("lazy"):
        lines.append(f"{result['lazy']} large new files are left to hash later (a full scan, or their first "
                     "verify, hashes them).")
    for key, what in (("unreachable_roots", "could not be read (is it mounted?)"),
                      ("busy_roots", "were being scanned by another scan, so they were left to it")):
        if result.get(key):
            lines.append(f"These folders {what}: {', '.join(r['path'] for r in result[key])}.")
    if result.get("links_skipped"):
        sample = ", ".join(f"{r['folder']}/{r['relpath']}" for r in result.get("links_sample") or [])
        lines.append(f"{result['links_skipped']} symbolic links were not followed (they could loop), e.g. {sample}.")
    meta = result.get("metadata")
    if isinstance(meta, dict):
        lines.append("Civitai metadata: " + ", ".join(f"{v} {k}" for k, v in meta.items()) + ".")
    return "\n".join(lines)
