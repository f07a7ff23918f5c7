"""Every model hash the Stable-Diffusion ecosystem uses, computed in one pass over the bytes: SHA256, BLAKE3,
CRC32 (Civitai's little-endian hex), AutoV1 (A1111's legacy 8-hex), AutoV2 (first 10 of SHA256) and AutoV3
(SHA256 of the safetensors data after the header, 12 hex as Civitai stores it). Each expensive hash runs in its
own thread fed by a bounded queue; hashlib, blake3 and ISA-L release the GIL, so a downloader calling ``update()``
on its network thread is barely slowed and the hashes run in parallel on several cores. Digests are upper-case
hex like Civitai's."""
from __future__ import annotations

import hashlib
import os
import queue
import struct
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import blake3
from isal import isal_zlib

from shared.files import read_capped

ALL = ("SHA256", "BLAKE3", "CRC32", "AutoV1", "AutoV2", "AutoV3")
SHA256_ONLY = ("SHA256",)

#: AutoV1 (A1111 ``model_hash``): sha256 of 64 KiB read at offset 1 MiB.
_V1_OFFSET, _V1_LEN = 0x100000, 0x10000
#: The Civitai scanner does not skip a safetensors header this large; it hashes file[8:] instead.
_V3_MAX_SKIP = 16 * 1024 * 1024
#: safetensors refuses headers above 100 MB; bigger "lengths" mean the stream is not safetensors.
_ST_MAX_HEADER = 100_000_000
_QUEUE_DEPTH = 16
#: hash_file reads 1 MiB at a time (fits the CPU caches; bigger reads are slower for every hasher here).
_READ_BYTES = 1024 * 1024
_RING_DEPTH = 6
#: Files up to this size are hashed in the calling thread from one read: for small files (embeddings, small
#: LoRAs, sidecar-sized test files) starting threads and a buffer ring costs far more than the hashing.
_INLINE_BYTES = 4 * 1024 * 1024
_STOP = object()


class _Upper:
    """A hashlib-style hasher whose digest is upper-case hex, as Civitai stores them."""

    def __init__(self, h: Any) -> None:
        self.h = h

    def update(self, data: Any) -> None:
        self.h.update(data)

    def hexdigest(self) -> str:
        return str(self.h.hexdigest()).upper()


class _Crc32:
    def __init__(self) -> None:
        self.crc = 0

    def update(self, data: Any) -> None:
        # ISA-L's SIMD CRC32 is ~4x zlib's here; same polynomial and results.
        self.crc = isal_zlib.crc32(data, self.crc)

    def hexdigest(self) -> str:
        # .NET's Crc32.GetCurrentHash() emits the value's little-endian bytes; Civitai stores that.
        return struct.pack("<I", self.crc & 0xFFFFFFFF).hex().upper()


class _Worker(threading.Thread):
    """One hash fed through a bounded queue; an error is kept and re-raised by ``result``."""

    def __init__(self, name: str, hasher: Any, depth: int = _QUEUE_DEPTH) -> None:
        super().__init__(name=f"hash-{name}", daemon=True)
        self.hasher = hasher
        self.q: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.aborted = False
        self.start()

    def run(self) -> None:
        while True:
            item = self.q.get()
            if item is _STOP:
                return
            if self.error is not None or self.aborted:
                continue  # keep draining so the producer never blocks on a dead consumer
            try:
                self.hasher.update(item)
            except BaseException as exc:  # noqa: BLE001 - surfaced by result()
                self.error = exc

    def feed(self, data: Any) -> None:
        self.q.put(data)

    def finish(self) -> None:
        if self.is_alive():
            self.q.put(_STOP)
            self.join()

    def result(self) -> str:
        if self.error is not None:
            raise self.error
        return str(self.hasher.hexdigest())


class _Inline:
    """A ``_Worker`` without the thread, for small inputs."""

    def __init__(self, name: str, hasher: Any, depth: int = 0) -> None:
        self.hasher = hasher
        self.aborted = False

    def feed(self, data: Any) -> None:
        if not self.aborted:
            self.hasher.update(data)

    def finish(self) -> None:
        pass

    def result(self) -> str:
        return str(self.hasher.hexdigest())


class MultiHasher:
    """Hash a byte stream with several algorithms at once.

    ``update(chunk)`` hands the chunk to one thread per hash; ``digests()`` joins them and returns
    ``{name: HEX}`` for every requested algorithm that applies (AutoV3 only for safetensors streams).
    Use as a context manager (or call ``close()``) so threads never outlive an error. ``threads=False``
    hashes in the calling thread (small inputs)."""

    def __init__(self, algorithms: Iterable[str] = ALL, *, queue_depth: int = _QUEUE_DEPTH,
                 threads: bool = True) -> None:
        wanted = tuple(algorithms)
        unknown = [a for a in wanted if a not in ALL]
        if unknown:
            raise ValueError(f"unknown hash algorithm(s) {unknown}; known: {', '.join(ALL)}")
        self.algorithms = wanted
        self.queue_depth = queue_depth
        self._offset = 0
        self._result: dict[str, str] | None = None
        self._worker = _Worker if threads else _Inline
        self._workers: dict[str, _Worker | _Inline] = {}
        if "SHA256" in wanted or "AutoV2" in wanted:
            self._workers["SHA256"] = self._worker("sha256", _Upper(hashlib.sha256()), queue_depth)
        if "BLAKE3" in wanted:
            self._workers["BLAKE3"] = self._worker("blake3", _Upper(blake3.blake3()), queue_depth)
        if "CRC32" in wanted:
            self._workers["CRC32"] = self._worker("crc32", _Crc32(), queue_depth)
        self._v1 = bytearray() if "AutoV1" in wanted else None
        # AutoV3: the first 9 bytes decide whether this is safetensors; until then they are held back.
        self._v3_head: bytearray | None = bytearray() if "AutoV3" in wanted else None
        self._v3_start: int | None = None
        self._v3: _Worker | _Inline | None = None

    # --- feeding ------------------------------------------------------------------------------------

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        """Add the next bytes of the stream. The chunk must not be modified afterwards (it is hashed later
        in other threads), so mutable buffers are copied."""
        if self._result is not None:
            raise RuntimeError("MultiHasher.update() after digests()")
        self._feed(chunk if isinstance(chunk, bytes) else bytes(chunk))

    def _feed(self, chunk: Any) -> None:
        """``update`` without the defensive copy: the caller guarantees the buffer stays untouched until
        ``queue_depth + 2`` further chunks have been fed (hash_file's buffer ring)."""
        if not chunk:
            return
        for worker in self._workers.values():
            worker.feed(chunk)
        start = self._offset
        self._offset += len(chunk)
        if self._v1 is not None and start < _V1_OFFSET + _V1_LEN and self._offset > _V1_OFFSET:
            lo = max(_V1_OFFSET - start, 0)
            hi = min(_V1_OFFSET + _V1_LEN - start, len(chunk))
            self._v1 += chunk[lo:hi]
        self._feed_v3(chunk, start)

    def _feed_v3(self, chunk: Any, start: int) -> None:
        if self._v3_head is not None and self._v3_start is None:
            self._v3_head += chunk[: max(0, 9 - len(self._v3_head))]
            if len(self._v3_head) < 9:
                return
            (n,) = struct.unpack("<Q", bytes(self._v3_head[:8]))
            if not (2 <= n <= _ST_MAX_HEADER and self._v3_head[8:9] == b"{"):
                self._v3_head = None  # not safetensors: AutoV3 does not apply
                return
            self._v3_start = 8 + n if n < _V3_MAX_SKIP else 8
            self._v3 = self._worker("autov3", _Upper(hashlib.sha256()), self.queue_depth)
        if self._v3 is not None and self._v3_start is not None and self._offset > self._v3_start:
            lo = max(self._v3_start - start, 0)
            self._v3.feed(chunk if lo == 0 else memoryview(chunk)[lo:])

    # --- results ------------------------------------------------------------------------------------

    def digests(self) -> dict[str, str]:
        """Wait for every hash thread and return ``{algorithm: HEX}``; callable more than once."""
        if self._result is not None:
            return dict(self._result)
        self.close()
        out: dict[str, str] = {}
        if "SHA256" in self._workers:
            sha = self._workers["SHA256"].result()
            if "SHA256" in self.algorithms:
                out["SHA256"] = sha
            if "AutoV2" in self.algorithms:
                out["AutoV2"] = sha[:10]
        for name in ("BLAKE3", "CRC32"):
            if name in self._workers:
                out[name] = self._workers[name].result()
        if self._v1 is not None:
            # A1111's legacy rule has no size guard: a short file hashes whatever was there (maybe nothing).
            out["AutoV1"] = hashlib.sha256(bytes(self._v1)).hexdigest()[:8].upper()
        if self._v3 is not None and self._v3_start is not None and self._offset >= self._v3_start:
            out["AutoV3"] = self._v3.result()[:12]
        self._result = {k: out[k] for k in ALL if k in out}
        return dict(self._result)

    def close(self) -> None:
        """Stop and join every hash thread (idempotent). Pending chunks are still hashed unless aborted."""
        for worker in self._all_workers():
            worker.finish()

    def abort(self) -> None:
        """Stop the threads quickly, discarding queued chunks (for errors and cancellation)."""
        for worker in self._all_workers():
            worker.aborted = True
        self.close()
        self._result = self._result or {}

    def _all_workers(self) -> list[_Worker | _Inline]:
        return list(self._workers.values()) + ([self._v3] if self._v3 is not None else [])

    def __enter__(self) -> MultiHasher:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


def hash_file(path: str | Path, algorithms: Iterable[str] = ALL,
              progress: Callable[[int], None] | None = None, chunk: int = 8 * 1024 * 1024) -> dict[str, str]:
    """Hash a file in one pass. ``progress(bytes_so_far)`` is called after every read and may raise to cancel
    (the hash threads are then stopped and the exception propagates). Reads go into a small ring of reused
    buffers (``readinto``): allocating a fresh buffer per read costs more than SHA-256 itself."""
    small = read_capped(path, _INLINE_BYTES)
    if small is not None:
        with MultiHasher(algorithms, threads=False) as hasher:
            hasher._feed(small)
            if progress is not None:
                progress(len(small))
            return hasher.digests()
    step = min(chunk, _READ_BYTES)
    depth = _RING_DEPTH
    ring = [bytearray(step) for _ in range(depth + 2)]  # a buffer is reused only after every thread is past it
    done = 0
    with MultiHasher(algorithms, queue_depth=depth) as hasher, open(path, "rb", buffering=0) as fh:
        try:
            _fadvise_sequential(fh.fileno())
            i = 0
            while True:
                buf = ring[i % len(ring)]
                n = fh.readinto(buf)
                if not n:
                    break
                hasher._feed(memoryview(buf)[:n])
                i += 1
                done += n
                if progress is not None:
                    progress(done)
        except BaseException:
            hasher.abort()
            raise
        return hasher.digests()


def _fadvise_sequential(fd: int) -> None:
    """Hint the kernel to read ahead aggressively (no-op where unsupported)."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        try:
            advise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except OSError:
            pass
