"""``python -m bench [NAME ...] [OPTIONS]``: run ``bench/bench_<NAME>.py:main(OPTIONS)`` for each name given, or
every benchmark when none is. Leading words that name benchmarks select them; the rest are passed to each."""
from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))


def split_args(argv: list[str], names: list[str]) -> tuple[list[str], list[str]]:
    chosen: list[str] = []
    for i, word in enumerate(argv):
        if word in names:
            chosen.append(word)
            continue
        if not word.startswith("-"):
            raise SystemExit(f"bench: no benchmark named {word!r}; available: {', '.join(names)}")
        return chosen, argv[i:]
    return chosen, []


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    names = available()
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__.strip() + "\n\nbenchmarks: " + ", ".join(names))
        return 0
    chosen, rest = split_args(argv, names)
    failed = []
    for name in chosen or names:
        print(f"=== bench {name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            importlib.import_module(f"bench.bench_{name}").main(rest)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            if isinstance(exc, SystemExit) and not exc.code:
                continue
            traceback.print_exc()
            failed.append(name)
        print(f"=== {name}: {time.perf_counter() - t0:.1f} s ===", flush=True)
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
