"""Thumbnails cached on disk under ``settings.thumbs_dir``, keyed by (preview file, size, mtime, length): the key
is also the ETag, so a repeated request is answered from a ``stat`` alone and a cached one is a file read — no
full-size decoding per request. Animated previews get animated thumbnails; videos are served as they are; a
model without a preview gets a generated placeholder."""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from shared.errors import DepotError
from shared.files import write_atomic
from shared.previews.imaging import VIDEO_TYPES, encode_webp, open_image, sniff_media

MIN_SIZE, MAX_SIZE, DEFAULT_SIZE = 16, 1024, 256
#: Animated thumbnails keep at most this many frames (ComfyUI-Model-Manager keeps about 30).
THUMB_FRAMES = 32
#: Bump when the thumbnail encoding changes, so old cache entries are not served.
_VERSION = "1"


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

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = Path(cache_dir)

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
        return Thumb(cached, "image/webp", etag)


def thumbnail_webp(data: bytes, size: int) -> bytes:
    """A WebP thumbnail fitted into ``size`` px (animated kept animated, EXIF orientation applied)."""
    if sniff_media(data) == "jpeg":
        # Let libjpeg decode at a reduced scale before anything is loaded: far cheaper than a full decode.
        try:
            img = Image.open(io.BytesIO(data))
            img.draft("RGB", (size, size))
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


