"""Cover images embedded in a safetensors header: ``ssmd_cover_images`` (a JSON list of base64 images, read by
ComfyUI's preview lookup) and SAI ModelSpec's ``modelspec.thumbnail`` (a ``data:`` URL, read by A1111). Only
the header is read; nothing here raises on malformed metadata, it just finds no cover."""
from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

from shared.media.formats import read_safetensors_metadata


def _decode(value: str) -> bytes | None:
    text = value.strip()
    if text.startswith("data:"):
        head, _, text = text.partition(",")
        if ";base64" not in head:
            return None
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data or None


def covers_from_metadata(metadata: dict[str, str]) -> list[bytes]:
    """All decodable cover images in a header's ``__metadata__``, ``ssmd_cover_images`` first."""
    out: list[bytes] = []
    raw = metadata.get("ssmd_cover_images")
    if raw:
        try:
            items = json.loads(raw)
        except ValueError:
            items = [raw]
        for item in items if isinstance(items, list) else [items]:
            if isinstance(item, str) and (data := _decode(item)):
                out.append(data)
    thumb = metadata.get("modelspec.thumbnail")
    if thumb and (data := _decode(thumb)):
        out.append(data)
    return out


def embedded_cover(model_path: Path) -> bytes | None:
    """The first cover image embedded in a safetensors model, or None."""
    if model_path.suffix.lower() not in (".safetensors", ".sft"):
        return None
    covers = covers_from_metadata(read_safetensors_metadata(model_path))
    return covers[0] if covers else None
