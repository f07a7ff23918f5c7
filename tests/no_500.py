"""A pytest plugin: a 500 is a bug, so a test during which a server answered 500 fails.

The app's handler for unhandled exceptions (``web/errors.py``) logs ``event=unhandled``: an autouse fixture
listens on that logger (and werkzeug's, for an exception that escaped the app) in this process, and reads the
logs that subprocess servers write, for those a test registers with :func:`watch_server_log` (``depot up``'s
gunicorn, say). A test that means to cause a 500 says so with ``@pytest.mark.allow_500("why")``."""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

#: What a 500 leaves in a log: the app's own handler, and gunicorn's and werkzeug's lines for an exception that
#: escaped the app altogether.
UNHANDLED_RE = re.compile(r"event=unhandled|Error handling request|Error on request")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_500(reason): the test means to make the server answer 500 (any "
                            "other 500 fails the test)")


class _UnhandledRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if UNHANDLED_RE.search(str(record.msg)):
            self.records.append(record)


_watched_logs: list[tuple[Path, int]] = []


def watch_server_log(path: Path | str) -> None:
    """Have the current test fail at teardown if a subprocess web server logs a 500 (``event=unhandled``) to
    ``path`` from now on. Call it where the server is started, with the file its output goes to."""
    p = Path(path)
    _watched_logs.append((p, p.stat().st_size if p.exists() else 0))


def unhandled_in_log(path: Path, start: int = 0) -> list[str]:
    """The lines at or after byte ``start`` of a server log that show a 500, each with a little context."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            lines = f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    return ["\n".join(lines[i:i + 12]) for i, line in enumerate(lines) if UNHANDLED_RE.search(line)]


@pytest.fixture(autouse=True)
def _no_unhandled_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if the app, in process or in a watched server subprocess, logged a 500."""
    handler = _UnhandledRecords()
    loggers = [logging.getLogger(name) for name in ("web.errors", "werkzeug")]
    for lg in loggers:
        lg.addHandler(handler)
    del _watched_logs[:]
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    fmt = logging.Formatter()
    found = [f"in this process: {r.getMessage()}\n{fmt.formatException(r.exc_info) if r.exc_info else ''}"
             for r in handler.records]
    for path, start in _watched_logs:
        found += [f"in {path}:\n{hit}" for hit in unhandled_in_log(path, start)]
    del _watched_logs[:]
    if found and request.node.get_closest_marker("allow_500") is None:
        pytest.fail("the server answered 500 (event=unhandled); a 500 is a bug. Mark a test that means to "
                    "cause one with @pytest.mark.allow_500(reason).\n" + "\n".join(found), pytrace=False)
