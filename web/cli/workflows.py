"""``depot workflow check FILE [--host H ...] [--offline] [--json]``: which models a workflow (ComfyUI .json, a
PNG/WebP ComfyUI saved, A1111 image or text, AIR URNs) needs, what the store has, and whether it can run on each
GPU host. Exit status: 0 when every needed model is present and the workflow is ready on every live host (or on
each ``--host``), 1 when it is not, 2 when the file could not be checked."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shared.workflows.formats import MAX_BYTES
from web.cli.client import ApiClient, ApiError

_STATE_MARK = {"present": "ok", "missing": "MISSING", "ambiguous": "AMBIGUOUS", "mismatch": "MISMATCH"}


def register(sub: Any) -> None:
    p = sub.add_parser("workflow", help="check a ComfyUI workflow against the store")
    inner = p.add_subparsers(dest="workflow_command", required=True, metavar="ACTION")
    c = inner.add_parser("check", help="which models a workflow needs and on which hosts it can run")
    c.add_argument("file", help="a ComfyUI workflow .json, a PNG/WebP with the workflow inside, or A1111 text")
    c.add_argument("--host", action="append", metavar="H",
                   help="judge readiness on this host (repeatable; default: every host with a live worker)")
    c.add_argument("--offline", action="store_true", help="do not ask Civitai where missing models are")
    c.add_argument("--json", action="store_true", help="print the API answer as JSON (for scripts)")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            print(f"depot: {path} is larger than {MAX_BYTES // (1024 * 1024)} MiB; no workflow is that big.",
                  file=sys.stderr)
            return 2
        data = path.read_bytes()
    except OSError as exc:
        print(f"depot: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    form = {"offline": "true" if args.offline else "false"}
    if args.host:
        form["hosts"] = ",".join(args.host)
    try:
        answer = ApiClient().request("POST", "/workflows/resolve", files={"file": (path.name, data)}, data=form,
                                     timeout=120)
    except ApiError as exc:
        print(f"depot: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        print(render(answer))
    return 0 if runnable(answer) else 1


def runnable(answer: dict[str, Any]) -> bool:
    needed = [r for r in answer["references"] if not r.get("optional")]
    return all(r["state"] == "present" for r in needed) and all(answer["ready"].values())


def render(answer: dict[str, Any]) -> str:
    """A table, one reference per line, then the verdict per host."""
    refs, hosts = answer["references"], sorted(answer["ready"])
    if not refs:
        return "This workflow names no model files."
    rows = [["STATE", "FOLDER", "NAME", "MATCH", *hosts, "WHERE / SOURCE"]]
    for r in refs:
        model, source = r.get("model"), r.get("source")
        where = (f"{model['folder']}/{model['relpath']}" if model else
                 ", ".join(f"{c['folder']}/{c['relpath']}" for c in r.get("candidates") or [])
                 or (source or {}).get("url") or "no source known")
        state = _STATE_MARK.get(r["state"], r["state"]) + (" (optional)" if r.get("optional") else "")
        rows.append([state, r.get("folder") or "?", r["name"], r.get("matched_by") or "-",
                     *("yes" if r["hosts"].get(h) else "no" for h in hosts), where])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows]
    ready = [h for h in hosts if answer["ready"][h]]
    lines.append("")
    if not hosts:
        lines.append("No live GPU host to judge (start a worker, or name one with --host).")
    else:
        lines.append(f"ready on: {', '.join(ready) or 'none'}"
                     + (f"; not ready on: {', '.join(h for h in hosts if h not in ready)}"
                        if len(ready) < len(hosts) else ""))
    return "\n".join(lines)
