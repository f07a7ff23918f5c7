"""Decoding and converting preview images: the bytes are sniffed (tools often save JPEG under ``.png``), still
images are re-encoded to WebP with EXIF orientation applied, animated GIF/WebP stay animated (long ones keep every
k-th frame), and videos are kept byte for byte. Where a preview is saved is the store's business
(``store/sidecar_files.save_preview``)."""
from __future__ import annotations

import io

from PIL import Image, ImageOps, ImageSequence

from shared.errors import DepotError

VIDEO_TYPES = {"mp4": "video/mp4", "webm": "video/webm"}
#: Animations longer than this keep every k-th frame (durations summed) so previews stay small.
MAX_FRAMES = 96
#: Longest side of a saved preview; larger images are scaled down (thumbnails come from this file).
MAX_SIDE = 2048


class UnreadableImage(DepotError):
    code, http_status = "invalid_image", 400


def sniff_media(data: bytes) -> str | None:
    """``jpeg``, ``png``, ``gif``, ``webp``, ``bmp``, ``mp4``, ``webm`` from the first bytes, else None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM":
        return "bmp"
    if data[4:8] == b"ftyp":
        return "mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    return None


def _frames(img: Image.Image, side: int, max_frames: int) -> tuple[list[Image.Image], list[int]]:
    """Frames (fitted into ``side`` px) and durations (ms): every k-th frame when there are more than
    ``max_frames``, each kept frame lasting as long as the frames it stands for."""
    step = max(1, -(-getattr(img, "n_frames", 1) // max_frames))
    frames: list[Image.Image] = []
    durations: list[int] = []
    for i, frame in enumerate(ImageSequence.Iterator(img)):
        duration = int(frame.info.get("duration", img.info.get("duration", 100)) or 100)
        if i % step == 0:
            frames.append(_fit(frame.convert("RGBA"), side))
            durations.append(duration)
        else:
            durations[-1] += duration
    return frames, durations


def _fit(img: Image.Image, side: int) -> Image.Image:
    if max(img.size) > side:
        img = img.copy()
        img.thumbnail((side, side))  # bicubic with reducing_gap: fast and sharp enough
    return img


def encode_webp(img: Image.Image, *, side: int = MAX_SIDE, quality: int = 85, method: int = 4,
                max_frames: int = MAX_FRAMES) -> bytes:
    """Encode an opened image to WebP fitted into ``side`` px: animated stays animated (at most ``max_frames``
    frames), EXIF orientation is applied to stills and their colour profile kept."""
    out = io.BytesIO()
    icc = img.info.get("icc_profile")
    extra = {"icc_profile": icc} if icc else {}
    if getattr(img, "n_frames", 1) > 1:
        frames, durations = _frames(img, side, max_frames)
        frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=durations,
                       loop=int(img.info.get("loop", 0)), quality=quality, method=method, **extra)
    else:
        still = ImageOps.exif_transpose(img)
        mode = "RGBA" if ("A" in still.getbands() or "transparency" in still.info) else "RGB"
        _fit(still.convert(mode), side).save(out, "WEBP", quality=quality, method=method, **extra)
    return out.getvalue()


def open_image(data: bytes, what: str) -> Image.Image:
    """Open image bytes with Pillow, turning every decoding failure into a clear DepotError."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return img
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"{what} is not a readable image ({exc}); pick another preview source.") from None


def preview_file(data: bytes, what: str) -> tuple[str, bytes]:
    """What a preview is stored as: ``(extension, bytes)``, a video (``mp4``/``webm``) byte for byte, any image
    as ``webp``.

    Raises:
        DepotError: ``invalid_image`` when the bytes are neither a readable image nor a known video.
    """
    kind = sniff_media(data)
    if kind in VIDEO_TYPES:
        return kind, data
    return "webp", encode_webp(open_image(data, what))
