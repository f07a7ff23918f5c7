"""Fixtures and steps of the multi-host tests: ``depot beat`` as a real subprocess with a fast reaper, waiting for
a task's end, and a killed host's download resumed on another."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import VENV_BIN, base_env, wait_for


@pytest.fixture
def beat(settings_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``depot beat`` with the reaper every second (production: every 30 s)."""
    env = base_env({**settings_env, "DEPOT_REAPER_INTERVAL_S": "1"})
    Path(settings_env["DEPOT_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    log = open(tmp_path / "beat.log", "wb")
    proc = subprocess.Popen([str(VENV_BIN / "depot"), "beat"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    yield proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    log.close()


def finished(records: Any, task_id: str, timeout: float = 90) -> Any:
    """The task once it has succeeded or failed."""
    return wait_for(lambda: (t := records.get(task_id))["state"] in ("succeeded", "failed") and t, timeout=timeout,
                    interval=0.2, what=f"task {task_id} to finish")


def resumed_on(host: str, workers: Any, records: Any, task_id: str, target: Path, data: bytes) -> Any:
    """Start a worker on ``host`` for a download whose first host died; its second attempt publishes ``data``
    at ``target`` with the right SHA256. Returns the finished task."""
    workers(host=host, queues=["downloads"])
    done = finished(records, task_id)
    assert done["state"] == "succeeded", done["error"]
    assert done["attempt"] == 2 and done["host"] == host
    assert target.read_bytes() == data
    assert done["result"]["hashes"]["SHA256"] == hashlib.sha256(data).hexdigest().upper()
    return done
