"""GGUF files and the ComfyUI folder a loader reads them from. ComfyUI's own loaders ignore ``.gguf``; the
ComfyUI-GGUF custom node reads diffusion models (``UnetLoaderGGUF``) from ``diffusion_models`` (``unet``) and
text encoders (``CLIPLoaderGGUF``) from ``text_encoders`` (``clip``), and tells them apart by the header's
``general.architecture``. The header is read here without any GGUF library: magic ``GGUF``, u32 version, the
tensor and key/value counts (u64; u32 in version 1), then the key/value pairs, read until the wanted keys are
found (``general.architecture`` is the first key every GGUF writer puts)."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

#: ComfyUI-GGUF's ``IMG_ARCH_LIST`` (loader.py): what ``UnetLoaderGGUF`` loads from ``diffusion_models``.
DIFFUSION_ARCHITECTURES = frozenset({"flux", "sd1", "sdxl", "sd3", "aura", "hidream", "cosmos", "ltxv", "hyvid",
                                     "wan", "lumina2", "qwen_image"})
#: ComfyUI-GGUF's ``TXT_ARCH_LIST`` plus the text-encoder families ComfyUI's text encoders are built on
#: (``clip``: the vision projector, ``mmproj``, that ComfyUI-GGUF reads beside a qwen2vl encoder).
TEXT_ENCODER_ARCHITECTURES = frozenset({"t5", "t5encoder", "llama", "qwen2", "qwen2vl", "qwen3", "qwen3vl",
                                        "gemma2", "gemma3", "clip"})
DIFFUSION_FOLDER, TEXT_ENCODER_FOLDER = "diffusion_models", "text_encoders"
#: The folder a download's model type maps to that no loader reads a ``.gguf`` from.
CHECKPOINTS = "checkpoints"
#: Folders of whole models, between which a GGUF's header decides.
MODEL_FOLDERS = frozenset({CHECKPOINTS, DIFFUSION_FOLDER, TEXT_ENCODER_FOLDER})

_MAGIC = b"GGUF"
#: value type -> struct format of the fixed-size types (8 = string, 9 = array).
_FIXED = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
#: Stop after this many header bytes (a tokenizer's vocabulary array before the wanted key is a few MiB).
MAX_HEADER_BYTES = 64 * 1024 * 1024
_MAX_KEY = 65536


class _Bad(ValueError):
    """The header is not a readable GGUF header."""


class _Reader:
    def __init__(self, fh: BinaryIO, version: int) -> None:
        self.fh, self.wide = fh, version >= 2

    def take(self, n: int) -> bytes:
        data = self.fh.read(n)
        if len(data) != n:
            raise _Bad("the GGUF header is truncated")
        if self.fh.tell() > MAX_HEADER_BYTES:
            raise _Bad(f"no wanted key in the first {MAX_HEADER_BYTES} bytes")
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def count(self) -> int:
        return int(self.unpack("Q" if self.wide else "I"))

    def string(self, cap: int | None = None) -> str:
        n = self.count()
        if cap is not None and n > cap:
            raise _Bad(f"a {n}-byte key is not plausible")
        return self.take(n).decode("utf-8", "replace")

    def value(self, vtype: int, keep: bool) -> Any:
        if vtype in _FIXED:
            return self.unpack(_FIXED[vtype])
        if vtype == _STRING:
            if keep:
                return self.string()
            self.skip(self.count())
            return None
        if vtype == _ARRAY:
            etype, n = self.unpack("I"), self.count()
            if etype in _FIXED:
                self.skip(n * struct.calcsize(_FIXED[etype]))
            else:
                for _ in range(n):
                    self.value(etype, False)
            return None
        raise _Bad(f"unknown GGUF value type {vtype}")

    def skip(self, n: int) -> None:
        if self.fh.tell() + n > MAX_HEADER_BYTES:
            raise _Bad(f"no wanted key in the first {MAX_HEADER_BYTES} bytes")
        self.fh.seek(n, 1)


def read_keys(path: str | Path, wanted: tuple[str, ...] = ("general.architecture",)) -> dict[str, Any]:
    """The ``wanted`` header keys found in a GGUF file (absent ones are left out); ``{}`` for a file that is
    not a readable GGUF. Reads only until the last wanted key."""
    found: dict[str, Any] = {}
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != _MAGIC:
                return {}
            version = struct.unpack("<I", fh.read(4))[0]
            if version not in (1, 2, 3):
                return {}
            reader = _Reader(fh, version)
            reader.count()  # tensors
            for _ in range(reader.count()):
                key = reader.string(_MAX_KEY)
                found_key = key in wanted
                value = reader.value(reader.unpack("I"), found_key)
                if found_key:
                    found[key] = value
                    if len(found) == len(wanted):
                        break
    except (OSError, struct.error, _Bad):
        return found
    return found


def architecture(path: str | Path) -> str | None:
    """The GGUF's ``general.architecture`` (lower-cased), or None when absent or unreadable."""
    arch = read_keys(path).get("general.architecture")
    return arch.strip().lower() if isinstance(arch, str) and arch.strip() else None


def loader_folder(arch: str | None) -> str | None:
    """The folder ComfyUI-GGUF reads a GGUF of this architecture from, or None when it is not a known
    diffusion model or text encoder."""
    if arch in DIFFUSION_ARCHITECTURES:
        return DIFFUSION_FOLDER
    if arch in TEXT_ENCODER_ARCHITECTURES:
        return TEXT_ENCODER_FOLDER
    return None


def kind_of(folder: str | None) -> str:
    return {DIFFUSION_FOLDER: "diffusion model", TEXT_ENCODER_FOLDER: "text encoder"}.get(folder or "", "model")


def is_gguf_name(name: str) -> bool:
    return name.lower().endswith(".gguf")


def planned_folder(filename: str, folder: str) -> str:
    """The folder a download is planned into before its header is known: a ``.gguf`` whose model type maps to
    ``checkpoints`` (Civitai lists quantized Flux and other diffusion models as "Checkpoint") goes where a
    GGUF loader looks; the header can still send it to ``text_encoders`` when the file is published."""
    return DIFFUSION_FOLDER if folder == CHECKPOINTS and is_gguf_name(filename) else folder


def misplacement(folder: str, path: str | Path) -> dict[str, str] | None:
    """``{"reason", "suggested_folder"}`` for a ``.gguf`` in ``checkpoints`` (where no ComfyUI loader reads
    it), else None. The suggestion follows the header's architecture (``diffusion_models`` when unknown: GGUFs
    filed as checkpoints are quantized diffusion models)."""
    if folder != CHECKPOINTS or not is_gguf_name(str(path)):
        return None
    arch = architecture(path)
    suggested = loader_folder(arch) or DIFFUSION_FOLDER
    if loader_folder(arch):
        what = f"a GGUF {kind_of(suggested)} ({arch})"
    else:
        what = f"a GGUF of architecture {arch!r}" if arch else "a GGUF file"
    return {"reason": f"This is {what}: ComfyUI's checkpoint loaders do not read .gguf files, and ComfyUI-GGUF "
                      f"reads them from {suggested}.", "suggested_folder": suggested}
