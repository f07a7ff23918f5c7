"""Big test files for the throughput benchmarks."""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path


def make_big_file(path: Path, size: int, *, safetensors: bool = True) -> None:
    """``size`` random bytes; with ``safetensors`` they are one U8 tensor behind a valid header."""
    chunk = os.urandom(64 * 1024 * 1024)
    with open(path, "wb") as fh:
        if safetensors:
            header = json.dumps({"w": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}).encode()
            header += b" " * (-len(header) % 8)
            fh.write(struct.pack("<Q", len(header)) + header)
        left = size
        while left:
            n = min(left, len(chunk))
            fh.write(chunk[:n])
            chunk = chunk[1:] + chunk[:1]  # vary the blocks cheaply (no repeated 64 MiB runs)
            left -= n
