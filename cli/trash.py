"""``depot trash [list]``: what was deleted and is still restorable; ``depot trash restore ID``: put a model back
where it was; ``depot trash empty [ID ...]``: delete for good (every entry, or those named)."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from cli.client import ApiClient, fmt_size, table


def register(sub: Any) -> None:
    p = sub.add_parser("trash", help="deleted models, restorable for DEPOT_TRASH_DAYS")
    inner = p.add_subparsers(dest="trash_cmd")
    inner.add_parser("list", help="what the trash holds (the default)")
    r = inner.add_parser("restore", help="put a deleted model back where it was")
    r.add_argument("id", nargs="+", help="trash id(s), as `depot trash list` shows them")
    e = inner.add_parser("empty", help="delete for good")
    e.add_argument("id", nargs="*", help="only these trash ids (default: all)")
    p.set_defaults(func=run)


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def run(args: argparse.Namespace) -> int:
    api = ApiClient()
    if args.trash_cmd == "restore":
        for entry_id in args.id:
            model = api.post(f"/trash/{entry_id}/restore")
            print(f"restored {model['folder']}/{model['relpath']}")
        return 0
    if args.trash_cmd == "empty":
        ids = args.id or [entry["id"] for entry in api.get("/trash")]
        for entry_id in ids:
            api.request("DELETE", f"/trash/{entry_id}")
        print(f"deleted {len(ids)} model{'' if len(ids) == 1 else 's'} for good")
        return 0
    entries = api.get("/trash")
    if not entries:
        print("The trash is empty.", file=sys.stderr)
        return 0
    now = time.time()
    rows = [["ID", "DELETED", "SIZE", "MODEL"]] + [
        [e["id"], _age(now - e["deleted_at"]), fmt_size(e["size"]), f"{e['folder']}/{e['relpath']}"] for e in entries]
    print("\n".join(table(rows)))
    days = round((entries[0]["expires_at"] - entries[0]["deleted_at"]) / 86400, 1)
    print(f"`depot trash restore ID` puts one back; each is deleted for good {days:g} days after its deletion "
          "(DEPOT_TRASH_DAYS).", file=sys.stderr)
    return 0

