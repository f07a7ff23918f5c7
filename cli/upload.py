"""``depot upload FILE [--folder F] [--subfolder S] [--name N] [--sha256 H]``: put a model file from this machine
into the store through the API, in resumable chunks (the dashboard's protocol): the folder defaults to the one
its header suggests; an upload cut short resumes when the same command is run again (the upload's id is kept
in ``~/.cache/depot/uploads.json`` per file path, size and mtime)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from cli.client import ApiClient, ApiError, fmt_size

CHUNK = 16 * 1024 * 1024
_STATE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "depot" / "uploads.json"


def register(sub: Any) -> None:
    p = sub.add_parser("upload", help="upload a model file from this machine into the store (resumable)")
    p.add_argument("file", type=Path)
    p.add_argument("--folder", help="target folder (default: the one the file's header suggests)")
    p.add_argument("--subfolder", help="subfolder inside the folder, e.g. styles/anime")
    p.add_argument("--name", help="save under this file name (default: the file's own)")
    p.add_argument("--sha256", help="expected SHA256 (the upload is refused when it differs)")
    p.set_defaults(func=run)


def _saved() -> dict[str, str]:
    try:
        return dict(json.loads(_STATE.read_text()))
    except (OSError, ValueError):
        return {}


def _remember(key: str, upload_id: str | None) -> None:
    saved = _saved()
    if upload_id:
        saved[key] = upload_id
    else:
        saved.pop(key, None)
    _STATE.parent.mkdir(parents=True, exist_ok=True)
    _STATE.write_text(json.dumps(saved))


def run(args: argparse.Namespace) -> int:
    api = ApiClient()
    path: Path = args.file
    if not path.is_file():
        print(f"depot upload: {path} is not a file", file=sys.stderr)
        return 2
    size = path.stat().st_size
    key = f"{path.resolve()}:{size}:{path.stat().st_mtime_ns}"
    with open(path, "rb") as fh:
        folder = args.folder
        if folder is None:
            found = api.request("POST", "/uploads/inspect", data=fh.read(1024 * 1024),
                                headers={"Content-Type": "application/octet-stream"})
            folder = found.get("folder")
            if folder is None:
                print("depot upload: the file's header does not say what it is; give --folder", file=sys.stderr)
                return 2
            print(f"{path.name}: a {found['kind']}{' for ' + found['family'] if found.get('family') else ''}, "
                  f"into {folder}", file=sys.stderr)
        upload = _resume(api, key)
        if upload is None:
            body = {"folder": folder, "subfolder": args.subfolder, "filename": args.name or path.name, "size": size,
                    "sha256": args.sha256}
            upload = api.post("/uploads", json={k: v for k, v in body.items() if v is not None})
            _remember(key, upload["id"])
        elif upload["offset"]:
            print(f"resuming at {fmt_size(upload['offset'])}", file=sys.stderr)
        return _send(api, fh, upload, size, key)


def _resume(api: ApiClient, key: str) -> dict[str, Any] | None:
    upload_id = _saved().get(key)
    if not upload_id:
        return None
    try:
        return dict(api.get(f"/uploads/{upload_id}"))
    except ApiError:
        _remember(key, None)  # finished, cancelled or expired: start again
        return None


def _send(api: ApiClient, fh: Any, upload: dict[str, Any], size: int, key: str) -> int:
    offset, started, first = upload["offset"], time.monotonic(), upload["offset"]
    while True:
        fh.seek(offset)
        chunk = fh.read(CHUNK)
        try:
            upload = api.request("PATCH", f"/uploads/{upload['id']}", data=chunk, timeout=300,
                                 headers={"Content-Type": "application/offset+octet-stream",
                                          "Upload-Offset": str(offset)})
        except ApiError as exc:
            if exc.status not in (0, 409):
                _remember(key, None)  # refused for good: the server removed what it had
            raise
        offset = upload["offset"]
        rate = (offset - first) / max(1e-3, time.monotonic() - started)
        if sys.stderr.isatty():
            print(f"\r{offset * 100 // max(size, 1):3d}% {fmt_size(offset)}/{fmt_size(size)} {fmt_size(rate)}/s",
                  end="", file=sys.stderr, flush=True)
        if upload.get("model"):
            if sys.stderr.isatty():
                print(file=sys.stderr)
            _remember(key, None)
            model = upload["model"]
            print(f"uploaded {model['folder']}/{model['relpath']} sha256 {model['sha256']}")
            return 0
