"""``depot download URL [--folder F] [--file-id ID] [--filename N] [--sha256 H] [--overwrite] [--wait]`` and
``depot resolve URL``: start a download (the same artifact from several hosts joins one task) and optionally
follow it with a progress bar (bytes, speed, ETA)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli.client import ApiClient, fmt_size, table, wait_for_task
from shared.upstream.urls import SOURCE_NAMES


def register(sub: Any) -> None:
    p = sub.add_parser("download", help="download a model from Civitai, Hugging Face or a direct link")
    p.add_argument("url", help="Civitai model/version link, Hugging Face file link, or any http(s) URL")
    p.add_argument("--folder", help="target folder (default: from the model type, e.g. loras)")
    p.add_argument("--file-id", help="Civitai file id, or the file path inside a Hugging Face repo")
    p.add_argument("--filename", help="save under this file name")
    p.add_argument("--sha256", help="expected SHA256 (checked before publishing)")
    p.add_argument("--overwrite", action="store_true", help="replace a different file of the same name")
    p.add_argument("--wait", action="store_true", help="follow the task until it ends, with a progress bar")
    p.set_defaults(func=run)
    r = sub.add_parser("resolve", help="show the versions and files a download link offers")
    r.add_argument("url")
    r.add_argument("--json", action="store_true", help="print the answer as the API gives it")
    r.set_defaults(func=run_resolve)


def run(args: argparse.Namespace) -> int:
    api = ApiClient()
    # A Civitai file id is a JSON number (the API checks types, it does not convert them); anything else is a
    # path inside a Hugging Face repo
    file_id = int(args.file_id) if args.file_id and args.file_id.isascii() and args.file_id.isdigit() else args.file_id
    body = {"url": args.url, "folder": args.folder, "file_id": file_id, "filename": args.filename,
            "sha256": args.sha256, "overwrite": args.overwrite or None}
    task = api.post("/downloads", json={k: v for k, v in body.items() if v is not None})
    plan = (task.get("params") or {}).get("plan") or {}
    # The name the user chose, when they chose one, as the dashboard and the card show it
    print(f"task {task['id']} ({task['state']}): {args.filename or plan.get('filename', args.url)} -> "
          f"{plan.get('folder', '?')}")
    if not args.wait:
        return 0
    final = wait_for_task(api, task["id"])
    if final["state"] != "succeeded":
        err = final.get("error") or {}
        print(f"download {final['state']}: {err.get('code', '')}: {err.get('message', '')}", file=sys.stderr)
        return 1
    result = final.get("result") or {}
    model = result.get("model") or {}
    note = " (already present)" if result.get("already_present") else ""
    sha = (result.get("hashes") or {}).get("SHA256")
    # (where a GGUF went and why is one of the job's log lines, already printed while waiting)
    print(f"saved {model.get('folder')}/{model.get('relpath')}{note} sha256={sha}")
    return 0


def run_resolve(args: argparse.Namespace) -> int:
    answer = ApiClient().get("/resolve", params={"url": args.url})
    print(json.dumps(answer, indent=2) if args.json else describe(answer))
    return 0


def describe(answer: dict[str, Any]) -> str:
    """The link's model, its files (the one a download takes marked) and where it would be saved."""
    source = {**SOURCE_NAMES, "direct": "Direct link"}.get(answer["source"], answer["source"])
    title = answer.get("model_name") or answer.get("repo") or answer.get("suggested_filename") or answer["url"]
    kind = f" ({answer['model_type']})" if answer.get("model_type") else ""
    lines = [f"{source}: {title}{kind}"]
    version = next((v for v in answer.get("versions") or [] if v["id"] == answer.get("version_id")), None)
    if version:
        others = len(answer["versions"]) - 1
        lines.append(f"version {version['name']} (id {version['id']}, base model {version.get('base_model') or '?'})"
                     + (f"; {others} other version{'s' if others != 1 else ''}: add ?modelVersionId=ID to the "
                        "link for another" if others else ""))
    rows = [["", "FILE", "SIZE", "FORMAT", "FOLDER"]]
    for f in answer.get("files") or []:
        chosen = "*" if (f.get("id") is not None and f.get("id") == answer.get("file_id")) or \
            f.get("name") == answer.get("suggested_filename") else ""
        rows.append([chosen, f.get("name") or f.get("path") or "?", fmt_size(f.get("size")),
                     f.get("format") or f.get("type") or "", f.get("folder") or ""])
    if len(rows) > 1:
        lines += ["", *table(rows)]
    if answer.get("suggested_filename"):
        lines += ["", f"A download saves {answer.get('suggested_folder')}/{answer['suggested_filename']}"
                  + (f" ({fmt_size(answer['size'])})" if answer.get("size") else "")
                  + ("; pick another file with --file-id" if len(rows) > 2 else "") + "."]
    return "\n".join(lines)
