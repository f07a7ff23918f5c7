"""Thumbnails cached on disk under ``settings.thumbs_dir``, keyed by (preview file, size, mtime, length): the key
is also the ETag, so a repeated request is answered from a ``stat`` alone and a cached one is a file read — no
full-size decoding per request. Animated previews get animated thumbnails; videos are served as they are; a
model without a preview gets a generated placeholder. The cache is trimmed, least recently used first, when
it grows past its limit; the check runs on a background thread at most every few minutes, after a new entry."""
from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from shared.errors import DepotError
from shared.files import write_atomic
from shared.media.imaging import VIDEO_TYPES, encode_webp, open_image, sniff_media

MIN_SIZE, MAX_SIZE, DEFAULT_SIZE = 16, 1024, 256
#: Animated thumbnails keep at most this many frames (ComfyUI-Model-Manager keeps about 30).
THUMB_FRAMES = 32
#: Bump when the thumbnail encoding changes, so old cache entries are not served.
_VERSION = "1"
#: A trimmed cache is brought down to this share of its limit, so it is not trimmed again at once.
_TRIM_TO = 0.8


@dataclass(frozen=True)
class Thumb:
    """What to send: a file, its content type and its ETag (without quotes)."""

    path: Path
    content_type: str
    etag: str


def _key(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, (_VERSION, *parts))).encode()).hexdigest()[:32]


class Thumbnailer:
    """Makes and caches thumbnails in ``cache_dir`` (safe to share between processes: atomic renames)."""

    def __init__(self, cache_dir: Path, max_bytes: int = 0, check_every_s: float = 300.0) -> None:
        # Absolute, because the web process hands these paths to Flask's send_file, which would read a relative
        # one against the app's package folder rather than the working directory.
        self.cache_dir = Path(os.path.abspath(cache_dir))
        self.max_bytes = max_bytes
        self.check_every_s = check_every_s
        self._next_check = 0.0
        self._check_lock = threading.Lock()

    def etag(self, preview: Path | None, size: int) -> str:
        """The ETag of ``preview`` at ``size`` from its ``stat`` alone (raises OSError if it vanished)."""
        if preview is None:
            return _key("placeholder", size)
        st = preview.stat()
        return _key(preview.resolve(), size, st.st_mtime_ns, st.st_size)

    def get(self, preview: Path | None, size: int) -> Thumb:
        """The thumbnail of ``preview`` (None, or an undecodable file = the placeholder), made and cached on
        first use."""
        etag = self.etag(preview, size)
        if preview is not None:
            with open(preview, "rb") as f:
                kind = sniff_media(f.read(16))
            if kind in VIDEO_TYPES:
                return Thumb(preview, VIDEO_TYPES[kind], etag)
        cached = self.cache_dir / etag[:2] / f"{etag}.webp"
        if not cached.is_file():
            try:
                data = placeholder_webp(size) if preview is None else thumbnail_webp(preview.read_bytes(), size)
            except DepotError:  # an undecodable preview: cache the placeholder under its key, decode once
                data = placeholder_webp(size)
            write_atomic(cached, data)
            self._maybe_trim()
        return Thumb(cached, "image/webp", etag)

    def _maybe_trim(self) -> None:
        if not self.max_bytes:
            return
        with self._check_lock:
            now = time.monotonic()
            if now < self._next_check:
                return
            self._next_check = now + self.check_every_s
        threading.Thread(target=self.trim, name="thumbs-trim", daemon=True).start()

    def trim(self) -> tuple[int, int]:
        """Delete the least recently used entries (by access time, else modification time) until the cache is
        at most ``_TRIM_TO`` of ``max_bytes``; returns ``(files removed, bytes freed)``. Safe while other
        processes read and write the cache: a file already gone is skipped, and a deleted one is remade."""
        entries = []
        total = 0
        try:
            subdirs = list(os.scandir(self.cache_dir))
        except OSError:
            return 0, 0
        for sub in subdirs:
            if not sub.is_dir():
                continue
            try:
                with os.scandir(sub.path) as it:
                    for e in it:
                        if e.name.endswith(".webp"):
                            st = e.stat()
                            entries.append((max(st.st_atime, st.st_mtime), st.st_size, e.path))
                            total += st.st_size
            except OSError:
                continue
        if not self.max_bytes or total <= self.max_bytes:
            return 0, 0
        entries.sort()
        goal, removed, freed = total - int(self.max_bytes * _TRIM_TO), 0, 0
        for _used, size, path in entries:
            if freed >= goal:
                break
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            removed, freed = removed + 1, freed + size
        return removed, freed


def thumbnail_webp(data: bytes, size: int) -> bytes:
    """A WebP thumbnail fitted into ``size`` px (animated kept animated, EXIF orientation applied)."""
    if sniff_media(data) == "jpeg":
        # Let libjpeg decode at a reduced scale before anything is loaded: far cheaper than a full decode.
        img: Image.Image
        try:
            opened = Image.open(io.BytesIO(data))
            img = opened
            opened.draft("RGB", (size, size))
            img.load()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            img = open_image(data, "The preview")  # raises the clear error
    else:
        img = open_image(data, "The preview")
    return encode_webp(img, side=size, quality=80, method=2, max_frames=THUMB_FRAMES)


def placeholder_webp(size: int) -> bytes:
    """A neutral square with a simple picture glyph, for models without a preview."""
    img = Image.new("RGB", (size, size), (46, 50, 58))
    draw = ImageDraw.Draw(img)
    m = size // 4
    draw.rectangle((m, m, size - m, size - m), outline=(120, 128, 140), width=max(1, size // 64))
    draw.polygon([(m, size - m), (size // 2 - m // 3, size // 2), (size - m, size - m)], fill=(90, 98, 110))
    r = max(2, size // 16)
    draw.ellipse((size - m - 3 * r, m + r, size - m - r, m + 3 * r), fill=(150, 158, 170))
    out = io.BytesIO()
    img.save(out, "WEBP", quality=80)
    return out.getvalue()


