"""``python -m bench._upstream FILE SHA256 [BYTES_PER_S]``: the fake upstream in a process of its own (so the
client being measured shares no interpreter with it), serving FILE as a direct link and as a Hugging Face file, with
``BYTES_PER_S`` a cap on every connection (0: none). Prints the two URLs on one line, then serves until its
standard input closes."""
from __future__ import annotations

import sys
from pathlib import Path

from tests.fake_upstream import FakeUpstream

PATH, REPO, NAME = "/files/big.safetensors", "bench/big", "big.safetensors"


def main() -> None:
    src, sha256 = Path(sys.argv[1]), sys.argv[2]
    rate = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    up = FakeUpstream().start()
    direct = up.add_direct(PATH, src)
    up.add_hf_file(REPO, NAME, src, sha256=sha256)
    if rate:
        up.fault(PATH, "slow", bytes_per_s=rate, times=None)
        up.fault(f"hf:{REPO}/{NAME}", "slow", bytes_per_s=rate, times=None)
    print(direct, up.url, flush=True)
    sys.stdin.read()
    up.stop()


if __name__ == "__main__":
    main()
