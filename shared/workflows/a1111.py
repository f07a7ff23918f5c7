"""A1111 (stable-diffusion-webui) generation parameters, the ``parameters`` text its images carry::

    <prompt, possibly several lines, with <lora:name:weight> tags>
    Negative prompt: <negative prompt>
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: 6ce0161689,
    Model: v1-5-pruned-emaonly, VAE hash: 735e4c3a44, VAE: vae-ft-mse.safetensors,
    Lora hashes: "add_detail: 7c6bad76eb54", TI hashes: "EasyNegative: c74b4e810b03", Version: v1.10.1

(the last line is one line). Parsed the way the webui parses it (``parse_generation_parameters``: the last line
holds the parameters when it has at least three ``key: value`` pairs; quoted values are JSON strings). Hashes:
``Model hash``/``VAE hash`` are AutoV2 (10 hex; very old builds wrote the 8-hex AutoV1), ``Lora hashes`` are
AutoV3 (12 hex), ``TI hashes`` the first 12 hex of the file's SHA256. Civitai's additions are read too:
``Hashes: {"model": …, "lora:NAME": …}`` and ``Civitai resources: [{"type", "modelVersionId", …}]``."""
from __future__ import annotations

import json
import re
from typing import Any

from shared.workflows.prompts import prompt_references
from shared.workflows.refs import HASH_LENGTHS, Wanted

# The webui's pattern with the key's length bounded: unbounded, a long line without a colon costs quadratic time.
_PARAM = re.compile(r'\s*(\w[\w \-/]{0,79}):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_SPACES = re.compile(r"[ \t\r\f\v]+")
#: A parameters line longer than this is not one (real ones are a few KiB, with Civitai's resource list).
MAX_LINE = 256 * 1024
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_BRACKETED = re.compile(r"^(.*?)\s*\[([0-9a-fA-F]{8,12})\]$")
_RESOURCE_FOLDERS = {"checkpoint": "checkpoints", "lora": "loras", "locon": "loras", "lycoris": "loras",
                     "embed": "embeddings", "embedding": "embeddings", "textualinversion": "embeddings",
                     "vae": "vae", "hypernet": "hypernetworks", "controlnet": "controlnet"}


def parse_parameters(text: str) -> tuple[str, str, dict[str, str]]:
    """``(prompt, negative prompt, {key: value})`` as the webui reads them."""
    *lines, last = text.strip().split("\n")
    # Runs of blanks are one blank: each position of a long run would otherwise rescan it.
    last = _SPACES.sub(" ", last) if len(last) <= MAX_LINE else ""
    if len(_PARAM.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            negative.append(line[len("Negative prompt:"):].strip())
        elif negative:
            negative.append(line)
        else:
            prompt.append(line)
    params: dict[str, str] = {}
    for key, value in _PARAM.findall(last):
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            try:
                value = json.loads(value)
            except ValueError:
                value = value[1:-1]
        params[key] = value
    return "\n".join(prompt), "\n".join(negative), params


def looks_like_parameters(text: str) -> bool:
    _prompt, _negative, params = parse_parameters(text)
    return bool(params) and ("Steps" in params or "Model" in params or "Model hash" in params)


def a1111_references(text: str) -> list[Wanted]:
    """Every model the parameters name, with the hashes they give."""
    prompt, negative, params = parse_parameters(text)
    out = prompt_references(prompt) + prompt_references(negative)
    if params.get("Model") or params.get("Model hash"):
        out.append(_named(params.get("Model") or params["Model hash"], "checkpoints", params.get("Model hash")))
    if params.get("VAE"):
        out.append(_named(params["VAE"], "vae", params.get("VAE hash")))
    if m := _BRACKETED.match(params.get("Refiner", "")):
        out.append(_named(m.group(1), "checkpoints", m.group(2)))
    for name, value in _pairs(params.get("Lora hashes", "")):
        out.append(_named(name, "loras", value, twelve="AutoV3"))
    for name, value in _pairs(params.get("TI hashes", "")):
        out.append(_named(name, "embeddings", value))
    for key, value in params.items():
        if key.startswith("ControlNet") and (m := re.search(r"Model: ([^,\[]+?)\s*(?:\[[0-9a-fA-F]+\])?(?:,|$)",
                                                            value)) and m.group(1).strip().lower() != "none":
            out.append(_named(m.group(1).strip(), "controlnet", None))
    out.extend(_civitai_hashes(_json(_raw_json_after(text, "Hashes:") or params.get("Hashes"))))
    out.extend(_civitai_resources(_json(_raw_json_after(text, "Civitai resources:")
                                        or params.get("Civitai resources"))))
    return out


def _named(name: str, folder: str, short_hash: str | None, *, twelve: str = "SHA256") -> Wanted:
    return Wanted(name.strip(), folder, hashes=_hash(short_hash, twelve))


def _hash(value: str | None, twelve: str) -> tuple[tuple[str, str], ...]:
    value = (value or "").strip()
    if not _HEX.match(value):
        return ()
    kind = {10: "AutoV2", 8: "AutoV1", 12: twelve, 64: "SHA256"}.get(len(value))
    return ((kind, value.upper()),) if kind and len(value) <= HASH_LENGTHS[kind] else ()


def _pairs(value: str) -> list[tuple[str, str]]:
    """``"name: hash, name2: hash2"`` (names may hold ``:``; the hash is after the last one)."""
    out = []
    for part in value.split(","):
        name, sep, digest = part.rpartition(":")
        if sep and name.strip():
            out.append((name.strip(), digest.strip()))
    return out


def _civitai_hashes(data: Any) -> list[Wanted]:
    out = []
    for key, value in (data.items() if isinstance(data, dict) else ()):
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        kind, _, name = key.partition(":")
        if key == "model":
            continue  # the same checkpoint as "Model"/"Model hash"
        folder = {"lora": "loras", "lyco": "loras", "embed": "embeddings", "ti": "embeddings",
                  "vae": "vae"}.get(kind)
        if folder and (name or key == "vae"):
            out.append(_named(name or value, folder, value, twelve="AutoV3" if folder == "loras" else "SHA256"))
    return out


def _civitai_resources(data: Any) -> list[Wanted]:
    out = []
    for item in data if isinstance(data, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("modelVersionId"), int):
            continue
        label = " ".join(str(item[k]) for k in ("modelName", "modelVersionName") if item.get(k)) or \
            f"Civitai version {item['modelVersionId']}"
        folder = _RESOURCE_FOLDERS.get(str(item.get("type", "")).lower())
        out.append(Wanted(label, folder, civitai_version=item["modelVersionId"], named=False))
    return out


def _raw_json_after(text: str, label: str) -> Any:
    """Civitai writes some values as bare JSON (commas inside), which the key/value split would cut; the webui
    quotes them (a JSON string holding the JSON)."""
    at = max((text.rfind(sep + label) + len(sep) for sep in (", ", "\n")), default=-1)
    if text.find(label, at) != at:
        return None
    start = at + len(label)
    while text[start:start + 1] == " ":
        start += 1
    try:
        return json.JSONDecoder().raw_decode(text, start)[0]
    except (ValueError, RecursionError):
        return None


def _json(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None
