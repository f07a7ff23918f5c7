"""The partial file's writer for a single stream: chunks written on a thread of their own through a bounded queue
(so receiving, writing and hashing overlap on several cores), with the kernel's writeback started as it goes."""
from __future__ import annotations

import errno
import os
import queue
import threading
from typing import Any

from shared.errors import DiskFull

#: chunks queued for the writer thread (bounds memory: depth × chunk size)
_SINK_DEPTH = 8
#: start the kernel's writeback of what was written every this many bytes
_WRITEBACK_BYTES = 64 * 1024 * 1024


class FileSink(threading.Thread):
    """Writes chunks to the partial file on its own thread, through a bounded queue, and starts the kernel's
    writeback every ``_WRITEBACK_BYTES`` so the fsync before publishing has little left to flush."""

    def __init__(self, fh: Any, offset: int) -> None:
        super().__init__(name="download-writer", daemon=True)
        self.fh, self.offset, self.flushed = fh, offset, offset
        self.q: queue.Queue[Any] = queue.Queue(maxsize=_SINK_DEPTH)
        self.error: BaseException | None = None
        self.start()

    def put(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.q.put(data)

    def run(self) -> None:
        while True:
            data = self.q.get()
            if data is None:
                return
            if self.error is not None:
                continue  # drain so the receiver never blocks on a failed writer
            try:
                write_all(self.fh, data)
                self.offset += len(data)
                if self.offset - self.flushed >= _WRITEBACK_BYTES:
                    _start_writeback(self.fh.fileno(), self.flushed, self.offset - self.flushed)
                    self.flushed = self.offset
            except BaseException as exc:  # noqa: BLE001 - re-raised on the receiving thread
                self.error = exc

    def finish(self) -> None:
        self.q.put(None)
        self.join()
        if self.error is not None:
            raise self.error


def _start_writeback(fd: int, offset: int, length: int) -> None:
    # POSIX_FADV_DONTNEED on dirty pages starts their asynchronous writeback (and drops pages already clean);
    # it never blocks on the disk, unlike fdatasync.
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def write_all(fh: Any, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            n = fh.write(view)
            view = view[n:]
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull("The store's disk is full. Free some space and resume the download.") from None
        raise
