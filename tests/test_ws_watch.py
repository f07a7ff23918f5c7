"""``depot tasks --watch`` as a real subprocess over the real socket: it lists the snapshot, prints each state
change live, and after a server-side resync it reconnects and keeps going."""
from __future__ import annotations

import queue
import subprocess
import sys
import threading
from pathlib import Path

from tests.support import base_env
from tests.test_ws_relay import (
    Live,
    live,  # noqa: F401 - fixture
)


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return out


def _wait_line(lines: queue.Queue[str], *needles: str, timeout: float = 15.0) -> str:
    seen = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line with {needles!r}; saw {seen[-10:]!r}") from None
        seen.append(line)
        if all(n in line for n in needles):
            return line


def test_watch_prints_live_state_changes_and_survives_a_resync(live: Live, settings_env: dict[str, str],
                                                               tmp_path: Path) -> None:
    records = live.ctx.services.records
    old, _ = records.create("scan", {"mode": "quick"}, queue="scan")
    env = {**base_env(settings_env), "DEPOT_URL": f"http://127.0.0.1:{live.port}"}
    depot = Path(sys.executable).with_name("depot")
    err = tmp_path / "watch.err"
    proc = subprocess.Popen([str(depot), "tasks", "--watch"], env=env, stdout=subprocess.PIPE, text=True,
                            stderr=err.open("w"))
    try:
        lines = _lines(proc)
        # Then the snapshot's task is listed first
        try:
            _wait_line(lines, old["id"], "queued", timeout=30)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; stderr: {err.read_text()[-2000:]}") from None
        # And a new task's life is printed as it happens
        task, _ = records.create("download", {"url": "http://example.invalid/x"}, queue="downloads")
        _wait_line(lines, task["id"], "queued")
        claim = records.claim(task["id"], host="testhost", worker="w@testhost")
        _wait_line(lines, task["id"], "running")
        # When the relay tells every client to resync (as after a Redis restart)
        relay = live.ctx.relay
        relay.resync_all()
        # Then the watcher reconnects and still sees what happens next
        records.finish(task["id"], claim.attempt, "succeeded", result={})
        _wait_line(lines, task["id"], "succeeded")
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
