"""YAML front matter, the head of a ``NAME.md`` (ComfyUI-Model-Manager's layout): read fast when it is the common
flat ``key: value`` form, else with libyaml; written so that YAML 1.1 and 1.2 readers (PyYAML, ruamel.yaml, the
npm ``yaml`` package ComfyUI-Model-Manager's browser side uses) all read every string back as that string."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

#: libyaml's loader when present (an order of magnitude faster than the pure-Python one on big scans).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
#: PyYAML's implicit-type resolver: (node kind, value, (implicit, ...)) -> tag
_RESOLVE: Callable[..., str] = yaml.resolver.Resolver().resolve
#: First characters for which YAML tries an implicit type (bool, int, float, null, timestamp...); a scalar
#: starting with any other character is a plain string without asking the resolver.
_IMPLICIT_FIRST = frozenset(k for k in yaml.resolver.Resolver.yaml_implicit_resolvers if k)
_STR_TAG = "tag:yaml.org,2002:str"


# --- reading ------------------------------------------------------------------------------------------

def _flat_front_matter(text: str) -> dict[str, str] | None:
    """The common front matter of only ``key: plain text`` lines, read without a YAML parser (a scan reads
    thousands); None for anything else, including any key or value YAML would not read as a plain string, so
    the result always equals YAML's."""
    out: dict[str, str] = {}
    for line in text.split("\n"):
        key, sep, value = line.partition(": ")
        value = value.strip(" ")
        if (not sep or key in out or not _PLAIN_KEY.match(key) or not value or value[0] in _INDICATORS
                or value[-1] == ":" or ": " in value or " #" in value or not value.isprintable()
                or (value[0] in _IMPLICIT_FIRST and _RESOLVE(yaml.ScalarNode, value, (True, False)) != _STR_TAG)
                or (key[0] in _IMPLICIT_FIRST and _RESOLVE(yaml.ScalarNode, key, (True, False)) != _STR_TAG)):
            return None
        out[key] = value
    return out


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """``(front matter dict, body)`` of a Markdown file; CRLF files (written on Windows) are accepted."""
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            meta = _flat_front_matter(text[4:end])
            if meta is None:
                try:
                    meta = yaml.load(text[4:end], Loader=_YAML_LOADER) or {}  # noqa: S506 - a safe loader
                except yaml.YAMLError:
                    meta = {}
            body = text[end + 4:].lstrip("-").lstrip("\n")
            return (meta if isinstance(meta, dict) else {}), body
    return {}, text


# --- writing ------------------------------------------------------------------------------------------

class _FrontMatterDumper(yaml.SafeDumper):
    """PyYAML's safe dumper, which quotes a string only when YAML 1.1 would read it as another type, taught the
    YAML 1.2 core schema's types as well, so a string is left plain only when both versions read it back as
    that string. ComfyUI-Model-Manager's browser side reads front matter with the npm ``yaml`` package (YAML
    1.2), which reads a plain ``0123456789`` (an AutoV2) as 123456789 and ``12E45678`` (a CRC32) as Infinity;
    YAML 1.1 reads both as strings, so PyYAML alone left them plain."""


class Quoted(str):
    """A string always written quoted (hashes: hex digits can look like a number to some reader)."""


# The YAML 1.2 core schema's int and float (spec 10.3.2); its null and bool are a subset of YAML 1.1's. Then the
# same as ruamel.yaml's 1.2 reader takes them, "_" allowed between digits beyond the spec: it reads ``0o1_`` as 1
# and ``1_e5`` as 100000.0, and fails on ``0o_``.
for _tag, _pattern, _first in (
        ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
        ("tag:yaml.org,2002:float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+.0123456789"),
        ("tag:yaml.org,2002:int", r"^[-+]?(?:0b[0-1_]+|0o?[0-7_]+|[0-9_]+|0x[0-9a-fA-F_]+)$", "-+0123456789"),
        ("tag:yaml.org,2002:float", r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?"
                                    r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?)$", "-+.0123456789")):
    _FrontMatterDumper.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))
#: Line breaks to YAML 1.1 but ordinary characters to YAML 1.2: written raw, the indentation after them would join
#: the string for a 1.2 reader; double-quoted, both read the escapes (``\N``, ``\L``, ``\P``) alike.
_BREAKS_11_ONLY = frozenset("\x85\u2028\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if not _BREAKS_11_ONLY.isdisjoint(value) else "'" if isinstance(value, Quoted) else None
    return dumper.represent_scalar(_STR_TAG, str(value), style=style)


_FrontMatterDumper.add_representer(str, _represent_str)
_FrontMatterDumper.add_representer(Quoted, _represent_str)


def dump_front_matter(front: dict[str, Any]) -> str:
    """``front`` between ``---`` lines, keys sorted; a Quoted value is always written quoted."""
    return "---\n" + yaml.dump(front, Dumper=_FrontMatterDumper, sort_keys=True, allow_unicode=True,
                                default_flow_style=False) + "---\n"
