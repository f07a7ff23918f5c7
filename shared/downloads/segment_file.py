"""The pieces of a segmented download that are about the file rather than the connections: the map of finished
ranges (saved with the task, so any attempt resumes fetching only what is missing), the hashing of pieces that
arrive in any order strictly in file order, and writing at an offset into a partial given its full length.

``Feeder`` gets each piece right after it is written. A piece at the hashed frontier is hashed from memory;
pieces ahead of it are kept in memory up to ``AHEAD_BYTES``, and beyond that only their range is noted and the
bytes are read back from the file (the page cache, freshly written) when the frontier gets there. ``reread``
counts those bytes, and a resumed attempt re-reads the finished part once."""
from __future__ import annotations

import bisect
import errno
import os
import queue
import threading
from dataclasses import dataclass, field

import orjson

from shared.errors import DiskFull
from shared.media.hashing import MultiHasher

#: bytes ahead of the hashed frontier kept in memory for the hashes (beyond: read back from the file)
AHEAD_BYTES = 256 * 1024 * 1024
_REREAD_PIECE = 8 * 1024 * 1024
_WRITEBACK_BYTES = 64 * 1024 * 1024


@dataclass
class SegmentMap:
    """What is known of a segmented partial: total length, validator, storage link and finished ranges."""

    total: int
    validator: str
    done: list[tuple[int, int]] = field(default_factory=list)

    def dumps(self) -> str:
        return orjson.dumps({"total": self.total, "validator": self.validator, "done": self.done}).decode()

    @classmethod
    def loads(cls, raw: str | None) -> SegmentMap | None:
        try:
            if not raw:
                return None
            data = orjson.loads(raw)
            return cls(int(data["total"]), str(data["validator"]), [(int(s), int(e)) for s, e in data["done"]])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None

    def missing(self) -> list[tuple[int, int]]:
        out, at = [], 0
        for s, e in sorted(self.done):
            if s > at:
                out.append((at, s))
            at = max(at, e)
        if at < self.total:
            out.append((at, self.total))
        return out



class Feeder(threading.Thread):
    """Hashes the file in order while pieces arrive in any order (see the module's docstring)."""

    def __init__(self, hasher: MultiHasher, fd: int, done: list[tuple[int, int]]) -> None:
        super().__init__(name="download-hash-feeder", daemon=True)
        self.hasher, self.fd = hasher, fd
        self.frontier, self.reread, self.flushed = 0, 0, 0
        self.noted: list[tuple[int, int]] = sorted(done)  #: finished ranges whose bytes are in the file only
        self.ahead: dict[int, bytes] = {}
        self.ahead_bytes = 0
        self.q: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=64)
        self.error: BaseException | None = None
        self.start()

    def put(self, offset: int, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.q.put((offset, data))

    def finish(self) -> None:
        self.q.put(None)
        self.join()
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        try:
            self._advance()
            while (item := self.q.get()) is not None:
                offset, data = item
                if offset == self.frontier:
                    self._hash(data)
                elif self.ahead_bytes + len(data) <= AHEAD_BYTES:
                    self.ahead[offset] = data
                    self.ahead_bytes += len(data)
                else:
                    bisect.insort(self.noted, (offset, offset + len(data)))
                self._advance()
        except BaseException as exc:  # noqa: BLE001 - raised again on the transfer's thread
            self.error = exc
            while self.q.get() is not None:
                pass

    def _hash(self, data: bytes) -> None:
        self.hasher.update(data)
        self.frontier += len(data)
        if self.frontier - self.flushed >= _WRITEBACK_BYTES:
            # What is hashed is never read again: start its writeback now (POSIX_FADV_DONTNEED on dirty pages
            # starts it without waiting), so the fsync before publishing has little left to flush.
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(self.fd, self.flushed, self.frontier - self.flushed, os.POSIX_FADV_DONTNEED)
            self.flushed = self.frontier

    def _advance(self) -> None:
        while True:
            data = self.ahead.pop(self.frontier, None)
            if data is not None:
                self.ahead_bytes -= len(data)
                self._hash(data)
                continue
            i = bisect.bisect_right(self.noted, (self.frontier, float("inf"))) - 1
            if i < 0 or not self.noted[i][0] <= self.frontier < self.noted[i][1]:
                return
            end = self.noted[i][1]
            nearest = min((o for o in self.ahead if self.frontier < o < end), default=end)
            while self.frontier < nearest:
                data = os.pread(self.fd, min(_REREAD_PIECE, nearest - self.frontier), self.frontier)
                if not data:
                    raise OSError(errno.EIO, "the partial file is shorter than its finished ranges")
                self.reread += len(data)
                self._hash(data)
            if self.frontier >= end:
                del self.noted[i]


def reserve(fd: int, size: int) -> None:
    """Give the partial its full length, with the blocks allocated where the filesystem can (no fragmentation,
    and a full disk is found now rather than at 90 %)."""
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull("The store's disk has no room for this file. Free some space and retry.") from None
        os.ftruncate(fd, size)  # a filesystem without fallocate: a sparse file of the right length


def pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n
