"""How a download's body is cut into pieces: whatever has arrived is handed on when the flush interval has passed
(so a slow link still reports), but the first piece, which is judged as the file's head (a web page or a model?),
always holds enough bytes to judge."""
from __future__ import annotations

import struct
from typing import Any

import pytest

from shared.downloads import transfer
from shared.media.formats import sniff


class _Trickle:
    """A response whose body arrives a few bytes per read."""

    def __init__(self, body: bytes, step: int) -> None:
        self.body, self.step = body, step
        self.raw = self

    def read1(self, amount: int, decode_content: bool = False) -> bytes:
        out, self.body = self.body[:min(amount, self.step)], self.body[min(amount, self.step):]
        return out


def _safetensors(header_len: int, total: int) -> bytes:
    head = b"{" + b" " * (header_len - 2) + b"}"
    return struct.pack("<Q", header_len) + head + b"\0" * (total - 8 - header_len)


def test_the_first_piece_holds_the_head_then_pieces_follow_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "_FLUSH_S", 0.0)  # every read is "late": only the head rule holds a piece back
    # A header length of 123 makes the file's first byte "{": judged on one byte it would look like JSON
    body = _safetensors(123, 200_000)
    pieces: list[Any] = list(transfer._chunks(_Trickle(body, 5), 4 * 1024 * 1024))
    assert b"".join(pieces) == body
    assert len(pieces[0]) >= transfer._HEAD_BYTES and sniff(pieces[0]) == "safetensors"
    assert {len(p) for p in pieces[1:]} == {5}


def test_a_body_shorter_than_the_head_is_one_piece() -> None:
    body = _safetensors(123, 1000)
    assert list(transfer._chunks(_Trickle(body, 7), 4 * 1024 * 1024)) == [body]


def test_a_fast_link_gets_whole_pieces() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    pieces = list(transfer._chunks(_Trickle(body, 64 * 1024), 256 * 1024))
    assert [len(p) for p in pieces] == [256 * 1024] * 4
