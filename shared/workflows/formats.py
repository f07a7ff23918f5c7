"""What a handed-over file holds, found by sniffing its bytes (never its name): a ComfyUI ``.json`` (UI graph, API
prompt, or a ``/prompt`` request body carrying both), a PNG with ``tEXt``/``iTXt``/``zTXt`` chunks ``workflow`` and
``prompt`` (ComfyUI's SaveImage via PIL ``PngInfo``; animated PNGs use private ``comf`` chunks after the image
data), a WebP or JPEG whose EXIF holds ``"prompt:{json}"`` in tag 0x0110 (Model) and ``"workflow:{json}"`` in tag
0x010F (Make) and below (ComfyUI's SaveAnimatedWEBP / webp SaveImage), A1111's ``parameters`` text (PNG text
chunk, or EXIF UserComment in JPEG/WebP), or plain text (A1111 parameters, Civitai AIR URNs).

Everything is bounded: the file by ``MAX_BYTES``, every decompressed text chunk by the same cap, JSON nesting by
the parser's limit. A file that holds none of these raises a ``WorkflowFileError`` naming what was found."""
from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from PIL import Image, UnidentifiedImageError

from shared.workflows.errors import FileTooLarge, MalformedWorkflow, UnsupportedFile, WorkflowFileError

#: The largest file read; ComfyUI's biggest official template is well under 1 MiB.
MAX_BYTES = 32 * 1024 * 1024
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_KEYS = ("workflow", "prompt", "parameters")
_EXIF_USER_COMMENT, _EXIF_IFD = 0x9286, 0x8769
_HINT = ("Give a ComfyUI workflow (.json), a PNG or WebP that ComfyUI saved, an A1111 PNG, or text with A1111 "
         "generation parameters or Civitai AIR URNs.")


@dataclass(frozen=True)
class Payload:
    """What was found in one file: a UI graph, an API prompt, A1111 parameters and/or free text."""

    format: str  #: json | png | webp | jpeg | text
    workflow: dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None
    parameters: str | None = None
    text: str | None = None

    @property
    def contents(self) -> list[str]:
        return [name for name, v in (("ui", self.workflow), ("api", self.prompt), ("a1111", self.parameters),
                                     ("text", self.text)) if v is not None]


def read_bytes(data: bytes) -> Payload:
    """Sniff ``data`` and extract what it holds."""
    if len(data) > MAX_BYTES:
        raise FileTooLarge(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MiB; no workflow is that big.")
    if not data.strip():
        raise WorkflowFileError("The file is empty. " + _HINT)
    if data.startswith(_PNG_SIGNATURE):
        return _from_png(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _from_exif_image(data, "WEBP")
    if data[:3] == b"\xff\xd8\xff":
        return _from_exif_image(data, "JPEG")
    return read_text(_decode_text(data))


def read_text(text: str) -> Payload:
    """A JSON document, or free text (A1111 parameters, AIR URNs), typed or pasted."""
    stripped = text.strip()
    if not stripped:
        raise WorkflowFileError("The text is empty. " + _HINT)
    if stripped[0] in "{[":
        return read_json_value(parse_json(stripped, "The JSON"), "json")
    return Payload("text", text=text)


def read_json_value(value: Any, fmt: str = "json") -> Payload:
    """Classify parsed JSON: a UI graph, an API prompt, or a wrapper holding either or both."""
    if not isinstance(value, dict):
        raise WorkflowFileError(f"JSON is neither a UI nor an API workflow: its top level is a "
                                f"{_json_type(value)}, not an object. " + _HINT)
    if is_ui_graph(value):
        return Payload(fmt, workflow=value)
    if is_api_prompt(value):
        return Payload(fmt, prompt=value)
    # A /prompt request body ({"prompt", "extra_data": {"extra_pnginfo": {"workflow"}}}) or {"workflow": …}.
    extra = value.get("extra_data")
    pnginfo = extra.get("extra_pnginfo") if isinstance(extra, dict) else None
    ui = next((w for w in (value.get("workflow"), pnginfo.get("workflow") if isinstance(pnginfo, dict) else None)
               if is_ui_graph(w)), None)
    api = value.get("prompt") if is_api_prompt(value.get("prompt")) else None
    if ui is None and api is None:
        raise WorkflowFileError('JSON is neither a UI nor an API workflow: it has no "nodes" list (UI format) '
                                'and is not {"<id>": {"class_type", "inputs"}, …} (API format). ' + _HINT)
    return Payload(fmt, workflow=ui, prompt=api)


def is_ui_graph(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("nodes"), list)


def is_api_prompt(value: Any) -> bool:
    return (isinstance(value, dict) and bool(value)
            and all(isinstance(n, dict) and isinstance(n.get("class_type"), str) for n in value.values()))


def parse_json(text: str | bytes, what: str) -> Any:
    """JSON with a clear error. orjson first (fast, nesting-limited); the standard parser only for the ``NaN`` /
    ``Infinity`` that Python's ``json.dumps`` (and so ComfyUI) may write."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        first = exc
    try:
        return json.loads(text)
    except RecursionError:
        raise MalformedWorkflow(f"{what} is nested too deeply to be a workflow.") from None
    except ValueError:
        raise MalformedWorkflow(f"{what} is not valid JSON ({first}).") from None


# --- PNG ------------------------------------------------------------------------------------------------

def _from_png(data: bytes) -> Payload:
    texts = png_texts(data)
    workflow = _json_chunk(texts, "workflow", "PNG")
    prompt = _json_chunk(texts, "prompt", "PNG")
    parameters = texts.get("parameters")
    if not is_ui_graph(workflow):
        workflow = None
    if not is_api_prompt(prompt):
        prompt = None
    if workflow is None and prompt is None and not parameters:
        found = ", ".join(sorted(texts)) or "none"
        raise WorkflowFileError(f"This PNG has no ComfyUI workflow in it (its text chunks: {found}). Save the "
                                "image with ComfyUI's Save Image node, or give the workflow .json.")
    return Payload("png", workflow=workflow, prompt=prompt, parameters=parameters or None)


def png_texts(data: bytes) -> dict[str, str]:
    """The text chunks of a PNG (``tEXt``, ``zTXt``, ``iTXt`` and ComfyUI's APNG ``comf``) whose keyword is one
    of ``workflow``/``prompt``/``parameters``, first occurrence wins. Only chunk headers are walked; pixels are
    never decoded."""
    out: dict[str, str] = {}
    pos, end = len(_PNG_SIGNATURE), len(data)
    while pos + 8 <= end:
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body_start = pos + 8
        if body_start + length + 4 > end:
            raise MalformedWorkflow(f"This PNG is truncated or corrupt (chunk {ctype!r} runs past the end).")
        if ctype in (b"tEXt", b"zTXt", b"iTXt", b"comf"):
            keyword, text = _png_text(ctype, data[body_start:body_start + length])
            if keyword in _TEXT_KEYS and keyword not in out:
                out[keyword] = text
        if ctype == b"IEND":
            break
        pos = body_start + length + 4
    return out


def _png_text(ctype: bytes, body: bytes) -> tuple[str, str]:
    keyword, sep, rest = body.partition(b"\0")
    if not sep:
        return "", ""
    key = keyword.decode("latin-1")
    if key not in _TEXT_KEYS:
        return key, ""
    if ctype in (b"tEXt", b"comf"):
        return key, rest.decode("latin-1")
    if ctype == b"zTXt":
        return key, _inflate(rest[1:]).decode("latin-1")
    # iTXt: flag, method, language\0, translated keyword\0, UTF-8 text
    if len(rest) < 2:
        return key, ""
    compressed, tail = rest[0], rest[2:]
    _lang, _, tail = tail.partition(b"\0")
    _translated, _, text = tail.partition(b"\0")
    raw = _inflate(text) if compressed else text
    return key, raw.decode("utf-8", errors="replace")


def _inflate(blob: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(blob, MAX_BYTES)
    except zlib.error:
        raise MalformedWorkflow("A compressed text chunk of this PNG is corrupt.") from None
    if inflater.unconsumed_tail:
        raise FileTooLarge(f"A compressed text chunk of this PNG inflates past {MAX_BYTES // (1024 * 1024)} MiB.")
    return out


def _json_chunk(texts: dict[str, str], key: str, where: str) -> Any:
    if key not in texts:
        return None
    return parse_json(texts[key], f"The {where}'s {key!r} metadata")


# --- WebP / JPEG (EXIF) ---------------------------------------------------------------------------------

def _from_exif_image(data: bytes, fmt: str) -> Payload:
    name = fmt.lower()
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            exif = im.getexif()
            comment = im.info.get("comment")
            user_comment = exif.get_ifd(_EXIF_IFD).get(_EXIF_USER_COMMENT)
            tags = [v for v in exif.values() if isinstance(v, str)]
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError,
            struct.error) as exc:
        raise MalformedWorkflow(f"This {fmt} file cannot be read ({exc}).") from None
    found: dict[str, Any] = {}
    for value in tags:
        key, sep, rest = value.partition(":")
        if sep and key in ("workflow", "prompt") and key not in found:
            found[key] = parse_json(rest.rstrip("\0"), f"The {fmt}'s EXIF {key!r}")
    workflow = found.get("workflow") if is_ui_graph(found.get("workflow")) else None
    prompt = found.get("prompt") if is_api_prompt(found.get("prompt")) else None
    parameters = decode_user_comment(user_comment) if isinstance(user_comment, bytes) else None
    if not parameters and isinstance(comment, bytes):
        parameters = comment.decode("utf-8", errors="replace")
    if workflow is None and prompt is None and not parameters:
        raise WorkflowFileError(f"This {fmt} has no ComfyUI workflow in it (no EXIF \"workflow:\" or \"prompt:\" "
                                "entry and no generation parameters). " + _HINT)
    return Payload(name, workflow=workflow, prompt=prompt, parameters=parameters or None)


def decode_user_comment(raw: bytes) -> str | None:
    """EXIF UserComment as A1111 writes it (piexif ``UNICODE`` = UTF-16; some tools write little-endian)."""
    head, body = raw[:8], raw[8:]
    if head == b"UNICODE\0":
        big_endian = len(body) >= 2 and body[0] == 0 and body[1] != 0
        little_endian = len(body) >= 2 and body[1] == 0 and body[0] != 0
        codec = "utf-16-le" if little_endian and not big_endian else "utf-16-be"
        text = body.decode(codec, errors="replace")
    elif head in (b"ASCII\0\0\0", b"\0" * 8):
        text = body.decode("latin-1")
    else:
        text = raw.decode("utf-8", errors="replace")
    return text.strip("\0 ") or None


# --- helpers --------------------------------------------------------------------------------------------

def _decode_text(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if b"\0" in data[:65536]:
        raise UnsupportedFile("This is a binary file of a kind that holds no workflow. " + _HINT)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedFile("This file is neither an image with a workflow nor UTF-8 text. " + _HINT) from None


def _json_type(value: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")
