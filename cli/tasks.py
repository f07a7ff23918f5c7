"""``depot tasks``: the task table (``--state``, ``--kind``, ``--limit``); ``--watch`` keeps it live over the same
WebSocket the dashboard uses (snapshot, then events; reconnects with backoff after a resync or a lost server).
On a terminal the table is redrawn in place; piped, one line is printed per state change."""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from cli.client import ApiClient, ApiError, progress_bar


def register(sub: Any) -> None:
    p = sub.add_parser("tasks", help="list tasks with their state and progress")
    p.add_argument("--state", help="only tasks in this state")
    p.add_argument("--kind", help="only tasks of this kind (download, scan, verify, preview, workflow, bulk)")
    p.add_argument("--limit", type=int, default=30)
    p.add_argument("--watch", action="store_true", help="keep the table live (Ctrl-C to stop)")
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
    if args.watch:
        return Watch(api, args, sys.stdout).run()
    params = {k: v for k, v in {"state": args.state, "kind": args.kind, "limit": args.limit}.items() if v}
    body = api.get("/tasks", params=params)
    print(render(body["items"]), file=sys.stdout)
    return 0


class Watch:
    """The live table: task state from the socket's snapshot, merged with each event (seq-checked)."""

    def __init__(self, api: ApiClient, args: argparse.Namespace, out: Any,
                 connect: Callable[..., Any] | None = None) -> None:
        self.api, self.args, self.out = api, args, out
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.tasks: dict[str, dict[str, Any]] = {}
        self._drawn = 0.0
        self._connect = connect

    def run(self) -> int:
        backoff = 0.5
        while True:
            try:
                self.session()
                backoff = 0.5  # a session that ended with a resync reconnects at once
            except (OSError, ApiError) as exc:
                if isinstance(exc, ApiError) and exc.status == 401:
                    raise  # retrying will not help: main() prints it
                print(f"depot: live updates interrupted ({exc}); retrying in {backoff:.1f}s", file=sys.stderr)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _open(self) -> Any:
        from cli.wsclient import connect
        url = self.api.ws_url + (f"?token={quote(self.api.token)}" if self.api.token else "")
        return (self._connect or connect)(url)

    def session(self) -> None:
        """One connection: until the server resyncs us or the socket closes."""
        from simple_websocket import ConnectionClosed
        from simple_websocket import ConnectionError as Refused
        try:
            ws = self._open()
        except Refused as exc:
            if exc.status_code == 401:
                raise ApiError(401, "unauthorized", "The server requires a token: set DEPOT_API_TOKEN.") from None
            raise OSError(f"WebSocket refused with HTTP {exc.status_code}") from None
        try:
            while True:
                raw = ws.receive(timeout=1.0)
                if raw is None:
                    self.draw()
                    continue
                msg = json.loads(raw)
                if msg.get("type") == "resync":
                    return
                self.apply(msg)
                self.draw()
        except ConnectionClosed:
            raise OSError("the connection closed") from None
        finally:
            try:
                ws.close()
            except Exception:  # noqa: BLE001 - already closed
                pass

    def apply(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "snapshot":
            for task in msg["tasks"]:
                self._set(task)
            return
        task_id, partial = msg.get("task_id"), msg.get("task") or {}
        known = self.tasks.get(task_id)
        if known and msg.get("seq", 0) <= known.get("seq", 0):
            return
        if known is None or msg.get("seq", 0) > known.get("seq", 0) + 1:
            try:  # first sight of the task, or a gap: the record is the truth
                self._set(self.api.get(f"/tasks/{task_id}"))
            except ApiError:
                pass
            return
        merged = {**known, **partial}
        if partial.get("progress"):
            merged["progress"] = {**(known.get("progress") or {}), **partial["progress"]}
        self._set(merged)

    def _set(self, task: dict[str, Any]) -> None:
        old = self.tasks.get(task["id"])
        self.tasks[task["id"]] = task
        if not self.tty and (old is None or old.get("state") != task.get("state")) and self._wanted(task):
            print(render([task]).split("\n", 1)[1], file=self.out, flush=True)

    def _wanted(self, task: dict[str, Any]) -> bool:
        return ((not self.args.state or task.get("state") == self.args.state)
                and (not self.args.kind or task.get("kind") == self.args.kind))

    def draw(self) -> None:
        if not self.tty or time.monotonic() - self._drawn < 0.5:
            return
        self._drawn = time.monotonic()
        shown = sorted((t for t in self.tasks.values() if self._wanted(t)), key=lambda t: t["id"], reverse=True)
        stamp = time.strftime("%H:%M:%S")
        self.out.write("\x1b[H\x1b[2J" + render(shown[: self.args.limit]) + f"\n\nlive · {stamp} · Ctrl-C to stop\n")
        self.out.flush()
