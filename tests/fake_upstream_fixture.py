"""The ``upstream`` fixture: a fresh fake Civitai / Hugging Face / web server on loopback for one test."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_upstream import FakeUpstream


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()
