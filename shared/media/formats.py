"""Model file formats: sniffing by magic bytes, full structural validation of safetensors (the same verdicts as
the reference reader), cheap structural checks for GGUF and pickle/zip checkpoints (never unpickling), and
refusing HTML/JSON bodies saved under a model name. Pure functions over bytes and paths; nothing here raises on
hostile input except ``check_model_bytes``, whose job is to refuse it."""
from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

from shared.errors import HtmlInsteadOfModel

#: The reference reader's ``MAX_HEADER_SIZE`` (safetensors ``tensor.rs``).
MAX_HEADER_BYTES = 100_000_000
_U64_MAX = 2**64 - 1

#: safetensors dtype → size in bits.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
    "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}

#: The start of a legacy (pre-zip) ``torch.save`` file: a protocol-2 pickle of torch's magic number.
TORCH_LEGACY_MAGIC = bytes.fromhex("80028a0a6cfc9c46f9206aa85019")
_HTML_STARTS = (b"<!doctype", b"<html", b"<head", b"<body", b"<?xml", b"<!--", b"<title", b"<meta", b"<script")
_JSON_WS = b" \t\r\n"


class _HeaderError(ValueError):
    """One reason a safetensors header is invalid (message is shown to users)."""


def sniff(head: bytes) -> str:
    """Guess a file's format from its first bytes (at least 16 give a good answer).

    Returns one of ``safetensors``, ``gguf``, ``zip``, ``pickle``, ``html``, ``json``, ``empty``, ``unknown``.
    """
    if not head:
        return "empty"
    if head.startswith(b"GGUF"):
        return "gguf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 2 <= n <= MAX_HEADER_BYTES and head[8:].lstrip(_JSON_WS)[:1] == b"{":
            return "safetensors"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip(_JSON_WS)
    if text[:1] == b"<":
        return "html"
    if text[:1] in (b"{", b"["):
        return "json"
    return "unknown"


def check_model_bytes(head: bytes, filename: str) -> None:
    """Refuse a body that is an HTML page or a JSON document rather than a model (login pages, API errors).

    Raises:
        HtmlInsteadOfModel: the bytes are a web page or an API answer.
    """
    kind = sniff(head)
    if kind in ("html", "json"):
        what = "an HTML page" if kind == "html" else "a JSON document"
        raise HtmlInsteadOfModel(
            f"The server sent {what} instead of the model file {filename!r} (usually a login page, an "
            "early-access notice or an API error). Check the URL, and set your API key if the model needs one.")


# --- safetensors -------------------------------------------------------------------------------------------

def _reject_constant(name: str) -> Any:
    raise _HeaderError(f"the header contains {name}, which is not valid JSON")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook: strict UTF-8 keys, and ``__metadata__`` at most once (the reference reader's rules;
    other duplicate keys keep the last value, as it does)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        _utf8(key)
        if key == "__metadata__" and key in out:
            raise _HeaderError("duplicate __metadata__ key in the header")
        out[key] = value
    return out


def _utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _HeaderError("the header contains an unpaired UTF-16 surrogate escape") from None


def _usize(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _U64_MAX:
        raise _HeaderError(f"{what} must be a non-negative whole number, got {value!r:.40}")
    return value


def _parse_tensor(name: str, info: Any) -> tuple[str, list[int], tuple[int, int]]:
    if not isinstance(info, dict):
        raise _HeaderError(f"tensor {name!r:.80} is not an object")
    for key in ("dtype", "shape", "data_offsets"):
        if key not in info:
            raise _HeaderError(f"tensor {name!r:.80} has no {key}")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise _HeaderError(f"tensor {name!r:.80} has an unknown dtype {dtype!r:.40}")
    if not isinstance(shape, list):
        raise _HeaderError(f"tensor {name!r:.80}: shape must be a list")
    dims = [_usize(d, f"tensor {name!r:.80} shape entry") for d in shape]
    if not isinstance(offsets, list) or len(offsets) != 2:
        raise _HeaderError(f"tensor {name!r:.80}: data_offsets must be [BEGIN, END]")
    begin, end = (_usize(o, f"tensor {name!r:.80} data offset") for o in offsets)
    return dtype, dims, (begin, end)


def _parse_header(raw: bytes) -> tuple[dict[str, str] | None, dict[str, tuple[str, list[int], tuple[int, int]]]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _HeaderError("the header is not valid UTF-8") from None
    try:
        doc = json.loads(text, object_pairs_hook=_pairs, parse_constant=_reject_constant)
    except _HeaderError:
        raise
    except (ValueError, RecursionError) as exc:
        raise _HeaderError(f"the header is not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(doc, dict):
        raise _HeaderError("the header is not a JSON object")
    metadata = doc.pop("__metadata__", None)
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise _HeaderError("__metadata__ must map strings to strings (nested values are not allowed)")
        for v in metadata.values():
            _utf8(v)
    tensors = {name: _parse_tensor(name, info) for name, info in doc.items()}
    return metadata, tensors


def _data_end(tensors: dict[str, tuple[str, list[int], tuple[int, int]]]) -> int:
    """Check offsets are contiguous from 0 (no holes, no overlaps) and sizes match dtype×shape; return the end."""
    start = 0
    for name, (dtype, dims, (begin, end)) in sorted(tensors.items(), key=lambda kv: kv[1][2]):
        if begin != start or end < begin:
            raise _HeaderError(f"tensor {name!r:.80} has data_offsets [{begin}, {end}] but the previous tensor "
                               f"ends at {start} (holes and overlaps are not allowed)")
        count = 1
        for d in dims:
            count *= d
            if count > _U64_MAX:
                raise _HeaderError(f"tensor {name!r:.80}: shape is too large (overflow)")
        bits = count * DTYPE_BITS[dtype]
        if bits > _U64_MAX:
            raise _HeaderError(f"tensor {name!r:.80}: shape is too large (overflow)")
        if bits % 8:
            raise _HeaderError(f"tensor {name!r:.80}: {dtype} x {dims} does not end on a byte boundary")
        if bits // 8 != end - begin:
            raise _HeaderError(f"tensor {name!r:.80}: {dtype} x {dims} needs {bits // 8} bytes, "
                               f"data_offsets give {end - begin}")
        start = end
    return start


def _read_header(f: Any, size: int, cap_bytes: int) -> bytes:
    if size < 8:
        raise _HeaderError(f"the file has {size} bytes; a safetensors file has at least 8")
    (n,) = struct.unpack("<Q", f.read(8))
    if n > cap_bytes:
        raise _HeaderError(f"the declared header length {n} exceeds the {cap_bytes}-byte limit")
    if 8 + n > size:
        raise _HeaderError(f"the declared header length {n} runs past the end of the {size}-byte file")
    data: bytes = f.read(n)
    return data


def validate_safetensors(path: str | os.PathLike[str]) -> tuple[bool, str | None]:
    """Apply every rule of the reference reader (header bounds, JSON shape, dtypes, dtype×shape sizes,
    contiguous offsets, exact file length). Reads only the header (at most 100 MB).

    Returns:
        ``(True, None)`` if a conforming reader would load the file, else ``(False, reason)``.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            raw = _read_header(f, size, MAX_HEADER_BYTES)
        _metadata, tensors = _parse_header(raw)
        end = _data_end(tensors)
    except _HeaderError as exc:
        return False, f"not a valid safetensors file: {exc}"
    except OSError as exc:
        return False, f"cannot read the file: {exc.strerror or exc}"
    expected = 8 + len(raw) + end
    if expected != size:
        how = "is truncated" if size < expected else "has trailing bytes"
        return False, f"not a valid safetensors file: it {how} (tensors end at byte {expected}, file has {size})"
    return True, None


def read_safetensors_metadata(path: str | os.PathLike[str], cap_bytes: int = MAX_HEADER_BYTES) -> dict[str, str]:
    """The header's ``__metadata__`` (string → string), or ``{}`` when the file is not a readable safetensors
    file or has none. Reads at most ``cap_bytes`` of header."""
    try:
        with open(path, "rb") as f:
            raw = _read_header(f, os.fstat(f.fileno()).st_size, cap_bytes)
        metadata, _tensors = _parse_header(raw)
    except (_HeaderError, OSError):
        return {}
    return dict(metadata or {})


# --- pickle, zip and GGUF -----------------------------------------------------------------------------------

def pickle_check(path: str | os.PathLike[str]) -> tuple[bool, str | None]:
    """Is this a pickle (legacy ``torch.save``, or a plain pickle ending in STOP), or a PyTorch zip holding a
    pickled ``data.pkl``? Only bytes are inspected — nothing is ever unpickled."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(TORCH_LEGACY_MAGIC))
            if head.startswith(b"PK\x03\x04"):
                return _zip_pickle_check(path)
            if not (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5):
                return False, "not a pickle: it does not start with a pickle protocol 2-5 marker"
            if head == TORCH_LEGACY_MAGIC:
                return True, None
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b".":
                return False, "the pickle is truncated (it does not end with the STOP opcode)"
    except OSError as exc:
        return False, f"cannot read the file: {exc.strerror or exc}"
    return True, None


def _zip_pickle_check(path: str | os.PathLike[str]) -> tuple[bool, str | None]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
            if not names:
                return False, "a zip file without data.pkl is not a PyTorch checkpoint"
            with zf.open(names[0]) as member:
                proto = member.read(2)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        return False, f"the zip archive is damaged ({str(exc)[:120]})"
    if not (len(proto) == 2 and proto[0] == 0x80 and 2 <= proto[1] <= 5):
        return False, "data.pkl inside the zip is not a pickle"
    return True, None


def gguf_check(path: str | os.PathLike[str]) -> tuple[bool, str | None]:
    """GGUF magic, a known version (1-3) and plausible tensor/metadata counts for the file size."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(24)
    except OSError as exc:
        return False, f"cannot read the file: {exc.strerror or exc}"
    if len(head) < 16 or not head.startswith(b"GGUF"):
        return False, "not a GGUF file (missing the GGUF magic or header)"
    (version,) = struct.unpack("<I", head[4:8])
    if version not in (1, 2, 3):
        return False, f"unsupported GGUF version {version}"
    if version == 1:
        tensors, kvs = struct.unpack("<II", head[8:16])
    elif len(head) < 24:
        return False, "the GGUF header is truncated"
    else:
        tensors, kvs = struct.unpack("<QQ", head[8:24])
    # Every tensor info and key/value pair takes well over 8 bytes, so counts beyond size/8 are corrupt.
    if tensors > size // 8 or kvs > size // 8:
        return False, f"the GGUF header declares {tensors} tensors and {kvs} keys, impossible for {size} bytes"
    return True, None


#: Extensions whose format is certain: a file that sniffs differently is invalid.
_EXPECTED = {".safetensors": "safetensors", ".sft": "safetensors", ".gguf": "gguf"}


def validate_file(path: str | os.PathLike[str], name: str | None = None) -> tuple[str, str | None]:
    """Sniff a model file and run the structural checks for its format; ``name``: the file's name when its path
    does not end in it (a partial about to be published), whose extension says what it must be.

    Returns:
        ``(format, reason)`` where ``reason`` is None when the file is structurally sound. Formats with no
        structural rules (``unknown``: .onnx, raw .bin, …) pass unless their extension promised another format.
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        return "unknown", f"cannot read the file: {exc.strerror or exc}"
    kind = sniff(head)
    expected = _EXPECTED.get(Path(name or p.name).suffix.lower())
    if kind == "empty":
        return kind, "the file is empty (0 bytes)"
    if kind in ("html", "json"):
        return kind, f"the file is {'an HTML page' if kind == 'html' else 'a JSON document'}, not a model " \
                     "(often a saved login or error page); re-download it"
    if expected == "safetensors" or kind == "safetensors":
        ok, reason = validate_safetensors(p)
        return "safetensors", reason
    if expected and kind != expected:
        return kind, f"the file is named {Path(name or p.name).suffix} but its bytes are {kind}"
    checks = {"gguf": gguf_check, "zip": pickle_check, "pickle": pickle_check}
    if kind in checks:
        return kind, checks[kind](p)[1]
    return kind, None
