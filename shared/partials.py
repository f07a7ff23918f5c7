"""A download's partial file and its lease key, in one place: the downloader writes ``.NAME.HOST.TASK.aN.part``
beside its target under the lease ``download_lock_name(target)``, and the hygiene job parses the same name and
takes the same lease before it removes a partial nobody can still want. Were the two to drift, the cleanup would
delete the partials of live downloads."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from shared import keys

SUFFIX = ".part"
#: ``.{target name}.{host}.{task id}.a{attempt}.part``
PARTIAL_RE = re.compile(r"^\.(?P<stem>.+)\.(?P<task>[0-9a-zA-Z]+)\.a(?P<attempt>\d+)\.part$")


def partial_for(target: Path, host: str, task_id: str, attempt: int) -> Path:
    """The partial file one attempt of a download writes, beside its target."""
    return target.with_name(f".{target.name}.{host}.{task_id}.a{attempt}{SUFFIX}")


def is_partial_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(SUFFIX)


def task_partials(target: Path, task_id: str) -> list[Path]:
    """Every partial any attempt of this task (on any host) left beside ``target``."""
    if not target.parent.is_dir():
        return []
    prefix = f".{target.name}."
    return [target.parent / n for n in os.listdir(target.parent)
            if n.startswith(prefix) and n.endswith(SUFFIX) and f".{task_id}.a" in n]


def candidate_targets(part: Path) -> tuple[str, list[Path]]:
    """(task id, possible target paths) of a partial. Host names may contain dots, so every split of
    ``NAME.HOST`` is a candidate; locking all of them covers the real one."""
    m = PARTIAL_RE.match(part.name)
    if not m:
        return "", []
    pieces = m.group("stem").split(".")
    return m.group("task"), [part.with_name(".".join(pieces[:i])) for i in range(1, len(pieces))]


def download_lock_name(target: Path) -> str:
    """The download lease key of a target path."""
    return keys.lock("download:" + hashlib.sha1(str(target).encode()).hexdigest())
