"""One download over several connections: the file is cut into segments fetched with ``Range`` requests at once
and written at their offsets in the one partial file (``os.pwrite``, space reserved first), while the hashes
still see the bytes strictly in order, as the contiguous prefix grows.

Storage CDNs cap each connection, not the client, so N connections fetch up to N times faster. The first
connection is the transfer's own request for the first segment: when it answers ``206`` with a total length of
at least two segments, it is segment 0 and the other connections take the next segments in file order
(so the hashed prefix keeps up); a connection with nothing left to take splits the largest unfinished segment
in two (work stealing), so one slow or stalled connection does not hold the file. Every connection must see the
same validator (ETag, else Last-Modified) and length; a change means the file changed on the server and
``Changed`` sends the caller back to a single stream from a clean partial.

Each piece goes to the hashes right after it is written (``segment_file.Feeder``: in file order, from memory
where it can). The map of finished ranges is saved (``save``) about once a second, and before the partial is
given its full length, so an attempt on any host resumes fetching only what is missing."""
from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import urllib3

from shared.downloads.segment_file import Feeder, SegmentMap, pwrite_all, reserve
from shared.errors import DepotError, DiskFull, Transient
from shared.media.hashing import MultiHasher
from shared.upstream.http import HttpClient, backoff, netloc, network_reason, raise_for_status
from shared.upstream.origin_gate import OriginGate

#: what a dropped, refused or silent connection raises (reconnect and go on)
NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                  urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)
#: a segment is split only when both halves would be at least this big
_MIN_SPLIT = 1024 * 1024
#: how often progress is reported and the map of finished ranges saved
_TICK_S = 0.25
_SAVE_S = 1.0


@dataclass(frozen=True)
class SplitOptions:
    """How a download may be split: ``connections`` at most (1: never), ``segment_bytes`` per piece, the
    origin's shared ceiling (``gate``), and where the map of finished ranges is saved (``save``)."""

    connections: int
    segment_bytes: int
    gate: OriginGate | None
    save: Callable[[str], None]


class Changed(Exception):
    """The file on the server is not the one the segments came from (validator or length differ), or the server
    stopped taking ranges: start again from a clean partial over one stream."""


@dataclass
class _Segment:
    start: int
    end: int  #: exclusive; lowered when another connection takes the second half
    pos: int = -1  #: the bytes before it are written (and handed to the hashes)
    owner: int | None = None
    #: the end of the piece being written now: a split never cuts below it (its bytes must be hashed once)
    claimed: int = 0

    def __post_init__(self) -> None:
        if self.pos < 0:
            self.pos = self.start

    def left(self) -> int:
        return self.end - max(self.pos, self.claimed)


def validator_of(resp: requests.Response) -> str:
    return resp.headers.get("ETag") or resp.headers.get("Last-Modified") or ""


def total_of(resp: requests.Response) -> int | None:
    """The full length a ``206`` names in ``Content-Range`` (None when it does not)."""
    raw = resp.headers.get("Content-Range", "")
    if resp.status_code != 206 or "/" not in raw or raw.endswith("/*"):
        return None
    try:
        return int(raw.rsplit("/", 1)[1])
    except ValueError:
        return None


class SegmentedFetch:
    """The segmented part of one transfer; ``Transfer`` hands it the first response (or a saved map to resume)."""

    def __init__(self, http: HttpClient, url: str, key: str | None, part: Path, options: SplitOptions, *,
                 chunk_bytes: int, retries: int, log: Callable[[str], None], sleep: Callable[[float], None],
                 chunks: Callable[[requests.Response, int], Any], first_piece: Callable[[bytes, str], None]) -> None:
        self.http, self.origin_url, self.key, self.part = http, url, key, part
        self.connections, self.segment_bytes, self.chunk_bytes = options.connections, options.segment_bytes, chunk_bytes
        self.retries, self.gate, self.save, self.log, self.sleep = retries, options.gate, options.save, log, sleep
        self.chunks, self.first_piece = chunks, first_piece
        self.lock = threading.Lock()
        self.segments: list[_Segment] = []
        self.received = 0
        self.failures = 0
        self.splits = 0  #: segments cut in two for an idle connection
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.url = url
        self.map: SegmentMap | None = None
        #: the map as last saved: what a retry after an error resumes from
        self.last: SegmentMap | None = None
        #: the origin slots this file's connections hold, renewed while they last
        self.held: set[tuple[str, str]] = set()
        self.first_slot: tuple[str, str] | None = None
        self.first_resp: requests.Response | None = None
        self.first_pieces: Iterator[bytes] | None = None
        #: the responses being read now (closed at once on a stop)
        self.reading: set[requests.Response] = set()

    def worth(self, total: int) -> bool:
        return self.connections > 1 and total >= 2 * self.segment_bytes

    # --- the whole file ---------------------------------------------------------------------------------

    def run(self, first: requests.Response | None, smap: SegmentMap, storage_url: str,
            hasher: MultiHasher, progress: Callable[..., None], first_slot: tuple[str, str] | None = None,
            first_pieces: Iterator[bytes] | None = None) -> None:
        """Fetch what ``smap`` lacks into the partial, hashing the whole file (the bytes read back from the file
        for the hashes are logged). ``first`` (a ``206`` from byte 0) is used as segment 0's connection, with the
        origin slot ``first_slot`` (origin, holder) its request was opened under (given back when it ends). ``progress``
        may raise to stop (pause, cancel): the finished ranges are saved first. ``first_pieces``: the first
        response's body as read so far and to come (when some was read to judge the server)."""
        self.first_slot, self.first_resp, self.first_pieces = first_slot, first, first_pieces
        self.map, self.url = smap, storage_url
        self.segments, self.error, self.stop = [], None, threading.Event()
        for start, end in smap.missing():
            for s in range(start, end, self.segment_bytes):
                self.segments.append(_Segment(s, min(end, s + self.segment_bytes)))
        self.received = sum(e - s for s, e in smap.done)
        self._save()  # before the partial takes the file's full length: a map must always say what is in it
        mode = "r+b" if self.part.exists() else "w+b"
        with open(self.part, mode, buffering=0) as fh:
            if os.fstat(fh.fileno()).st_size != smap.total:
                reserve(fh.fileno(), smap.total)
            feeder = Feeder(hasher, fh.fileno(), smap.done)
            self._feeder_put = feeder.put
            n = min(self.connections, len(self.segments)) or 0
            if first is not None and n:
                self.segments[0].owner = 0  # the first response's bytes are segment 0's, whoever starts first
            threads = [threading.Thread(target=self._connection, args=(i, fh.fileno(), first if i == 0 else None),
                                        name=f"download-segment-{i}", daemon=True) for i in range(n)]
            if first is not None and n == 0:
                first.close()
                if first_slot is not None and self.gate is not None:
                    self.gate.release(*first_slot)
            here = smap.total - sum(x.end - x.start for x in self.segments)
            self.log(f"{n} connection{'s' if n != 1 else ''}, {len(self.segments)} segments of "
                     f"{self.segment_bytes // 2**20} MiB" + (f"; {here} bytes were already here" if here else ""))
            for t in threads:
                t.start()
            try:
                self._watch(threads, progress)
            finally:
                self.stop.set()
                with self.lock:
                    reading = list(self.reading)
                for resp in reading:
                    resp.close()  # a pause or cancel does not wait for a slow connection's next bytes
                for t in threads:
                    t.join()
                self._save()
                feeder_error: BaseException | None = None
                try:
                    feeder.finish()
                except BaseException as exc:  # noqa: BLE001 - the transfer's own error comes first
                    feeder_error = exc
            if self.error is not None:
                raise self.error
            if feeder_error is not None:
                raise feeder_error
        # What the hashes could not take from memory (pieces too far ahead of the hashed prefix, or a resumed
        # attempt's finished ranges) came back from the file, most likely from the page cache
        self.log(f"hashed in file order; {feeder.reread / 2**20:.1f} MiB of {smap.total / 2**20:.1f} MiB read back "
                 "from the file for the hashes")

    def _watch(self, threads: list[threading.Thread], progress: Callable[..., None]) -> None:
        assert self.map is not None
        saved = time.monotonic()
        while any(t.is_alive() for t in threads):
            time.sleep(_TICK_S)
            if self.error is not None:
                return
            progress(self.received, self.map.total, **self._view())
            if time.monotonic() - saved >= _SAVE_S:
                self._save()
                self._renew_slots()
                saved = time.monotonic()
        if self.error is None and self.received < self.map.total:
            raise Transient("The download's segments ended before the file was complete; retrying.")
        if self.splits:
            self.log(f"{self.splits} slow segment{'s were' if self.splits != 1 else ' was'} split between connections")
        progress(self.received, self.map.total)

    def _view(self) -> dict[str, Any]:
        """The connections at work and their segments (start, reached, end), for the queue's segment strip."""
        with self.lock:
            busy = [[s.start, s.pos, s.end] for s in self.segments if s.owner is not None and s.pos < s.end]
        return {"connections": len(busy), "segments": busy}

    def _renew_slots(self) -> None:
        if self.gate is None:
            return
        with self.lock:
            held = list(self.held)
        for origin, holder in held:
            self.gate.acquire(origin, holder, force=True)

    def _save(self) -> None:
        if self.map is None:
            return
        with self.lock:
            done = sorted([(s.start, s.pos) for s in self.segments if s.pos > s.start] + list(self.map.done))
        merged: list[tuple[int, int]] = []
        for s, e in done:
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        self.last = SegmentMap(self.map.total, self.map.validator, merged)
        self.save(self.last.dumps())

    # --- one connection ---------------------------------------------------------------------------------

    def _take(self, me: int) -> _Segment | None:
        """The first segment nobody fetches, else the second half of the biggest one left (work stealing)."""
        with self.lock:
            for seg in self.segments:
                if seg.owner is None and seg.pos < seg.end:
                    seg.owner = me
                    return seg
            busy = max((s for s in self.segments if s.owner is not None), key=_Segment.left, default=None)
            if busy is None or busy.left() < 2 * max(64 * 1024, min(_MIN_SPLIT, self.segment_bytes // 4)):
                return None
            self.splits += 1
            mid = busy.end - busy.left() // 2
            mid += -mid % 65536  # whole pages at the split, never below the bytes being written
            stolen = _Segment(mid, busy.end, owner=me)
            busy.end = mid
            self.segments.append(stolen)
            return stolen

    def _connection(self, me: int, fd: int, first: requests.Response | None) -> None:
        holder = OriginGate.new_holder()
        origin = netloc(self.url)
        holding = False
        if first is not None and self.first_slot is not None:
            (origin, holder), holding = self.first_slot, True  # the first request was opened under this slot
            with self.lock:
                self.held.add((origin, holder))
        try:
            while not self.stop.is_set():
                seg = self.segments[0] if first is not None else self._take(me)
                if seg is None:
                    if first is not None:
                        first.close()
                    return
                if self.gate is not None and not holding:
                    holding = self.gate.acquire(origin, holder)
                    if holding:
                        with self.lock:
                            self.held.add((origin, holder))
                    else:
                        with self.lock:
                            seg.owner = None
                        return  # the origin's ceiling is reached: fewer connections for this file
                self._fetch(seg, fd, first, me)
                first = None
                with self.lock:
                    seg.owner = None
        except BaseException as exc:  # noqa: BLE001 - raised on the transfer's thread
            if self.error is None and not self.stop.is_set():  # after a stop, a closed socket is no news
                self.error = exc
            self.stop.set()
        finally:
            if first is not None:
                first.close()
            if holding and self.gate is not None:
                with self.lock:
                    self.held.discard((origin, holder))
                self.gate.release(origin, holder)

    def _fetch(self, seg: _Segment, fd: int, resp: requests.Response | None, me: int) -> None:
        """Fetch ``seg`` to its (possibly lowered) end, reconnecting after errors."""
        while seg.pos < seg.end and not self.stop.is_set():
            try:
                if resp is None:
                    resp = self._open(seg)
                with self.lock:
                    self.reading.add(resp)
                self._receive(seg, fd, resp, me)
            except (Changed, DiskFull):
                raise
            except DepotError as exc:
                if not exc.retryable:
                    raise
                self._failed(exc, exc.retry_after)
            except (OSError, *NETWORK_ERRORS) as exc:
                if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise DiskFull("The store's disk is full. Free some space and resume the download.") from None
                if not isinstance(exc, NETWORK_ERRORS):
                    raise
                self._failed(Transient(f"A connection to {netloc(self.url)} failed ({network_reason(exc)})."), None)
            finally:
                if resp is not None:
                    with self.lock:
                        self.reading.discard(resp)
                    resp.close()
                resp = None

    def _wait(self, seconds: float) -> None:
        """Sleep, but no longer than the whole file goes on (another connection's error stops them all)."""
        end = time.monotonic() + seconds
        while not self.stop.is_set() and (left := end - time.monotonic()) > 0:
            self.sleep(min(0.2, left))

    def _failed(self, exc: DepotError, wait: float | None) -> None:
        with self.lock:
            self.failures += 1
            failures = self.failures
        if failures > self.retries * max(1, self.connections):
            raise exc
        if exc.code == "rate_limited" or wait:
            if self.gate is not None:
                self.gate.pause(netloc(self.url), backoff(0, wait))
        self.log(f"segment retry {failures}: {exc.details.get('reason') or exc.message}")
        self._wait(backoff(min(failures, 6) - 1, wait) if wait is None else backoff(0, wait))

    def _open(self, seg: _Segment) -> requests.Response:
        if self.gate is not None and (left := self.gate.paused_for(netloc(self.url))) > 0:
            self._wait(left)
        headers = {"Accept-Encoding": "identity", "Range": f"bytes={seg.pos}-{seg.end - 1}"}
        direct = self.url != self.origin_url
        resp = self.http.open(self.url, key=None if direct else self.key, headers=headers)
        if not direct:
            self.url = resp.url  # the storage link the origin sent: the next connections go there directly
        elif resp.status_code in (401, 403, 404, 410):
            resp.close()  # an expired storage link: a fresh one from the origin
            resp = self.http.open(self.origin_url, key=self.key, headers=headers)
            self.url = resp.url
        if resp.status_code == 200:
            resp.close()
            raise Changed("the server stopped taking ranges")
        raise_for_status(resp, "direct")
        return resp

    def _receive(self, seg: _Segment, fd: int, resp: requests.Response, me: int) -> None:
        assert self.map is not None
        if total_of(resp) != self.map.total or validator_of(resp) != self.map.validator:
            raise Changed(f"the file changed on the server (length {total_of(resp)} or validator "
                          f"{validator_of(resp)!r} differ)")
        got_start = int(resp.headers["Content-Range"].split(" ", 1)[1].split("-", 1)[0])
        if got_start != seg.pos:
            raise Changed(f"the server sent bytes from {got_start}, not {seg.pos}")
        feeder_put = self._feeder_put
        pieces = self.first_pieces if resp is self.first_resp and self.first_pieces is not None else None
        self.first_pieces = None
        for data in pieces or self.chunks(resp, self.chunk_bytes):
            with self.lock:
                n = min(len(data), seg.end - seg.pos)
                at = seg.pos
                seg.claimed = at + n
            if at == 0:
                self.first_piece(data, resp.headers.get("Content-Type", ""))
            if n <= 0:
                return
            piece = data[:n] if n < len(data) else data
            pwrite_all(fd, piece, at)
            feeder_put(at, piece)
            with self.lock:
                seg.pos += n
                self.received += n
            if seg.pos >= seg.end or self.stop.is_set():
                return
        if seg.pos < seg.end:
            raise Transient("A segment's body ended early.", details={"reason": "the body ended early"})

    _feeder_put: Callable[[int, bytes], None]
