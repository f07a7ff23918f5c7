"""A process and everything it started, read from ``/proc``: for tests that run ``depot up`` and must leave no
process behind (the embedded Redis runs in its own session, so a process-group kill alone would miss it)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children, …)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def interrupt_tree(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> list[int]:
    """Ctrl-C for a process started with ``start_new_session``: SIGINT to it, wait; past ``timeout`` (or if it
    exits and leaves children) SIGKILL whatever is left of its tree. Returns the pids still alive after the
    SIGINT phase — empty when the stop was clean."""
    tree = descendants(proc.pid)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(alive(p) for p in tree | {proc.pid}):
        time.sleep(0.1)
    left = sorted(p for p in tree | {proc.pid} if alive(p))
    kill_tree(proc, tree)
    return left


def kill_tree(proc: subprocess.Popen[bytes], known: set[int] | None = None) -> None:
    """SIGKILL the process, its group and every process known or found below it that is still alive."""
    pids = {p for p in (known or set()) if alive(p)} | descendants(proc.pid)
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
