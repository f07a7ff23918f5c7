"""Models named inside prompt text: ComfyUI's ``embedding:name`` (its CLIP tokenizer loads ``embeddings/name``,
trying ``.safetensors``, ``.pt`` and ``.bin`` when no extension is given) and A1111's ``<lora:name:weight>``
(``<lyco:…>``, ``<hypernet:…>``), which several ComfyUI custom nodes read as well."""
from __future__ import annotations

import re

from shared.workflows.refs import Wanted

_EMBEDDING = re.compile(r"embedding:([^\s,()\[\]{}<>|\"]+)", re.IGNORECASE)
_TAG = re.compile(r"<(lora|lyco|hypernet):([^:<>\n]+)(?::[^<>\n]*)?>", re.IGNORECASE)
_TAG_FOLDERS = {"lora": "loras", "lyco": "loras", "hypernet": "hypernetworks"}
_WEIGHT = re.compile(r":-?[\d.]+$")


def prompt_references(text: str, node_type: str | None = None, *, optional: bool = False) -> list[Wanted]:
    """Every embedding and LoRA/hypernetwork tag in ``text``."""
    out: list[Wanted] = []
    lower = text.lower()
    if "embedding:" in lower:
        for m in _EMBEDDING.finditer(text):
            name = _WEIGHT.sub("", m.group(1)).rstrip(".:;!?")
            if name:
                out.append(Wanted(name, "embeddings", node_type, optional=optional))
    if "<" in text and ":" in text:
        for m in _TAG.finditer(text):
            name = m.group(2).strip()
            if name:
                out.append(Wanted(name, _TAG_FOLDERS[m.group(1).lower()], node_type, optional=optional))
    return out
