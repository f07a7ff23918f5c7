"""The suite's own plugins (``tests/leakcheck.py``, ``tests/no_500.py``, ``tests/run_limits.py``), run on planted
tests in a pytest subprocess: each kind of leak and an unhandled 500 fail the test that made them, with a message
naming what was left; a thread still running at the end fails the run and the run still exits; a hang ends the
run with every thread's stack."""
from __future__ import annotations

import pytest

from tests.support import ROOT

pytest_plugins = ("pytester",)

PLANTED = '''
import socket, subprocess, threading, time
import pytest
from flask import Flask
from web import errors

HOLD = []


def boom_app():
    app = Flask("planted")
    errors.register(app)

    @app.get("/boom")
    def boom():
        raise RuntimeError("planted failure")
    return app


@pytest.fixture(scope="session")
def forever():
    # started before any test's snapshot and never stopped: only the end of the run can see it
    t = threading.Thread(target=time.sleep, args=(3600,), name="never-joined")
    t.start()
    return t


def test_clean(forever):
    t = threading.Thread(target=time.sleep, args=(0.2,))
    t.start()  # ends within the grace period: not a leak
    subprocess.run(["true"], check=True)


def test_thread_left_running():
    threading.Thread(target=time.sleep, args=(30,), name="sleeper").start()


def test_process_left_running():
    subprocess.Popen(["sleep", "31"])


def test_orphaned_grandchild():
    subprocess.run(["sh", "-c", "sleep 32 >/dev/null 2>&1 &"], check=True)


def test_listening_socket_left_open():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    HOLD.append(s)


def test_unhandled_500():
    assert boom_app().test_client().get("/boom").status_code == 500


@pytest.mark.allow_500("planted on purpose")
def test_unhandled_500_allowed():
    assert boom_app().test_client().get("/boom").status_code == 500


def test_500_in_a_server_log(tmp_path):
    from tests.no_500 import watch_server_log
    log = tmp_path / "web.log"
    log.write_text("started\\n")
    watch_server_log(log)
    with log.open("a") as f:
        f.write("12:00:00 web.1 | event=unhandled path=/api/v1/models\\nTraceback (most recent call last):\\n")
'''


def test_leaks_and_500s_fail_the_test_that_made_them_and_the_run_still_exits(pytester: pytest.Pytester,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_planted=PLANTED)
    result = pytester.runpytest_subprocess("-p", "tests.leakcheck", "-p", "tests.no_500", "-o", "leakcheck_grace=2",
                                           "-p", "no:cacheprovider", "-q", timeout=180)
    out = result.stdout.str()
    # Then every planted leak or 500 is an error of its own test, naming what was left
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_thread_left_running*", "*non-daemon thread 'sleeper'*still alive*",
        "*ERROR at teardown of test_process_left_running*", "*child process * still running: sleep 31*",
        "*ERROR at teardown of test_orphaned_grandchild*", "*child process * still running: sleep 32*",
        "*ERROR at teardown of test_listening_socket_left_open*", "*listening socket*still open*",
        "*ERROR at teardown of test_unhandled_500 *", "*event=unhandled path=/boom*", "*planted failure*",
        "*ERROR at teardown of test_500_in_a_server_log*", "in */web.log:",
        "*web.1 | event=unhandled path=/api/v1/models",
    ])
    assert "test_clean" not in out and "test_unhandled_500_allowed" not in out, out
    # And the thread a fixture never stopped fails the run at its end, which exits all the same (the thread
    # would have held the interpreter for an hour)
    result.stdout.fnmatch_lines(["*<session end>*", "*non-daemon thread 'never-joined'*still alive*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 8 and outcomes["errors"] == 7, outcomes


STOPS_EARLY = '''
import subprocess
import pytest


@pytest.fixture(scope="session")
def server():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_interrupted(server):
    raise KeyboardInterrupt  # as Ctrl-C does


def test_never_run(server):
    pass
'''


def test_what_fixtures_hold_when_a_run_is_interrupted_is_torn_down_not_reported(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_stop=STOPS_EARLY)
    # When the run is interrupted, the session fixture still up at that point
    result = pytester.runpytest_subprocess("-p", "tests.leakcheck", "-p", "no:cacheprovider", timeout=120)
    # Then it is torn down (at session finish) before the check: nothing is reported as left running
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "<session end>" not in result.stdout.str(), result.stdout.str()


HANGS = '''
import signal
import time


def test_stuck():
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])  # as if stuck where SIGALRM cannot land
    time.sleep(600)
'''


def test_a_hang_the_alarm_cannot_break_ends_with_every_stack(pytester: pytest.Pytester,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_hang=HANGS)
    result = pytester.runpytest_subprocess("-p", "tests.run_limits", "-o", "timeout=1", "-o", "hard_timeout_grace=1",
                                           "-p", "no:cacheprovider", timeout=120)
    assert result.ret == 1
    result.stderr.fnmatch_lines(["Timeout (0:00:02)!", "*test_hang.py*line 7 in test_stuck*"])


RUNS_LONG = '''
import subprocess
import time


def test_long():
    subprocess.Popen(["sleep", "600"])
    time.sleep(600)
'''


def test_a_run_past_its_ceiling_ends_with_every_stack(pytester: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_long=RUNS_LONG)
    result = pytester.runpytest_subprocess("-p", "tests.run_limits", "-o", "run_timeout=3", "-p", "no:cacheprovider",
                                           timeout=120)
    assert result.ret == 3
    result.stderr.fnmatch_lines(["*the test run exceeded run_timeout=3s*", "*test_long.py*line 7 in test_long*"])
