"""The scan's index writes, in order, on one background thread."""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class Writer:
    """Runs the scan's index writes in order on one background thread, so Redis (its own process) stores one
    batch while the walk reads and parses the next. At most two writes wait; the first failure is raised in
    the scanning thread by the next ``submit`` or by ``close``. ``threaded=False`` (a scan process, which has
    nothing else to do meanwhile) writes at once."""

    def __init__(self, threaded: bool = True) -> None:
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None] = \
            queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._loop, name="scan-writer", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                fn, args, kwargs = item
                try:
                    fn(*args, **kwargs)
                except BaseException as exc:  # noqa: BLE001 - handed to the scanning thread
                    self._error = exc

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._raise()
        if self._thread is None:
            fn(*args, **kwargs)
        else:
            self._queue.put((fn, args, kwargs))

    def close(self) -> None:
        """Wait for every submitted write (also when the scan stops early), then raise a failure if any."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error
