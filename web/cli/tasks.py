"""``depot tasks``: the task table (``--state``, ``--kind``, ``--limit``)."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from web.cli.client import ApiClient, progress_bar


def register(sub: Any) -> None:
    p = sub.add_parser("tasks", help="list tasks with their state and progress")
    p.add_argument("--state", help="only tasks in this state")
    p.add_argument("--kind", help="only tasks of this kind (download, scan, verify, preview)")
    p.add_argument("--limit", type=int, default=30)
    p.set_defaults(func=run)


def render(tasks: list[dict[str, Any]]) -> str:
    lines = [f"{'ID':<22} {'KIND':<9} {'STATE':<10} {'HOST':<12} {'TRY':>3}  PROGRESS"]
    for t in tasks:
        detail = progress_bar(t, width=20)
        if t.get("error"):
            detail += f"  {t['error'].get('code')}: {t['error'].get('message', '')[:80]}"
        lines.append(f"{t['id']:<22} {t['kind'] or '':<9} {t['state']:<10} {(t.get('host') or '-'):<12} "
                     f"{t.get('attempt', 0):>3}  {detail}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    api = ApiClient()
    params = {k: v for k, v in {"state": args.state, "kind": args.kind, "limit": args.limit}.items() if v}
    body = api.get("/tasks", params=params)
    print(render(body["items"]), file=sys.stdout)
    return 0
