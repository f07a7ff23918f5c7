"""A pytest plugin that makes every test close what it opens, and a run that leaves something running end all
the same, with a failure that names it.

Per test (an autouse fixture, torn down after every other function-scoped fixture), what the test started and
left behind fails it at teardown, after a grace period (``leakcheck_grace``) for things already ending:
  - non-daemon threads (each one keeps the interpreter from exiting);
  - child processes; this process is made a child subreaper, so an orphaned grandchild (a process whose parent
    died) is still ours to see;
  - WebSocket connections (simple-websocket, either side) still connected;
  - listening sockets still open (a server stopped without ``server_close``).
Leaked processes are then killed and WebSockets closed, so one leak does not spill into the next test.

Per run: at session end, once every fixture is torn down, non-daemon threads or child processes still running
fail the run; the processes are killed and, once pytest printed its summary, the interpreter leaves with
``os._exit`` so that a stuck thread cannot hold it at exit.
"""
from __future__ import annotations

import ctypes
import os
import re
import signal
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_PR_SET_CHILD_SUBREAPER = 36


# --- what this process has open ------------------------------------------------------------------------------

def _proc_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (ppid, state, command line) for every process we can read."""
    table: dict[int, tuple[int, str, str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        head, _, rest = stat.rpartition(")")
        fields = rest.split()
        table[int(entry.name)] = (int(fields[1]), fields[0], cmd or head.partition("(")[2])
    return table


def descendants(table: dict[int, tuple[int, str, str]] | None = None) -> dict[int, str]:
    """Live (not zombie) descendants of this process: pid -> command line."""
    root = os.getpid()
    table = _proc_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[int, str] = {}
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            todo.append(pid)
            if table[pid][1] not in "ZX":
                out[pid] = table[pid][2]
    return out


def _listening_inodes() -> dict[int, str]:
    """Socket inode -> "port N" for every listening TCP socket of the machine."""
    out: dict[int, str] = {}
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A":
                port = int(parts[1].rsplit(":", 1)[1], 16)
                out[int(parts[9])] = f"port {port}"
    return out


def listening_sockets() -> dict[int, str]:
    """fd -> description for every listening TCP socket this process holds."""
    inodes: dict[int, int] = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes[int(target[8:-1])] = int(fd)
    if not inodes:
        return {}
    return {inodes[i]: where for i, where in _listening_inodes().items() if i in inodes}


#: Every simple-websocket connection (client or server side) made in this process.
_websockets: weakref.WeakSet[Any] = weakref.WeakSet()


def _track_websockets() -> None:
    try:
        from simple_websocket import ws as sws
    except ImportError:  # pragma: no cover - the project depends on it
        return
    if getattr(sws.Base.__init__, "_leakcheck", False):
        return
    original = sws.Base.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        _websockets.add(self)

    init._leakcheck = True  # type: ignore[attr-defined]
    sws.Base.__init__ = init


def _describe_websocket(ws: Any) -> str:
    if getattr(ws, "is_server", False):
        try:
            host, port = ws.sock.getpeername()[:2]
            peer = f"{host}:{port}"
        except OSError:
            peer = "?"
        return f"server-side WebSocket (a handler's) with peer {peer}"
    return f"WebSocket client to ws://{getattr(ws, 'host', '?')}:{getattr(ws, 'port', '?')}{getattr(ws, 'path', '')}"


def _close_websocket(ws: Any) -> None:
    try:
        ws.close()
    except Exception:  # noqa: BLE001 - it may be half closed already; the socket is what matters
        pass
    try:
        ws.sock.close()
    except Exception:  # noqa: BLE001
        pass


def _thread_name(t: threading.Thread) -> str:
    target = getattr(t, "_target", None)
    where = f" running {getattr(target, '__qualname__', target)!s}" if target is not None else ""
    return f"thread {t.name!r}{where}"


def kill_processes(pids: dict[int, str]) -> None:
    """SIGKILL each of these processes (ours: a leak found or a run given up on)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _reap_adopted() -> None:
    """Reap zombies that became ours only as a subreaper (orphans); our own subprocesses are left to Popen."""
    own = {pid for pid, (ppid, state, _) in _proc_table().items() if ppid == os.getpid() and state == "Z"}
    for pid in own & _State.adopted_candidates:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        _State.adopted_candidates.discard(pid)


# --- leaks per test --------------------------------------------------------------------------------------------

class _State:
    #: descendants seen with another parent than us: once they are our zombies, they are orphans we adopted
    adopted_candidates: set[int] = set()
    #: processes that outlive tests by design (the session's redis-server): pid -> why
    lasting: dict[int, str] = {}
    session: Any = None
    exit_hard = False


def outlives_test(pid: int, why: str) -> None:
    """Declare a child process that a session- or module-scoped fixture owns (e.g. a restarted redis-server),
    so a test that (re)starts it is not blamed for leaking it."""
    _State.lasting[pid] = why


@dataclass
class _Snapshot:
    threads: set[threading.Thread] = field(default_factory=set)
    pids: set[int] = field(default_factory=set)
    websockets: set[int] = field(default_factory=set)
    listening: set[int] = field(default_factory=set)

    @classmethod
    def take(cls) -> _Snapshot:
        me = os.getpid()
        table = _proc_table()
        procs = descendants(table)
        _State.adopted_candidates &= set(table)
        _State.adopted_candidates |= {p for p in procs if table[p][0] != me}
        return cls(set(threading.enumerate()), set(procs), {id(w) for w in list(_websockets)},
                   set(listening_sockets()))


def _grace(config: pytest.Config) -> float:
    return float(config.getini("leakcheck_grace"))


def _loop_executor_thread(t: threading.Thread) -> bool:
    """A worker of an asyncio loop's default executor: the loop adds them as it needs them (Playwright's loop,
    owned by the module's browser fixture, does so mid-module) and shuts them down when its owner closes it."""
    return re.fullmatch(r"asyncio_\d+", t.name) is not None and getattr(getattr(t, "_target", None), "__module__",
                                                                        "") == "concurrent.futures.thread"


def _new_threads(before: _Snapshot, deadline: float) -> list[threading.Thread]:
    new = [t for t in threading.enumerate()
           if t not in before.threads and not t.daemon and t.is_alive() and not _loop_executor_thread(t)]
    for t in new:
        t.join(max(0.0, deadline - time.monotonic()))
    return [t for t in new if t.is_alive()]


def _started_by_test(before: _Snapshot) -> dict[int, str]:
    """Processes that the test started: new ones whose nearest older ancestor is this process. What an older
    child spawns (a renderer of the module's browser, a pool process of a module's worker) is that child's
    owner's business."""
    me = os.getpid()
    table = _proc_table()
    out: dict[int, str] = {}
    for pid, cmd in descendants(table).items():
        if pid in before.pids or pid in _State.lasting:
            continue
        ancestor = table.get(pid, (me,))[0]
        while ancestor != me and ancestor not in before.pids and ancestor in table:
            ancestor = table[ancestor][0]
        if ancestor == me:
            out[pid] = cmd
    return out


def _new_processes(before: _Snapshot, deadline: float) -> dict[int, str]:
    while True:
        left = _started_by_test(before)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def _open_websockets(before: _Snapshot, deadline: float) -> list[Any]:
    while True:
        left = [w for w in list(_websockets) if id(w) not in before.websockets and w.connected]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def _open_listeners(before: _Snapshot) -> dict[int, str]:
    left = {fd: w for fd, w in listening_sockets().items() if fd not in before.listening}
    if left:
        import gc
        gc.collect()  # an unreachable server object is closed by the collector, not leaked by the test
        left = {fd: w for fd, w in listening_sockets().items() if fd not in before.listening}
    return left


@pytest.fixture(autouse=True)
def _no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves running what it started: threads, processes, WebSockets, listening sockets."""
    before = _Snapshot.take()
    yield
    deadline = time.monotonic() + _grace(request.config)
    problems: list[str] = []
    sockets = _open_websockets(before, deadline)
    problems += [f"{_describe_websocket(w)} still connected" for w in sockets]
    for w in sockets:
        _close_websocket(w)
    if sockets:  # their reader threads end once closed: give them a moment even if the grace is spent
        deadline = max(deadline, time.monotonic() + 2.0)
    threads = _new_threads(before, deadline)
    problems += [f"non-daemon {_thread_name(t)} still alive" for t in threads]
    procs = _new_processes(before, deadline)
    problems += [f"child process {pid} still running: {cmd[:300]}" for pid, cmd in procs.items()]
    kill_processes(procs)
    listeners = _open_listeners(before)
    problems += [f"listening socket (fd {fd}, {where}) still open" for fd, where in listeners.items()]
    _reap_adopted()
    if problems:
        pytest.fail("the test left behind what it opened (close it in the test or its fixture):\n  - "
                    + "\n  - ".join(problems), pytrace=False)


# --- the run's ceiling and its end -----------------------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("leakcheck_grace", "seconds a test's leftover threads/processes get to end before they count "
                  "as leaked", default="10")


def _set_subreaper() -> None:
    """Orphans of our subprocesses are reparented to us rather than to init, so we see (and end) them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def pytest_configure(config: pytest.Config) -> None:
    _set_subreaper()
    _track_websockets()


def pytest_sessionstart(session: pytest.Session) -> None:
    _State.session = session


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Everything is torn down now (trylast: after the runner's own sessionfinish, which tears down what an
    interrupted run left set up), and the summary is still to be printed: whatever still runs was leaked, and
    would keep the interpreter alive."""
    deadline = time.monotonic() + _grace(session.config)
    threads = [t for t in threading.enumerate()
               if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    threads = [t for t in threads if t.is_alive()]
    while (procs := descendants()) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not threads and not procs:
        return
    left = [f"non-daemon {_thread_name(t)} still alive" for t in threads]
    left += [f"child process {pid} still running (killed now): {cmd[:300]}" for pid, cmd in procs.items()]
    kill_processes(procs)
    _State.exit_hard = True
    text = ("at the end of the run these were still running; each would keep the run from exiting or outlive "
            "it:\n  - " + "\n  - ".join(left))
    if threads:
        frames = sys._current_frames()
        for t in threads:
            frame = frames.get(t.ident or -1)
            if frame is not None:
                text += f"\n\n{_thread_name(t)}:\n" + "".join(traceback.format_stack(frame))
    report = pytest.TestReport(nodeid="tests/leakcheck.py::<session end>", location=("tests/leakcheck.py", 0,
                               "<session end>"), keywords={}, outcome="failed", longrepr=text, when="teardown")
    session.config.hook.pytest_runtest_logreport(report=report)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """After the summary: leave now if something was left running, rather than wait for it at exit."""
    if not _State.exit_hard:
        return
    status = int(_State.session.exitstatus) if _State.session is not None else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status or 1)
