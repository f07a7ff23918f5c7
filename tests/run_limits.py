"""A pytest plugin giving a run its ceilings, so that a hang ends with every thread's stack and a failure.

  - Per test, pytest-timeout (``timeout``, signal method) fails a hung test with every stack and the run goes
    on. Should its SIGALRM not land (a hang inside C code that never returns to Python), faulthandler dumps
    every stack and exits ``hard_timeout_grace`` seconds later.
  - The whole run: a watchdog thread dumps every stack, kills the child processes and exits past
    ``run_timeout``.
  - SIGTERM (``make test``'s outer ``timeout``) dumps every stack before the process goes.
"""
from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.leakcheck import descendants, kill_processes

#: the real stderr, dup'ed before any test captures fd 2: what a hard exit prints must reach the terminal or CI log
_stderr: Any = sys.__stderr__


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("run_timeout", "seconds the whole run may take before every stack is dumped and it is "
                  "ended (0: no limit)", default="1500")
    parser.addini("hard_timeout_grace", "seconds after a test's timeout that faulthandler dumps every "
                  "stack and exits, should pytest-timeout's signal not end the test", default="60")


def _watchdog(limit: float) -> None:
    time.sleep(limit)
    out = _stderr
    out.write(f"\n\n+++ the test run exceeded run_timeout={limit:.0f}s: every thread's stack, then exit "
              "+++\n")
    out.flush()
    faulthandler.dump_traceback(file=out, all_threads=True)
    kill_processes(descendants())
    os._exit(3)


def pytest_configure(config: pytest.Config) -> None:
    global _stderr
    _stderr = os.fdopen(os.dup(sys.__stderr__.fileno()), "w", buffering=1)
    faulthandler.register(signal.SIGTERM, file=_stderr, all_threads=True, chain=True)
    limit = float(config.getini("run_timeout"))
    if limit > 0:
        threading.Thread(target=_watchdog, args=(limit,), name="run-limits-watchdog", daemon=True).start()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    marker = item.get_closest_marker("timeout")
    try:
        timeout = float(marker.args[0] if marker and marker.args else item.config.getini("timeout") or 0)
    except ValueError:  # pytest-timeout is not loaded
        timeout = 0.0
    if timeout > 0:
        faulthandler.dump_traceback_later(timeout + float(item.config.getini("hard_timeout_grace")),
                                          exit=True, file=_stderr)
    try:
        yield
    finally:
        if timeout > 0:
            faulthandler.cancel_dump_traceback_later()
