"""Hash throughput on a 2 GiB file in the page cache, against ``openssl dgst -sha256`` measured in the same run
(OpenSSL uses the CPU's SHA instructions; Debian's ``sha256sum`` does not and is no bar). Rows: SHA256 alone
through ``hash_file`` (target ≥ 0.95× openssl), the all-hashes pass on a safetensors file (SHA256, BLAKE3,
CRC32, AutoV1, AutoV2 and AutoV3 — a second SHA-256 over the tensor data), and the all-hashes pass where AutoV3
does not apply (target ≥ 0.8×). Usage: ``python -m bench hash [--gib N] [--rounds R]``."""
from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench._files import make_big_file
from shared.media.hashing import ALL, SHA256_ONLY, hash_file


def _median_s(fn, rounds: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench hash")
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    size = int(args.gib * 1024**3)
    with tempfile.TemporaryDirectory(prefix="bench-hash-") as tmp:
        st_file, raw_file = Path(tmp) / "model.safetensors", Path(tmp) / "model.bin"
        make_big_file(st_file, size, safetensors=True)
        make_big_file(raw_file, size, safetensors=False)
        hash_file(st_file, SHA256_ONLY)  # warm the page cache
        hash_file(raw_file, SHA256_ONLY)
        runs = {
            "openssl dgst -sha256": lambda: subprocess.run(["openssl", "dgst", "-sha256", str(st_file)], check=True,
                                                           stdout=subprocess.DEVNULL),
            "hash_file SHA256 only": lambda: hash_file(st_file, SHA256_ONLY),
            "hash_file all six (safetensors, incl. AutoV3)": lambda: hash_file(st_file, ALL),
            "hash_file all (not safetensors, no AutoV3)": lambda: hash_file(raw_file, ALL),
        }
        results = {name: _median_s(fn, args.rounds) for name, fn in runs.items()}
        assert "AutoV3" in hash_file(st_file, ALL) and "AutoV3" not in hash_file(raw_file, ALL)
    base = results["openssl dgst -sha256"]
    targets = {"hash_file SHA256 only": 0.95, "hash_file all (not safetensors, no AutoV3)": 0.8,
               "hash_file all six (safetensors, incl. AutoV3)": 0.8}
    print(f"hash throughput, {args.gib:g} GiB file in page cache, median of {args.rounds} (MB = 10^6 bytes)")
    for name, secs in results.items():
        ratio = base / secs
        target = f"  target >= {targets[name]:.2f}x {'OK' if ratio >= targets[name] else 'MISSED'}" \
            if name in targets else ""
        print(f"  {name:<48} {size / secs / 1e6:8.0f} MB/s  {ratio:5.2f}x openssl{target}")


if __name__ == "__main__":
    main()
