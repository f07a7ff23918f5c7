"""NAME.md front matter reads exactly as YAML would, whether the fast path or the YAML parser handles it."""
from __future__ import annotations

import pytest
import yaml

from shared.store.front_matter import split_front_matter

#: the loader the store uses (libyaml when present; it differs from pure PyYAML on tabs, for one)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

CASES = [
    "author: someone\nbaseModel: SDXL 1.0\nwebsite: Civitai",
    "modelPage: https://civitai.com/models/1?modelVersionId=2",
    "count: 12\nflag: true\nwhen: 2024-01-02\nnothing: null\nfloat: 1.5e3",
    "name: 'quoted'\nother: \"double\"",
    "a: b # comment\nc: d",
    "nested:\n  SHA256: ABC\n  BLAKE3: DEF",
    "list:\n- one\n- two",
    "dup: one\ndup: two",
    "key: value: with colon",
    "key: ends with colon:",
    "weird key: spaced",
    "k: ~",
    "k: yes\nj: off",
    "k: 0x1F\nj: 0o17",
    "k: ümlaut text",
    "k: -leading dash",
    "k: tab\there",
    "k: *anchor",
]


@pytest.mark.parametrize("front", CASES)
def test_front_matter_equals_yaml(front: str) -> None:
    meta, body = split_front_matter(f"---\n{front}\n---\n# Trigger Words\nabc\n")
    try:
        expected = yaml.load(front, Loader=_LOADER) or {}  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        expected = {}
    assert meta == (expected if isinstance(expected, dict) else {})
    assert body.startswith("# Trigger Words")
