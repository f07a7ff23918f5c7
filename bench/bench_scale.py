"""The index at scale: a synthetic library written through the real index code (``StoreIndex.put_docs``, as a
scan writes it) of 100,000 then 1,000,000 models (1,000 subfolders of ``loras``, realistic metadata: a title, a
Civitai source URL, 3-5 trigger words, a base model, six hashes), measured at each size:

* Redis memory per model (``used_memory`` before and after);
* one web process (a subprocess running the Flask app, as a gunicorn worker does): its RSS after serving every
  sort order and a first search (which builds the word index), then p50/p99 of the first page, a deep page (the
  middle of the list), a search of one and of three terms, a base model chip, the duplicates filter (the first
  time reads every SHA256), the first page and a search after one model changed (caught up from the change log),
  and the first page after a change the log cannot account for (every row re-read).

Targets: Redis <= 1.5 KiB per model; web RSS <= 1 GiB at 1M; first page and search p99 <= 50 ms at 1M.
Usage: ``python -m bench scale [--sizes 100000,1000000] [--rounds R]``."""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from bench._stack import Stack

_BASES = ("SDXL 1.0", "SD 1.5", "Pony", "Flux.1 D", "Illustrious", "SD 3.5", "NoobAI")
_WORDS = ("portrait", "anime", "watercolor", "cinematic", "lineart", "neon", "retro", "pixel", "ink", "glow",
          "chibi", "sketch", "vivid", "moody", "fantasy", "sci-fi", "cyberpunk", "oil", "pastel", "noir")


def synthetic_docs(start: int, count: int) -> Iterator[dict[str, Any]]:
    """Index documents of LoRAs ``start`` .. ``start+count-1``, 1,000 per subfolder."""
    rnd = random.Random(start)
    for n in range(start, start + count):
        words = rnd.sample(_WORDS, rnd.randint(3, 5))
        name = f"{words[0].title()} {words[1].title()} Style v{n % 7 + 1}"
        sha = f"{rnd.getrandbits(256):064X}"
        yield {"folder": "loras", "path_index": 0, "relpath": f"creator{n // 1000:04d}/{name.replace(' ', '_')}_{n}"
               ".safetensors", "title": name, "size": rnd.randint(10, 900) * 2**20, "mtime_ns": 1_700_000_000 * 10**9
               + n, "ctime_ns": 1_700_000_000 * 10**9 + n, "ino": n + 1,
               "hashes": {"SHA256": sha, "AutoV2": sha[:10], "BLAKE3": f"{rnd.getrandbits(256):064X}",
                          "CRC32": f"{rnd.getrandbits(32):08X}", "AutoV1": f"{rnd.getrandbits(32):08X}",
                          "AutoV3": f"{rnd.getrandbits(48):012X}"},
               "hashed": True, "base_model": rnd.choice(_BASES), "trigger_words": [w + "_style" for w in words],
               "source": "civitai", "source_url": f"https://civitai.com/models/{n}?modelVersionId={n + 500000}",
               "preview": f"{name.replace(' ', '_')}_{n}.preview.png", "dir": False, "verify_status": None,
               "verified_at": None, "verify_reason": None, "model_type": "LoRA", "nsfw_level": None}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="bench scale")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--rounds", type=int, default=50)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    stack = Stack()
    try:
        from shared.store.index import StoreIndex
        settings = stack.settings()
        index = StoreIndex(stack.redis, settings)
        stack.redis.config_set("appendonly", "no")  # memory and speed of the index, not of the disk
        base = int(stack.redis.info("memory")["used_memory"])
        written, rows = 0, []
        for size in sizes:
            t0 = time.perf_counter()
            index.put_docs(synthetic_docs(written, size - written))
            wrote = time.perf_counter() - t0
            written = size
            per_model = (int(stack.redis.info("memory")["used_memory"]) - base) / size
            probe = subprocess.run([sys.executable, "-m", "bench._scale_probe", json.dumps(stack.env),
                                    str(args.rounds)], capture_output=True, text=True, check=True)
            rows.append({"models": size, "write_s": wrote, "redis_per_model": per_model,
                         **json.loads(probe.stdout.strip().splitlines()[-1])})
        _report(rows)
    finally:
        stack.close()


def _report(rows: list[dict[str, Any]]) -> None:
    print("index scale (web figures from one process; p50 / p99 ms):")
    for r in rows:
        print(f"  {r['models']:>9,} models: written in {r['write_s']:.0f} s; Redis {r['redis_per_model']:.0f} B/model "
              f"(target <= 1536); web RSS {r['rss_mib']:.0f} MiB after every sort order and a search (target <= 1024"
              f" at 1M), {r['warm_s']:.1f} s to build the orders, {r['index_s']:.1f} s the word index")
        for what in ("first page", "deep page", "search 1 term", "search 3 terms", "base model chip",
                     "duplicates filter", "after one change", "search after one change", "after an unlogged change"):
            p50, p99 = r[what]
            print(f"      {what:<26} {p50:8.1f} {p99:8.1f}" + ("   (target p99 <= 50 at 1M)"
                                                                if what in ("first page", "search 1 term") else ""))
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        grow = b["models"] / a["models"]
        memory = b["redis_per_model"] / a["redis_per_model"]
        print(f"  {a['models']:,} -> {b['models']:,} ({grow:.0f}x): Redis per model x{memory:.2f},"
              f" RSS x{b['rss_mib'] / a['rss_mib']:.1f}, first page p50 x{b['first page'][0] / a['first page'][0]:.1f},"
              f" deep page p50 x{b['deep page'][0] / a['deep page'][0]:.1f},"
              f" search p50 x{b['search 1 term'][0] / a['search 1 term'][0]:.1f}")
