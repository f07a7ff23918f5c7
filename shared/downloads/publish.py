"""Where a download lands and how it appears there: the safe target path inside the store, the per-host,
per-attempt partial file beside it (adopted by a later attempt of the same task on any host), the lease on the
target path (redis-py ``Lock``, renewed while downloading) that keeps two writers apart, and the atomic publish
(fsync file, fence, ``os.replace``, fsync directory) so a model name only ever holds a complete, verified file."""
from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis as redis_lib
from redis.exceptions import LockError

from shared.config import Settings
from shared.downloads.plan import Plan
from shared.errors import Conflict, DiskFull, InvalidPath, InvalidRequest, NotFound, Transient
from shared.files import fsync_dir
from shared.partials import download_lock_name, task_partials
from shared.records import new_task_id
from shared.store.layout import StoreLayout
from shared.store.paths import NAME_MAX, new_relpath
from shared.store.sidecar_files import check_model_name

_FREE_MARGIN = 64 * 1024 * 1024


#: The longest name a download may save under (bytes): its partial ``.NAME.HOST.TASKID.aN.part`` must fit in
#: ``NAME_MAX`` too, whichever host writes it (host names up to Linux's HOST_NAME_MAX, 64) and up to attempt 9999.
MAX_FILENAME_BYTES = NAME_MAX - len(f"..{'h' * 64}.{new_task_id()}.a9999.part")


def check_filename(name: str) -> str:
    """A name a download may save under: a new model name (``check_model_name``) short enough for its partial."""
    check_model_name(name)
    if len(name.encode("utf-8", "surrogatepass")) > MAX_FILENAME_BYTES:
        raise InvalidPath(f"{name[:40]!r}... is too long: a downloaded file's name may hold {MAX_FILENAME_BYTES} "
                          "bytes (its partial file adds the host and task to it while downloading).")
    return name


def target_path(layout: StoreLayout, plan: Plan, params: dict[str, Any]) -> tuple[str, int, str, Path]:
    """(folder, path_index, relpath, absolute path) for this download; never outside the folder root. The API
    checks every field at the door; this runs again in the worker, and checks the name upstream chose."""
    folder = params.get("folder") or plan.folder
    path_index = params.get("path_index") or 0
    name = params.get("filename") or plan.filename
    try:
        check_filename(name)
    except InvalidPath as exc:
        raise InvalidPath(f"Unusable file name: {exc.message} Give another with 'filename'.") from None
    sub = params.get("subfolder")
    relpath = f"{new_relpath(sub)}/{name}" if sub else name
    try:
        spec = layout.folder(folder)
    except NotFound as exc:
        raise InvalidRequest(exc.message) from None
    if not spec.accepts(name):
        raise InvalidRequest(f"ComfyUI does not load {name!r} from {folder!r} (extensions: "
                             f"{', '.join(sorted(spec.extensions))}). Choose another folder or file name.")
    return folder, path_index, relpath, layout.resolve(folder, path_index, relpath)


def adopt_partial(target: Path, task_id: str, mine: Path) -> int:
    """Take over the longest partial an earlier attempt (any host) left, under this attempt's name; drop the
    rest. Safe only under the target lease. Returns the bytes already there."""
    found = sorted(task_partials(target, task_id), key=lambda p: p.stat().st_size, reverse=True)
    for i, p in enumerate(found):
        if i == 0 and p != mine:
            os.replace(p, mine)
        elif p != mine:
            p.unlink(missing_ok=True)
    return mine.stat().st_size if mine.exists() else 0


def remove_partials(target: Path, task_id: str) -> None:
    for p in task_partials(target, task_id):
        p.unlink(missing_ok=True)


def check_free_space(directory: Path, needed: int | None) -> None:
    if needed is None or needed <= 0:
        return
    free = shutil.disk_usage(directory).free
    if free < needed + _FREE_MARGIN:
        raise DiskFull(f"Not enough free space in {directory}: {needed / 2**30:.2f} GiB needed, "
                       f"{free / 2**30:.2f} GiB free. Free some space, then retry.")


def publish(part: Path, target: Path, fence: Callable[[], None]) -> None:
    """fsync the partial, prove ownership, rename it over the model name, fsync the directory."""
    fd = os.open(part, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fence()
    os.replace(part, target)
    fsync_dir(target.parent)


def relocate_partial(part: Path, dest: Path) -> Path:
    """Move a verified partial beside another target (its header routed it to another folder); copied when
    that folder is on another file system. Safe only under both targets' leases."""
    try:
        os.replace(part, dest)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copyfile(part, dest)
        part.unlink()
    return dest


class TargetLease:
    """The download's lease on its target path. Held before any byte is written; renewed by a thread;
    ``check()`` raises once it was lost (another writer may now own the path)."""

    def __init__(self, client: redis_lib.Redis, target: Path, settings: Settings) -> None:
        name = download_lock_name(target)
        self.timeout = max(5.0, float(settings.lease_s))
        self.lock = client.lock(name, timeout=self.timeout, thread_local=False,
                                blocking_timeout=self.timeout + 5.0)
        self.target = target
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> TargetLease:
        if not self.lock.acquire():
            raise Conflict(f"Another download is writing {self.target.name} right now. Wait for it to finish or "
                           "choose another file name.")
        self._thread = threading.Thread(target=self._renew, name="download-lease", daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.timeout / 3):
            try:
                self.lock.reacquire()
            except (LockError, redis_lib.RedisError):
                self.lost = True
                return

    def check(self) -> None:
        if self.lost:
            raise Transient(f"Lost the lease on {self.target.name}; the download will be retried.")

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        try:
            self.lock.release()
        except (LockError, redis_lib.RedisError):
            pass
