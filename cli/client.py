"""A small client for the REST API used by CLI commands (``DEPOT_URL``, default http://127.0.0.1:8800)."""
from __future__ import annotations

import os
import sys
import time
from typing import Any

import requests


class ApiError(Exception):
    """The API answered with an error body; ``str()`` is the code and the server's message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} [{code}, HTTP {status}]")
        self.status, self.code, self.message = status, code, message


class ApiClient:
    def __init__(self, base_url: str | None = None, token: str | None = None) -> None:
        port = os.environ.get("DEPOT_WEB_PORT", "8800")
        self.base_url = (base_url or os.environ.get("DEPOT_URL") or f"http://127.0.0.1:{port}").rstrip("/")
        self.token = token if token is not None else os.environ.get("DEPOT_API_TOKEN")
        self.session = requests.Session()
        if self.token:
            self.session.headers["Authorization"] = f"Bearer {self.token}"

    def request(self, method: str, path: str, **kw: Any) -> Any:
        url = f"{self.base_url}/api/v1{path}"
        try:
            resp = self.session.request(method, url, timeout=kw.pop("timeout", 30), **kw)
        except requests.ConnectionError:
            raise ApiError(0, "unreachable", f"Cannot reach Model Depot at {self.base_url}; is `depot up` "
                           "running? (set DEPOT_URL to point elsewhere)") from None
        if resp.status_code == 204:
            return None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code >= 400:
            err = (body or {}).get("error") or {}
            raise ApiError(resp.status_code, err.get("code", "http_error"), err.get("message", resp.text[:200]))
        return body

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json=json, **kw)

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url[len("http"):] + "/api/v1/ws"


def table(rows: list[list[str]]) -> list[str]:
    """Rows as aligned columns (the last one left ragged: it holds the long paths and links)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1] for row in rows]


def fmt_size(n: float | None) -> str:
    return "?" if n is None else fmt_amount(n, {"kind": "download"})


def progress_bar(task: dict[str, Any], width: int = 30) -> str:
    """One line: state, a bar, done/total, rate and ETA."""
    p = task.get("progress") or {}
    done, total, rate = p.get("done") or 0, p.get("total"), p.get("rate") or 0
    if total:
        frac = min(1.0, done / total)
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        eta = f" ETA {fmt_seconds((total - done) / rate)}" if rate and done < total else ""
        conns = p.get("connections") or 0
        over = f" {conns} connections" if conns > 1 and task.get("state") == "running" else ""
        return (f"[{bar}] {frac * 100:5.1f}% {fmt_amount(done, task)}/{fmt_amount(total, task)} "
                f"{fmt_rate(rate, task)}{eta}{over}")
    return f"[{'?' * width}] {fmt_amount(done, task)}"


def _is_bytes(task: dict[str, Any]) -> bool:
    return task.get("kind") in ("download", "verify") or (task.get("progress") or {}).get("unit") == "bytes"


def fmt_amount(n: float, task: dict[str, Any]) -> str:
    if not _is_bytes(task):
        return f"{int(n)}"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return str(n)


def fmt_rate(rate: float, task: dict[str, Any]) -> str:
    return f"{fmt_amount(rate, task)}/s" if rate else ""


def fmt_seconds(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def wait_for_task(api: ApiClient, task_id: str, *, show: bool = True, interval: float = 0.5) -> dict[str, Any]:
    """Poll a task until it is finished, drawing a progress bar on a TTY. Returns the final task."""
    terminal = set(api.get("/vocabulary")["terminal"])  # the server names the final states
    seen = 0
    while True:
        task = api.get(f"/tasks/{task_id}")
        if show:
            # The job's own lines (a resume, each retry and why) come above the bar, as they happen
            for event in api.get(f"/tasks/{task_id}/events", params={"since": seen})["events"]:
                seen = max(seen, event["seq"])
                if event["type"] == "log":
                    erase = "\r" + " " * 160 + "\r" if sys.stderr.isatty() else ""
                    print(f"{erase}  {event['task'].get('message', '')}", file=sys.stderr, flush=True)
            line = f"{task['state']:<10} {progress_bar(task)}"
            if sys.stderr.isatty():
                print("\r" + line[:160].ljust(160), end="", file=sys.stderr, flush=True)
        if task["state"] in terminal:
            if show and sys.stderr.isatty():
                print(file=sys.stderr)
            return task
        time.sleep(interval)
