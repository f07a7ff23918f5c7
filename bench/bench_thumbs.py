"""Thumbnails per second for 1,000 mixed previews (large and small JPEG, PNG, WebP stills, animated GIFs): cold
(first request: decode, resize, encode, cache), cached (the cache file is found), and revalidated (the ETag from
a ``stat`` alone, what a ``If-None-Match`` request costs). The baseline measured in the same run is the naive
path — full decode, resize and encode on every request with Pillow — which the cache must beat by a wide margin.
Usage: ``python -m bench thumbs [--count N] [--size PX]``."""
from __future__ import annotations

import argparse
import io
import random
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from shared.media.thumbs import Thumbnailer

_KINDS = (("JPEG", (1536, 1024), 45), ("JPEG", (768, 1152), 20), ("PNG", (512, 768), 15),
          ("WEBP", (832, 1216), 15), ("GIF", (256, 256), 5))


def _picture(size: tuple[int, int], seed: int) -> Image.Image:
    rnd = random.Random(seed)
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = rnd.randrange(size[0]), rnd.randrange(size[1])
        draw.ellipse((x, y, x + size[0] // 4, y + size[1] // 4), fill=tuple(rnd.randrange(256) for _ in range(3)))
    return img


def _encode(fmt: str, size: tuple[int, int], seed: int) -> bytes:
    out = io.BytesIO()
    if fmt == "GIF":
        frames = [_picture(size, seed + i) for i in range(12)]
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    else:
        _picture(size, seed).save(out, fmt, quality=88)
    return out.getvalue()


def _make_corpus(root: Path, count: int) -> list[Path]:
    """``count`` previews in the mix above; a few dozen distinct images, written under distinct names."""
    weights = [w for _f, _s, w in _KINDS]
    rnd = random.Random(7)
    blobs: dict[tuple[str, tuple[int, int], int], bytes] = {}
    paths = []
    for i in range(count):
        fmt, size, _w = rnd.choices(_KINDS, weights)[0]
        variant = i % 8
        key = (fmt, size, variant)
        if key not in blobs:
            blobs[key] = _encode(fmt, size, variant * 100)
        path = root / f"m{i:04d}.{'jpg' if fmt == 'JPEG' else fmt.lower()}"
        path.write_bytes(blobs[key])
        paths.append(path)
    return paths


def _naive(path: Path, size: int) -> bytes:
    with Image.open(path) as img:
        img = img.convert("RGB")
        img.thumbnail((size, size))
        out = io.BytesIO()
        img.save(out, "WEBP", quality=80)
        return out.getvalue()


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:9.1f}/s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench thumbs")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-thumbs-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "previews").mkdir()
        paths = _make_corpus(tmp / "previews", args.count)
        thumbs = Thumbnailer(tmp / "cache")
        sample = paths[: max(1, len(paths) // 5)]
        t0 = time.perf_counter()
        for p in sample:
            _naive(p, args.size)
        naive = time.perf_counter() - t0
        t0 = time.perf_counter()
        for p in paths:
            thumbs.get(p, args.size)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        for p in paths:
            thumbs.get(p, args.size)
        cached = time.perf_counter() - t0
        t0 = time.perf_counter()
        for p in paths:
            thumbs.etag(p, args.size)
        etag = time.perf_counter() - t0
    naive_rate = len(sample) / naive
    print(f"thumbs: {args.count} mixed previews at {args.size}px (naive baseline on {len(sample)} of them)")
    print(f"  naive decode+resize+encode {_rate(len(sample), naive)}")
    print(f"  cold (make and cache)      {_rate(len(paths), cold)}  {len(paths) / cold / naive_rate:6.2f}x naive")
    print(f"  cached                     {_rate(len(paths), cached)}  {len(paths) / cached / naive_rate:6.1f}x naive")
    print(f"  revalidate (ETag only)     {_rate(len(paths), etag)}  {len(paths) / etag / naive_rate:6.1f}x naive")


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
