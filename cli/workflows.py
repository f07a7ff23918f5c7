"""``depot workflow check FILE [--host H ...] [--offline] [--json]``: which models a workflow (ComfyUI .json, a
PNG/WebP ComfyUI saved, A1111 image or text, AIR URNs) needs, what the store has, and whether it can run on each
GPU host. ``depot workflow fetch FILE [--wait]``: download what is missing (once for every host), with one
progress bar for the set, then the check again. Exit status: 0 when every needed model is present and the
workflow is ready on every live host (or on each ``--host``), 1 when it is not, 2 when the file could not be
checked."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.client import ApiClient, ApiError, table, wait_for_task
from shared.workflows.formats import MAX_BYTES

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
    f = inner.add_parser("fetch", help="download the models a workflow is missing, once for every GPU host")
    f.add_argument("file", help="a ComfyUI workflow .json, a PNG/WebP with the workflow inside, or A1111 text")
    f.add_argument("--host", action="append", metavar="H", help="judge readiness on this host (repeatable)")
    f.add_argument("--offline", action="store_true", help="use only the URLs the workflow gives")
    f.add_argument("--wait", action="store_true", help="follow the downloads with one progress bar, then check")
    f.add_argument("--json", action="store_true", help="print the API answer as JSON (for scripts)")
    f.set_defaults(func=run_fetch)


def _read(path: Path) -> bytes | None:
    try:
        if path.stat().st_size > MAX_BYTES:
            print(f"depot: {path} is larger than {MAX_BYTES // (1024 * 1024)} MiB; no workflow is that big.",
                  file=sys.stderr)
            return None
        return path.read_bytes()
    except OSError as exc:
        print(f"depot: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return None


def _post(route: str, args: argparse.Namespace, path: Path, data: bytes) -> dict[str, Any] | None:
    form = {"offline": "true" if args.offline else "false"}
    if args.host:
        form["hosts"] = ",".join(args.host)
    try:
        answer: dict[str, Any] = ApiClient().request("POST", route, files={"file": (path.name, data)}, data=form,
                                                     timeout=120)
    except ApiError as exc:
        print(f"depot: {exc}", file=sys.stderr)
        return None
    return answer


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    data = _read(path)
    answer = None if data is None else _post("/workflows/resolve", args, path, data)
    if answer is None:
        return 2
    print(json.dumps(answer, indent=2) if args.json else render(answer))
    return 0 if runnable(answer) else 1


def run_fetch(args: argparse.Namespace) -> int:
    path = Path(args.file)
    data = _read(path)
    started = None if data is None else _post("/workflows/fetch", args, path, data)
    if started is None or data is None:
        return 2
    if args.json and not args.wait:
        print(json.dumps(started, indent=2))
        return 0 if started.get("kind") == "workflow" or runnable(started) else 1
    if started.get("kind") != "workflow":  # nothing started: the answer is the check's
        for skip in started.get("skipped") or []:
            print(f"not fetched: {skip['folder'] or '?'}/{skip['name']}: {skip['message']}", file=sys.stderr)
        print("Nothing to fetch." if runnable(started) else "Nothing this fetch can download.")
        print(render(started))
        return 0 if runnable(started) else 1
    task = started
    for skip in task["params"].get("skipped") or []:
        print(f"not fetched: {skip['folder'] or '?'}/{skip['name']}: {skip['message']}", file=sys.stderr)
    children = task["params"]["children"]
    print(f"task {task['id']}: fetching {len(children)} model(s)")
    for c in children:
        print(f"  {c['folder'] or '?'}/{c['relpath'] or c['name']}  (download {c['task_id']})")
    if not args.wait:
        return 0
    final = wait_for_task(ApiClient(), task["id"])
    if final["state"] != "succeeded":
        err = final.get("error") or {}
        print(f"workflow fetch {final['state']}: {err.get('message', '')}", file=sys.stderr)
    after = _post("/workflows/resolve", args, path, data)
    if after is None:
        return 2
    print(json.dumps(after, indent=2) if args.json else render(after))
    return 0 if final["state"] == "succeeded" and runnable(after) else 1


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
    lines = table(rows)
    ready = [h for h in hosts if answer["ready"][h]]
    lines.append("")
    if not hosts:
        lines.append("No live GPU host to judge (start a worker, or name one with --host).")
    else:
        lines.append(f"ready on: {', '.join(ready) or 'none'}"
                     + (f"; not ready on: {', '.join(h for h in hosts if h not in ready)}"
                        if len(ready) < len(hosts) else ""))
    return "\n".join(lines)
