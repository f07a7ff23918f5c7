"""Fixtures for the multi-host tests: ``depot beat`` as a real subprocess with a fast reaper."""
from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import VENV_BIN, base_env


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
