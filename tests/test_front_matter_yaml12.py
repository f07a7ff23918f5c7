"""Every ``NAME.md`` front matter the store writes reads back as the very strings written, whichever YAML reads
it: PyYAML (YAML 1.1; the project's own reader, pure and libyaml), ruamel.yaml in YAML 1.2 mode, the project's
``split_front_matter``, and, where Node.js is installed, the npm ``yaml`` package that ComfyUI-Model-Manager's
browser side parses front matter with (``yaml.parse``: YAML 1.2, core schema). PyYAML alone quotes only what
YAML 1.1 would read as another type, so ``0123456789`` (an AutoV2) came back from a 1.2 reader as the number
123456789 and the CRC32 ``12E45678`` as Infinity."""
from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from shared.downloads.describe import write_md
from shared.downloads.plan import Plan
from shared.metadata.job import describe
from shared.store.front_matter import split_front_matter
from shared.store.sidecar_files import parse_markdown

#: Civitai's hash names and their hex lengths.
HASH_LENGTHS = {"AutoV1": 8, "AutoV2": 10, "AutoV3": 12, "CRC32": 8, "SHA256": 64, "BLAKE3": 64}
#: Strings some YAML version reads as something else (1.1: bools, sexagesimal, 0b/0x, ``_``, dates; 1.2 core:
#: exponents without a dot, ``0o``, leading zeros), and strings that need quoting for other reasons.
TRICKY = ["0123456789", "12E45678", "1e5", "1E5", "1e-5", ".inf", "-.Inf", "+.INF", ".NaN", ".nan", "no", "No",
          "on", "OFF", "yes", "y", "n", "Y", "~", "null", "Null", "NULL", "true", "False", "0x1F", "0o17", "0b101",
          "1_0", "1_000", "12:30", "1:20", "-1:20:30", "2024-01-01", "2024-01-01 10:00:00",
          "2001-12-14t21:59:43.10-05:00",
          "0", "00", "007", "-0", "+1", "1.", ".5", "1.5e3", "1e", "e5", "0x", "0o", "08", "0.", "-", "- x", "=", "<<",
          # ruamel.yaml's 1.2 reader takes "_" between digits beyond the spec: reads 1 and 100000.0, fails on the rest
          "0o1_", "1_e5", "0o_", "0b_", "0x_", "-_", "+0o_",
          "name: with colon", "ends with colon:", "a #hash", "#start", " leading", "trailing ", "", "'", '"', "@at",
          "`tick", "%pct", "!tag", "&anchor", "*alias", "[x]", "{x}", "|", ">", "?", "? x", "tab\there", "ümlaut",
          # line breaks to YAML 1.1 only (NEL, LS, PS), and other characters YAML escapes
          "a\x85  b", "a\u2028  b", "a\u2029  b", "\u2028", "bom\ufeff", "nul\x00", "esc\x1b", "del\x7f", "c1\x9f",
          "line\nbreak", "cr\rhere", "emoji \U0001F600"]

_PYYAML = yaml.SafeLoader
_LIBYAML = getattr(yaml, "CSafeLoader", None)


def _ruamel_12() -> YAML:
    reader = YAML(typ="safe", pure=True)
    reader.version = (1, 2)
    return reader


_RUAMEL = _ruamel_12()


def test_ruamel_reads_yaml_1_2() -> None:
    """The reader below really applies YAML 1.2: ``on`` stays a string (1.1: true), ``0123`` is decimal 123
    (1.1: octal 83), ``1e5`` is a float (1.1: a string)."""
    assert _RUAMEL.load("a: on\nb: 0123\nc: 1e5\nd: 0o17\n") == {"a": "on", "b": 123, "c": 1e5, "d": 15}


def _readers() -> dict[str, Callable[[str], Any]]:
    out: dict[str, Callable[[str], Any]] = {
        "PyYAML (YAML 1.1)": lambda text: yaml.load(text, Loader=_PYYAML),  # noqa: S506 - a safe loader
        "ruamel.yaml (YAML 1.2)": _RUAMEL.load,
        "split_front_matter": lambda text: split_front_matter(f"---\n{text}---\n\n# Trigger Words\n")[0],
    }
    if _LIBYAML is not None:
        out["libyaml (YAML 1.1)"] = lambda text: yaml.load(text, Loader=_LIBYAML)  # noqa: S506 - a safe loader
    return out


def _front_text(md: str) -> str:
    assert md.startswith("---\n")
    return md[4:md.index("\n---\n", 3) + 1]


def _expected(**front: Any) -> dict[str, Any]:
    """What ``write_description`` puts in the front matter: the given fields minus the empty ones."""
    return {k: v for k, v in front.items() if v not in (None, "", [], {})}


def _download_sidecar(tmp: Path, text: str, hashes: dict[str, str]) -> tuple[Path, dict[str, Any]]:
    """The sidecar a download writes, every free-text field set to ``text``."""
    meta = {"model_name": text or "m", "author": text, "base_model": text, "model_page": f"https://x/{text}",
            "website": text, "model_type": text, "version_name": text, "model_id": 7, "version_id": 70,
            "file_id": 700, "images": [{"url": f"https://img/{text}.jpeg", "nsfwLevel": 1}]}
    plan = Plan(source="civitai", url="https://x", filename="m.safetensors", folder="loras", idem_key="k",
                meta=meta)
    target = tmp / "m.safetensors"
    write_md(target, plan, hashes, nsfw_level=1)
    metadata = {"model_id": 7, "version_id": 70, "file_id": 700, "model_type": text, "version_name": text,
                "source": "civitai"}
    return target.with_suffix(".md"), _expected(
        author=text, baseModel=text, hashes=hashes, metadata={k: v for k, v in metadata.items() if v is not None},
        modelPage=f"https://x/{text}", preview=[f"https://img/{text}.jpeg"], website=text)


def _metadata_sidecar(tmp: Path, text: str, hashes: dict[str, str]) -> tuple[Path, dict[str, Any]]:
    """The sidecar a scan's Civitai metadata lookup writes for a model found by its SHA256."""
    sha = hashes.get("SHA256", "0" * 64)
    file_meta = {"format": text, "size": text, "fp": text}
    version = {"id": 70, "modelId": 7, "baseModel": text, "trainedWords": [text], "description": text,
               "creator": {"username": text}, "model": {"name": text, "description": text},
               "files": [{"hashes": {**hashes, "SHA256": sha}, "metadata": file_meta}],
               "images": [{"url": f"https://img/{text}.jpeg"}]}
    target = tmp / "m.safetensors"
    describe(target, version, sha)
    return target.with_suffix(".md"), _expected(
        author=text, baseModel=text, hashes={**hashes, "SHA256": sha}, metadata=file_meta,
        modelPage="https://civitai.com/models/7?modelVersionId=70", preview=[f"https://img/{text}.jpeg"],
        website="Civitai")


WRITERS = {"download": _download_sidecar, "civitai lookup": _metadata_sidecar}


def _check(md: Path, expected: dict[str, Any]) -> None:
    text = _front_text(md.read_text(encoding="utf-8"))
    for name, read in _readers().items():
        assert read(text) == expected, f"{name} read back something else from:\n{text}"


def _hex(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789ABCDEF", min_size=n, max_size=n)


hashes_st = st.fixed_dictionaries({name: _hex(n) for name, n in HASH_LENGTHS.items()})
#: digits only and digits around an exponent (what a hex hash can be), plus the named tricky strings
text_st = st.one_of(st.sampled_from(TRICKY), st.text(alphabet="0123456789", min_size=1, max_size=12),
                    st.from_regex(r"\A[0-9]{1,6}[eE][-+]?[0-9]{1,6}\Z"), st.from_regex(r"\A0[box][0-9A-Fa-f_]{1,6}\Z"),
                    st.text(alphabet="0123456789ABCDEFabcdef.:_-+ #~'\"eEnoNOxy", max_size=12),
                    st.text(max_size=16))


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings_read_back_the_same(tmp_path: Path, writer: str, text: str) -> None:
    md, expected = WRITERS[writer](tmp_path, text, {"AutoV2": text, "CRC32": "ABCDEF01"})
    _check(md, expected)


@pytest.mark.parametrize("writer", WRITERS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=text_st, hashes=hashes_st)
def test_any_strings_and_hashes_read_back_the_same(tmp_path: Path, writer: str, text: str,
                                                   hashes: dict[str, str]) -> None:
    md, expected = WRITERS[writer](tmp_path, text, hashes)
    _check(md, expected)


def test_hashes_are_always_quoted(tmp_path: Path) -> None:
    md, _ = _download_sidecar(tmp_path, "x", {"AutoV2": "ABCDEF0123", "SHA256": "A" * 64})
    text = _front_text(md.read_text())
    assert "  AutoV2: 'ABCDEF0123'\n" in text and f"  SHA256: '{'A' * 64}'\n" in text


def test_the_project_reads_back_the_hashes_and_fields(tmp_path: Path) -> None:
    hashes = {"AutoV1": "00000000", "AutoV2": "0123456789", "AutoV3": "1E5000000000", "CRC32": "12E45678",
              "SHA256": "0" * 64, "BLAKE3": "1" * 64}
    md, _ = _download_sidecar(tmp_path, "0o17", hashes)
    parsed = parse_markdown(md.read_text())
    assert parsed["hashes"] == hashes
    assert parsed["base_model"] == "0o17" and parsed["author"] == "0o17"


# --- the npm ``yaml`` package (what ComfyUI-Model-Manager's browser side runs) ----------------------------------

_NODE_READ = """
const YAML = require('yaml');
const docs = JSON.parse(require('fs').readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(docs.map((d) => YAML.parse(d))));
"""


@pytest.fixture(scope="module")
def node_yaml() -> Path:
    """A directory whose node_modules holds the npm ``yaml`` 2.x (installed once per virtualenv)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js is not installed")
    home = Path(sys.prefix) / "node-yaml"
    if not (home / "node_modules" / "yaml" / "package.json").is_file():
        home.mkdir(exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(home), "yaml@2"],
                       check=True, timeout=300, capture_output=True)
    return home


def _node_parse(home: Path, docs: list[str]) -> list[Any]:
    done = subprocess.run(["node", "-e", _NODE_READ], input=json.dumps(docs), cwd=home, capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(done.stdout)


def test_npm_yaml_reads_back_the_same(tmp_path: Path, node_yaml: Path) -> None:
    # The reader is YAML 1.2: a plain 0123456789 is a number to it.
    assert _node_parse(node_yaml, ["a: 0123456789\nb: on\n"]) == [{"a": 123456789, "b": "on"}]
    rng = random.Random(12)
    cases: list[tuple[str, dict[str, str]]] = [(t, {"AutoV2": t}) for t in TRICKY]
    for _ in range(400):
        hashes = {name: "".join(rng.choice("0123456789ABCDEF") for _ in range(n)) for name, n in HASH_LENGTHS.items()}
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12)))
        cases.append((rng.choice([digits, f"{digits}E{rng.randint(0, 99)}", rng.choice(TRICKY)]), hashes))
    docs, expected = [], []
    for i, (text, hashes) in enumerate(cases):
        for name, writer in WRITERS.items():
            case_dir = tmp_path / f"{i}-{name}"
            case_dir.mkdir()
            md, want = writer(case_dir, text, hashes)
            docs.append(_front_text(md.read_text(encoding="utf-8")))
            expected.append(want)
    got = _node_parse(node_yaml, docs)
    wrong = [(doc, g) for doc, g, want in zip(docs, got, expected, strict=False) if g != want]
    assert not wrong, f"{len(wrong)} of {len(docs)} front matters read differently, e.g.:\n{wrong[0][0]}\n{wrong[0][1]}"
