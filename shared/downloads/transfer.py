"""Move the bytes of one artifact into its partial file: large streamed chunks, every store hash computed inline
(``MultiHasher`` hashes beside the transfer, one thread per hash), ``Range`` resume that trusts only a ``206``
whose ``Content-Range`` starts where the partial ends (a ``200`` restarts from zero, a ``416`` means check for
completeness), retries with jittered backoff on network errors, 5xx and 429 (Retry-After), a stall watchdog (the
socket read timeout is ``settings.stall_s``: no bytes for that long → reconnect), and a fresh signed link from
the origin URL when the storage link is refused. The first bytes are sniffed: an HTML or JSON body is never
saved as a model."""
from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from shared.downloads.plan import Plan
from shared.downloads.segment_file import SegmentMap
from shared.downloads.segments import (
    NETWORK_ERRORS,
    Changed,
    SegmentedFetch,
    SplitOptions,
    total_of,
    validator_of,
)
from shared.downloads.sink import FileSink
from shared.errors import DepotError, HtmlInsteadOfModel, Transient
from shared.media.formats import check_model_bytes, sniff
from shared.media.hashing import ALL, MultiHasher
from shared.upstream.http import HttpClient, backoff, netloc, network_reason, raise_for_status

#: the longest a received piece waits before it is written, hashed and reported
_FLUSH_S = 0.25
#: how much of the body the first piece holds at least, however slowly it comes (the format sniff's head)
_HEAD_BYTES = 64 * 1024
#: how much of the first segment shows whether its server caps each connection (and is the sniffed head)
_PROBE_BYTES = 1024 * 1024
#: a connection faster than this is not held back by its server: more would only add work (on loopback or a
#: LAN mirror one stream is quicker than eight), slower ones are split
_UNCAPPED_BYTES_PER_S = 128 * 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_REFUSED_TYPES = ("text/html", "application/json", "application/xml", "text/xml", "application/xhtml")


class _Restart(Exception):
    """The server cannot continue the partial: start from byte 0."""


class _Incomplete(Exception):
    """The body ended early; reconnect and resume."""


@dataclass
class Outcome:
    size: int
    hashes: dict[str, str]
    resumed_from: int


class Transfer:
    """One artifact into ``part``. ``progress(done, total)`` may raise to stop (pause/cancel/fenced)."""

    def __init__(self, http: HttpClient, plan: Plan, key: str | None, part: Path, *, chunk_bytes: int,
                 retries: int, progress: Callable[[int, int | None], None], sleep: Callable[[float], None],
                 algorithms: tuple[str, ...] = ALL, log: Callable[[str], None] = lambda _m: None,
                 unreachable_s: float = 30.0, split: SplitOptions | None = None,
                 saved_map: SegmentMap | None = None) -> None:
        self.algorithms, self.log, self.unreachable_s = algorithms, log, unreachable_s
        self.started, self.reached = time.monotonic(), False
        self.http, self.plan, self.key, self.part = http, plan, key, part
        self.chunk_bytes, self.retries = chunk_bytes, retries
        self.progress, self.sleep = progress, sleep
        self.signed_url: str | None = None  #: the storage link of the last success, reused while it works
        self.hasher: MultiHasher | None = None
        self.hashed = 0
        self.total: int | None = plan.size
        #: the segmented fetch (several connections) when the server takes ranges; None: one stream
        self.split = None if split is None or split.connections < 2 else SegmentedFetch(
            http, plan.url, key, part, split, chunk_bytes=chunk_bytes, retries=retries, log=log, sleep=sleep,
            chunks=_chunks, first_piece=lambda head, ctype: _refuse_non_model(head, ctype, plan.filename))
        #: the map of finished ranges while the partial is a segmented one (its size is then the whole file's)
        self.smap = saved_map if self.split is not None else None
        #: where the body of the last 206 ends (its Content-Range)
        self.range_end: int | None = None

    def run(self) -> Outcome:
        failures = 0
        resumed_from = self.part.stat().st_size if self.part.exists() else 0
        try:
            while True:
                try:
                    if self._attempt():
                        break
                except _Restart:
                    self._truncate()
                except Changed as exc:
                    # One stream from a clean partial: the segments may come from another version of the file
                    self.log(f"one connection from here: {exc}")
                    self.split, self.smap = None, None
                    self._truncate()
                except (_Incomplete, *NETWORK_ERRORS) as exc:
                    why = "the body ended early" if isinstance(exc, _Incomplete) else network_reason(exc)
                    failures = self._wait_or_give_up(failures, Transient(
                        f"The connection to {self._host()} kept failing ({why}); try again later.",
                        details={"reason": why}))
                except DepotError as exc:
                    if not exc.retryable:
                        raise
                    failures = self._wait_or_give_up(failures, exc)
            assert self.hasher is not None
            return Outcome(self.hashed, self.hasher.digests(), resumed_from)
        except BaseException:
            if self.hasher is not None:
                self.hasher.abort()
            raise

    def _host(self) -> str:
        return netloc(self.signed_url or self.plan.url)

    def _wait_or_give_up(self, failures: int, exc: DepotError) -> int:
        failures += 1
        # A host that never answered at all is most likely a wrong link: say so in seconds, not minutes
        never_reached = not self.reached and time.monotonic() - self.started >= self.unreachable_s
        if failures > self.retries or never_reached:
            raise exc
        self.signed_url = None  # a fresh link from the origin, in case the storage link went bad
        delay = backoff(failures - 1, exc.retry_after)
        self.log(f"retry {failures}/{self.retries} in {delay:.0f} s: {exc.details.get('reason') or exc.message}")
        self.sleep(delay)
        return failures

    def _truncate(self) -> None:
        with open(self.part, "wb"):
            pass
        self._reset_hasher()

    def _reset_hasher(self) -> None:
        if self.hasher is not None:
            self.hasher.abort()
        self.hasher, self.hashed = MultiHasher(self.algorithms), 0

    def _catch_up_hasher(self, offset: int) -> None:
        """Hash the partial's bytes (read once) so the digests cover the whole file after resuming."""
        if self.hasher is not None and self.hashed == offset:
            return
        self._reset_hasher()
        assert self.hasher is not None
        if offset == 0:
            return
        with open(self.part, "rb", buffering=0) as fh:
            while self.hashed < offset:
                data = fh.read(min(self.chunk_bytes, offset - self.hashed))
                if not data:
                    break
                self.hasher.update(data)
                self.hashed += len(data)
        if self.hashed != offset:
            raise _Restart()

    def _open(self, offset: int) -> requests.Response:
        headers = {"Accept-Encoding": "identity"}
        if offset == 0 and self.split is not None:
            # A server that takes ranges says so (206 and the length) to a request for the first segment, which
            # then is segment 0 of several connections; a small file is fetched on from where it ends.
            headers["Range"] = f"bytes=0-{self.split.segment_bytes - 1}"
        elif offset:
            headers["Range"] = f"bytes={offset}-"
        if self.signed_url:
            resp = self.http.open(self.signed_url, headers=headers)
            if resp.status_code not in (401, 403, 404, 410):
                return resp
            resp.close()  # expired or revoked storage link: ask the origin for a fresh one
            self.signed_url = None
        return self.http.open(self.plan.url, key=self.key, headers=headers)

    def _segmented(self, first: requests.Response | None, smap: SegmentMap, url: str,
                   slot: tuple[str, str] | None = None, pieces: Iterator[bytes] | None = None) -> bool:
        """Fetch what ``smap`` lacks over several connections; the hashes start again from byte 0."""
        assert self.split is not None
        self.smap, self.total = smap, smap.total
        self._reset_hasher()
        assert self.hasher is not None
        self.split.run(first, smap, url, self.hasher, self.progress, slot, pieces)
        self.hashed = smap.total
        return True

    def _attempt(self) -> bool:
        """One connection (the first of several when segmented). True when the file is complete."""
        if self.split is not None and self.smap is not None and self.part.exists():
            return self._segmented(None, self.split.last or self.smap, self.signed_url or self.plan.url)
        offset = self.part.stat().st_size if self.part.exists() else 0
        self._catch_up_hasher(offset)
        slot = self._first_slot(netloc(self.signed_url or self.plan.url)) if offset == 0 else None
        try:
            resp = self._open(offset)
            self.reached = True
            if slot is not None and netloc(resp.url) != slot[0]:
                # Redirected to the storage server (a CDN): the slot must count there, and there may be none
                # free; then this connection waits for one and asks the storage link again.
                resp, slot = self._slot_at_storage(resp, slot, offset)
            with resp:
                done, slot = self._answer(resp, offset, slot)
                return done
        finally:
            if slot is not None and self.split is not None and self.split.gate is not None:
                self.split.gate.release(*slot)

    def _first_slot(self, origin: str) -> tuple[str, str] | None:
        """A slot of the origin's connection ceiling for the request that may become segment 0."""
        gate = self.split.gate if self.split is not None else None
        return None if gate is None else gate.wait(origin, self.sleep, self.log)

    def _slot_at_storage(self, resp: requests.Response, slot: tuple[str, str],
                         offset: int) -> tuple[requests.Response, tuple[str, str]]:
        assert self.split is not None and self.split.gate is not None
        gate, origin = self.split.gate, netloc(resp.url)
        gate.release(*slot)
        if gate.acquire(origin, slot[1]):
            return resp, (origin, slot[1])
        resp.close()
        self.signed_url = resp.url
        slot = gate.wait(origin, self.sleep, self.log)
        try:
            return self._open(offset), slot
        except BaseException:
            gate.release(*slot)
            raise

    def _answer(self, resp: requests.Response, offset: int,
                slot: tuple[str, str] | None) -> tuple[bool, tuple[str, str] | None]:
        """Read one response; (complete?, the slot still to give back: None once segments took it over)."""
        if resp.status_code == 416:
            return self._complete_after_416(resp, offset), slot
        if resp.status_code in (401, 403) and netloc(resp.url) != netloc(self.plan.url):
            raise Transient(f"The storage link from {self._host()} was refused (HTTP {resp.status_code}, "
                            "probably expired); asking for a fresh one.")
        raise_for_status(resp, self.plan.source)
        if netloc(resp.url) != netloc(self.plan.url):
            self.signed_url = resp.url
        start = self._check_start(resp, offset)
        total = total_of(resp)
        if self.split is not None and start == 0 and total and self.split.worth(total):
            # Several connections help only where the server caps each one: the first bytes say which
            pieces, capped = self._probe(resp)
            if capped:
                self._truncate()
                return self._segmented(resp, SegmentMap(total, validator_of(resp)), resp.url, slot, pieces), None
            self.log(f"one connection: {netloc(resp.url)} sends the first bytes faster than "
                     f"{_UNCAPPED_BYTES_PER_S // 2**20} MiB/s")
            return self._stream(resp, start, pieces), slot
        return self._stream(resp, start), slot

    def _probe(self, resp: requests.Response) -> tuple[Iterator[bytes], bool]:
        """The body's pieces (its first ``_PROBE_BYTES`` read already, replayed) and whether the server sent
        them slower than ``_UNCAPPED_BYTES_PER_S`` (a per-connection cap, which more connections get round).
        Read as they arrive, not in the pieces ``_chunks`` gathers, so a capped server is known in milliseconds."""
        t0 = time.monotonic()
        head: list[bytes] = []
        got = 0
        while got < _PROBE_BYTES:
            data = resp.raw.read1(_PROBE_BYTES - got, decode_content=False)
            if not data:
                break
            head.append(data)
            got += len(data)
        elapsed = time.monotonic() - t0
        pieces = itertools.chain([b"".join(head)] if head else [], _chunks(resp, self.chunk_bytes))
        return pieces, got >= _PROBE_BYTES and got < elapsed * _UNCAPPED_BYTES_PER_S

    def _complete_after_416(self, resp: requests.Response, offset: int) -> bool:
        m = re.match(r"bytes \*/(\d+)", resp.headers.get("Content-Range", ""))
        size = int(m.group(1)) if m else self.total
        if offset > 0 and size == offset:
            self.total = size
            return True
        raise _Restart()

    def _check_start(self, resp: requests.Response, offset: int) -> int:
        length = resp.headers.get("Content-Length")
        if resp.status_code == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != offset:
                raise _Restart()  # a range we did not ask for cannot be appended
            if m.group(3) != "*":
                self.total = int(m.group(3))
            self.range_end = int(m.group(2)) + 1
            return offset
        if offset:
            self._truncate()  # the server ignored Range: its body starts at byte 0
        if length and length.isdigit():
            self.total = int(length)
        return 0

    def _stream(self, resp: requests.Response, start: int, pieces: Iterator[bytes] | None = None) -> bool:
        assert self.hasher is not None
        done = start
        first = start == 0
        with open(self.part, "r+b" if start else "wb", buffering=0) as fh:
            fh.seek(start)
            # The network thread only receives: the file write runs on the sink's thread and every hash on its
            # own, so receiving, writing and hashing overlap on several cores.
            sink = FileSink(fh, start)
            try:
                for data in pieces or _chunks(resp, self.chunk_bytes):
                    if first:
                        _refuse_non_model(data, resp.headers.get("Content-Type", ""), self.plan.filename)
                        first = False
                    sink.put(data)
                    self.hasher.update(data)
                    done += len(data)
                    self.hashed = done
                    self.progress(done, self.total)
            finally:
                sink.finish()
        if self.total is not None and done < self.total:
            if done == self.range_end:
                return False  # the range asked for is all here: the next request goes on from its end
            raise _Incomplete()
        self.total = done
        return True


def _refuse_non_model(head: bytes, content_type: str, filename: str) -> None:
    """HTML/JSON bodies (login pages, API errors behind a 200) are refused on their first bytes."""
    check_model_bytes(head, filename)
    ctype = content_type.split(";")[0].strip().lower()
    if ctype.startswith(_REFUSED_TYPES) and sniff(head[:64]) in ("unknown", "html", "json", "empty"):
        raise HtmlInsteadOfModel(f"The server sent a {ctype} page instead of the model file {filename!r} (usually "
                                 "a login or error page). Set the site's API key or check the link.")


def _chunks(resp: requests.Response, size: int) -> Iterator[bytes]:
    """The body in pieces of ``size`` bytes, or fewer when ``_FLUSH_S`` has passed: ``read1`` hands over what has
    arrived, so on a slow link progress, pause and cancel still come every fraction of a second (a plain
    ``read(size)`` waits for the whole piece: 8 s at 512 KiB/s with 4 MiB pieces)."""
    pieces: list[bytes] = []
    have, since = 0, time.monotonic()
    # The first piece is judged as the file's head (a web page? a model?): it waits for enough bytes to tell
    least = min(size, _HEAD_BYTES)
    while True:
        data = resp.raw.read1(size - have, decode_content=False)
        if data:
            pieces.append(data)
            have += len(data)
        now = time.monotonic()
        if have and (not data or have >= size or (now - since >= _FLUSH_S and have >= least)):
            least = 1
            yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
            pieces, have, since = [], 0, now
        if not data:
            return


def sleep_checking(check: Callable[[], None]) -> Callable[[float], None]:
    """A sleep that still notices pause/cancel every 0.2 s."""
    def _sleep(seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            check()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.2, left))
    return _sleep
