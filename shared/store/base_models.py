"""A model's base model from what the file and A1111's ``NAME.json`` already say, as the names Civitai uses
(``SD 1.5``, ``SDXL 1.0``, ``Flux.1 D``…), which the sidecars and downloads carry too.

Sources, each read only when every better one is silent (see ``sidecar_files.summary_in``): the safetensors
``__metadata__`` (SAI ModelSpec ``modelspec.architecture``, then kohya's ``ss_base_model_version``, as sd-scripts,
OneTrainer and ai-toolkit spell it), then the tensors' names and shapes (``media/safetensors_kind``), then
A1111's ``"sd version"``. Only the header is read, never the weights.
A value that names no known family stays unknown (None), never a guess. The SD 1 family is labelled ``SD 1.5``
and the SD 2 family ``SD 2.1`` (``SD 2.1 768`` for the v-prediction 768 models), the labels Civitai files nearly
all of them under; a Flux.1 that does not say schnell is ``Flux.1 D``."""
from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from typing import Any

from shared.media import safetensors_kind

#: File name endings whose header is read.
HEADER_SUFFIXES = (".safetensors", ".sft")
#: Headers declaring more than this are not read (the scan's sidecar reader uses the same cap).
MAX_HEADER_BYTES = 16 * 1024 * 1024
#: The first read of a header: enough for the metadata of nearly every file, which writers put first.
_FIRST_READ = 64 * 1024
_KEYS = (b'"modelspec.architecture"', b'"ss_base_model_version"')
#: Bytes of a value looked at (architecture names are short).
_MAX_VALUE = 1024
_WS = b" \t\r\n"
_DECODER = json.JSONDecoder()

#: ``ss_base_model_version`` spellings, lower-cased with ``_ - . space`` removed.
_KOHYA = {
    **dict.fromkeys(("sdv1", "sd1", "sd15", "sdv15", "sd1x"), "SD 1.5"),
    **dict.fromkeys(("sd14", "sdv14"), "SD 1.4"),
    **dict.fromkeys(("sdv2", "sd2", "sd21", "sdv21"), "SD 2.1"),
    **dict.fromkeys(("sdv2v", "sd21v", "sdv21v", "sd21768"), "SD 2.1 768"),
    **dict.fromkeys(("sd20", "sdv20"), "SD 2.0"),
    **dict.fromkeys(("sdxl", "sdxl1", "sdxl10", "sdxlv10", "sdxlbase", "sdxlbase10", "sdxlbasev10"), "SDXL 1.0"),
    **dict.fromkeys(("sdxl09", "sdxlbase09", "sdxlbasev09"), "SDXL 0.9"),
    **dict.fromkeys(("sd3", "sd3m", "sd3medium"), "SD 3"),
    "sd35": "SD 3.5",
    **dict.fromkeys(("sd35l", "sd35large"), "SD 3.5 Large"),
    **dict.fromkeys(("sd35m", "sd35medium"), "SD 3.5 Medium"),
    "sd35largeturbo": "SD 3.5 Large Turbo",
    **dict.fromkeys(("flux1", "flux1d", "flux1dev", "fluxdev"), "Flux.1 D"),
    **dict.fromkeys(("flux1s", "flux1schnell", "fluxschnell"), "Flux.1 S"),
    "chroma": "Chroma",
    **dict.fromkeys(("lumina2", "lumina"), "Lumina"),
    "pony": "Pony",
    "illustrious": "Illustrious",
    "noobai": "NoobAI",
}

#: ``modelspec.architecture`` (without its ``/lora``-style adapter suffix) → base model.
_ARCHITECTURES = {
    "stable-diffusion-v1": "SD 1.5",
    "stable-diffusion-v1-5": "SD 1.5",
    "stable-diffusion-v1-4": "SD 1.4",
    "stable-diffusion-v2": "SD 2.1",
    "stable-diffusion-v2-512": "SD 2.1",
    "stable-diffusion-v2-768-v": "SD 2.1 768",
    "stable-diffusion-xl-v1-base": "SDXL 1.0",
    "stable-diffusion-xl-v1-refiner": "SDXL 1.0",
    "stable-diffusion-xl-v0-9-base": "SDXL 0.9",
    "flux-1": "Flux.1 D",
    "flux-1-dev": "Flux.1 D",
    "flux-1-schnell": "Flux.1 S",
    "chroma": "Chroma",
    "lumina-2": "Lumina",
    "stable-cascade-v1-prior": "Stable Cascade",
    "hunyuan-video": "Hunyuan Video",
}

#: A1111's ``"sd version"`` (``Unknown``, and sd-civitai-browser-plus's ``Other``, stay unknown).
_A1111 = {"sd1": "SD 1.5", "sd2": "SD 2.1", "sdxl": "SDXL 1.0"}


def _kohya_key(value: str) -> str:
    return "".join(c for c in value.lower() if c not in "_-. ")


def _sd3(arch: str) -> str | None:
    """SD 3 and 3.5 as sd-scripts (``stable-diffusion-3-5-large``) and others (``stable-diffusion-3.5-large``)
    write them."""
    rest = arch[len("stable-diffusion-3"):].replace(".", "-")
    if not rest.startswith("-5"):
        return "SD 3" if rest in ("", "-m", "-medium") else None
    return {"-5": "SD 3.5", "-5-large": "SD 3.5 Large", "-5-large-turbo": "SD 3.5 Large Turbo",
            "-5-medium": "SD 3.5 Medium", "-5-m": "SD 3.5 Medium"}.get(rest)


def from_architecture(value: Any) -> str | None:
    """The base model of a ``modelspec.architecture`` value, or None."""
    if not isinstance(value, str):
        return None
    arch = value.strip().lower().partition("/")[0]
    if arch.startswith("stable-diffusion-3"):
        return _sd3(arch)
    return _ARCHITECTURES.get(arch)


def from_kohya(value: Any) -> str | None:
    """The base model of an ``ss_base_model_version`` value, or None."""
    return _KOHYA.get(_kohya_key(value)) if isinstance(value, str) else None


def from_a1111(value: Any) -> str | None:
    """The base model of A1111's ``"sd version"`` (``SD1``, ``SD2``, ``SDXL``), or None."""
    return _A1111.get(value.strip().lower()) if isinstance(value, str) else None


def from_metadata(metadata: Mapping[str, Any] | None) -> str | None:
    """The base model a safetensors ``__metadata__`` states, or None; ModelSpec first, being the more precise
    (it tells Flux.1 dev from schnell where kohya writes ``flux1`` for both)."""
    if not metadata:
        return None
    return from_architecture(metadata.get("modelspec.architecture")) or from_kohya(
        metadata.get("ss_base_model_version"))


def reads_header(name: str) -> bool:
    """Whether a model file of this name has a header ``from_header`` reads."""
    return name.lower().endswith(HEADER_SUFFIXES)


def from_header(path: str | os.PathLike[str]) -> str | None:
    """The base model the safetensors header of ``path`` states, or None (also for any unreadable or malformed
    header: this is a hint, the verify job judges files)."""
    try:
        return from_metadata(_header_values(path))
    except OSError:
        return None


def header_facts(path: str | os.PathLike[str], *, need_kind: bool = True) -> tuple[str | None, str | None]:
    """``(base model, kind)`` of a safetensors file from its header: the metadata's statement first, then, when
    the base model or the kind (``need_kind``) is still unknown, the tensor names and shapes
    (``media.safetensors_kind``). The file is opened once; the weights are never read."""
    if not need_kind:
        return from_header(path), None
    try:
        raw = safetensors_kind.header_bytes(path)
    except OSError:
        return None, None
    if raw is None:
        return None, None
    found = safetensors_kind.detect_json(raw)
    return from_metadata(_values(raw)) or found.family, found.kind


def _header_values(path: str | os.PathLike[str]) -> dict[str, str]:
    """``modelspec.architecture`` and ``ss_base_model_version`` from a safetensors header, found as keys in its
    bytes rather than by parsing it: the metadata holds tag lists, dataset descriptions and base64 covers, often
    tens of kilobytes a scan would decode per file. Inside a JSON string every quote is escaped, so a quoted
    name followed by a colon is a key. Writers put the metadata first, so one read of the file's start usually
    holds both; otherwise the rest of the header is read (up to MAX_HEADER_BYTES). Plain ``os`` calls: a file
    object costs more system calls than the read itself."""
    # O_NONBLOCK: a FIFO named like a model must not hang the scan (it changes nothing for regular files).
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        head = os.read(fd, 8 + _FIRST_READ)
        if len(head) < 10:
            return {}
        (n,) = struct.unpack_from("<Q", head)
        if not 2 <= n <= MAX_HEADER_BYTES:
            return {}
        raw = head[8:8 + n]
        if not raw.lstrip(_WS).startswith(b"{"):
            return {}
        found = _values(raw)
        if len(found) < len(_KEYS) and len(raw) < n:
            raw += _read_up_to(fd, n - len(raw))
            found = _values(raw)
    finally:
        os.close(fd)
    return found


def _values(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in _KEYS:
        at = raw.find(key)
        if at < 0:
            continue
        rest = raw[at + len(key):at + len(key) + _MAX_VALUE].lstrip(_WS)
        if not rest.startswith(b":"):
            continue
        try:
            value, _end = _DECODER.raw_decode(rest[1:].lstrip(_WS).decode("utf-8", "replace"))
        except ValueError:
            continue  # cut off by the first read, or not JSON
        if isinstance(value, str):
            out[key[1:-1].decode()] = value
    return out


def _read_up_to(fd: int, want: int) -> bytes:
    chunks = []
    while want > 0 and (chunk := os.read(fd, min(want, 1 << 20))):
        chunks.append(chunk)
        want -= len(chunk)
    return b"".join(chunks)
