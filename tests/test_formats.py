"""Format checks: a hostile safetensors corpus generated here, each verdict compared with the ``safetensors``
reference library (accept == it opens the file without error); sniffing; pickle/zip/GGUF checks."""
from __future__ import annotations

import json
import pickle
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors
from safetensors.numpy import save_file

from shared.errors import DepotError
from shared.media.formats import (
    check_model_bytes,
    gguf_check,
    pickle_check,
    read_safetensors_metadata,
    sniff,
    validate_file,
    validate_safetensors,
)


def _st(header: bytes | dict, data: bytes = b"", n: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if n is None else n) + raw + data


def _t(dtype: str, shape: list, begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def _good_bytes(tmp_path: Path) -> bytes:
    p = tmp_path / "good.safetensors"
    save_file({"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(5, dtype=np.uint8)}, str(p),
              metadata={"ss_output_name": "x"})
    return p.read_bytes()


def _corpus(tmp_path: Path) -> dict[str, bytes]:
    good = _good_bytes(tmp_path)
    two = {"a": _t("U8", [2], 0, 2), "b": _t("F16", [2], 2, 6)}
    return {
        "good": good,
        "truncated": good[:-3],
        "trailing bytes": good + b"\0\0",
        "header longer than file": _st(b'{"a":1}', n=4096),
        "header > 100 MB": _st(b"{}", n=100_000_001),
        "header 2^63": _st(b"{}", n=2**63),
        "header not starting with {": _st(b'["a"]'),
        "header garbage": _st(b"xx not json"),
        "non-UTF-8 header": _st(b'{"\xff\xfe":' + json.dumps(_t("U8", [1], 0, 1)).encode() + b"}", b"x"),
        "overlapping offsets": _st({"a": _t("U8", [4], 0, 4), "b": _t("U8", [4], 2, 6)}, b"x" * 6),
        "holey offsets": _st({"a": _t("U8", [2], 0, 2), "b": _t("U8", [2], 4, 6)}, b"x" * 6),
        "not starting at 0": _st({"a": _t("U8", [2], 2, 4)}, b"x" * 4),
        "end before begin": _st({"a": _t("U8", [0], 2, 0)}, b"x" * 2),
        "size mismatch": _st({"a": _t("F32", [2], 0, 4)}, b"x" * 4),
        "two tensors ok": _st(two, b"x" * 6),
        "two tensors reordered ok": _st({"b": two["b"], "a": two["a"]}, b"x" * 6),
        "nested metadata": _st({"__metadata__": {"k": {"x": "y"}}, "a": _t("U8", [1], 0, 1)}, b"x"),
        "numeric metadata": _st({"__metadata__": {"k": 1}, "a": _t("U8", [1], 0, 1)}, b"x"),
        "flat metadata ok": _st({"__metadata__": {"k": "v"}, "a": _t("U8", [1], 0, 1)}, b"x"),
        "null metadata ok": _st({"__metadata__": None, "a": _t("U8", [1], 0, 1)}, b"x"),
        "unknown dtype": _st({"a": _t("F128", [1], 0, 16)}, b"x" * 16),
        "lowercase dtype": _st({"a": _t("u8", [1], 0, 1)}, b"x"),
        "F4 odd count": _st({"a": _t("F4", [3], 0, 2)}, b"xy"),
        "F4 even ok": _st({"a": _t("F4", [4], 0, 2)}, b"xy"),
        "F6 ok": _st({"a": _t("F6_E3M2", [4], 0, 3)}, b"xyz"),
        "scalar ok": _st({"a": _t("F32", [], 0, 4)}, b"xyzw"),
        "zero-size ok": _st({"z": _t("U8", [0, 7], 0, 0), "a": _t("U8", [1], 0, 1)}, b"x"),
        "shape overflow": _st({"a": _t("F32", [2**64 - 1, 2], 0, 8)}, b"x" * 8),
        "negative dim": _st({"a": _t("U8", [-1], 0, 1)}, b"x"),
        "float dim": _st(b'{"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}', b"x"),
        "bool dim": _st(b'{"a":{"dtype":"U8","shape":[true],"data_offsets":[0,1]}}', b"x"),
        "three offsets": _st(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}}', b"x"),
        "missing shape": _st(b'{"a":{"dtype":"U8","data_offsets":[0,1]}}', b"x"),
        "tensor not object": _st(b'{"a":5}'),
        "NaN in header": _st(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":NaN}}', b"x"),
        "lone surrogate": _st(b'{"\\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x"),
        "duplicate __metadata__": _st(b'{"__metadata__":{},"__metadata__":{}}'),
        "trailing json chars": _st(b'{} x'),
        "leading space ok": _st(b'  {}'),
        "padded ok": _st(b'{}      '),
        "empty header": _st(b""),
        "HTML named .safetensors": b"<!DOCTYPE html><html><body>Please log in</body></html>",
        "JSON error body": b'{"error":"Unauthorized","message":"log in"}',
        "zero bytes": b"",
        "7 bytes": b"\x02\0\0\0\0\0\0",
        "8 bytes": struct.pack("<Q", 0),
    }


def _oracle(path: Path) -> bool:
    try:
        with safetensors.safe_open(str(path), framework="numpy") as f:
            for key in f.keys():
                f.get_slice(key)
        return True
    except Exception:  # noqa: BLE001 - any refusal by the reference reader is a "reject" verdict
        return False


def test_every_hostile_verdict_agrees_with_the_reference_reader(tmp_path: Path) -> None:
    # Given a corpus of hostile and valid files written to disk
    disagreements = []
    for name, data in _corpus(tmp_path).items():
        path = tmp_path / f"{name.replace(' ', '_')}.safetensors"
        path.write_bytes(data)
        # When both our validator and the reference reader judge it
        ours, reason = validate_safetensors(path)
        theirs = _oracle(path)
        # Then they agree, and every rejection says why
        if ours != theirs:
            disagreements.append((name, ours, theirs, reason))
        assert ours or reason
    assert disagreements == []


def test_expected_verdicts_are_what_the_issue_names(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    accepted = set()
    for name, data in corpus.items():
        path = tmp_path / "x.safetensors"
        path.write_bytes(data)
        if validate_safetensors(path)[0]:
            accepted.add(name)
    assert accepted == {n for n in corpus if n == "good" or n.endswith(" ok")}


def test_giant_declared_header_uses_bounded_memory(tmp_path: Path) -> None:
    # Given files that declare huge headers (beyond the cap, and just under it but past the file's end)
    paths = []
    for i, n in enumerate((2**63, 100_000_001, 99_999_999)):
        p = tmp_path / f"giant{i}.safetensors"
        p.write_bytes(_st(b"{" + b" " * 100, n=n))
        paths.append(p)
    # When they are validated
    tracemalloc.start()
    verdicts = [validate_safetensors(p)[0] for p in paths]
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Then each is refused without allocating anything like the declared size
    assert verdicts == [False, False, False]
    assert peak < 2 * 1024 * 1024


def test_metadata_is_read_from_the_header_only(tmp_path: Path) -> None:
    p = tmp_path / "m.safetensors"
    p.write_bytes(_good_bytes(tmp_path))
    assert read_safetensors_metadata(p) == {"ss_output_name": "x"}
    p.write_bytes(b"<html>")
    assert read_safetensors_metadata(p) == {}
    p.write_bytes(_st({"__metadata__": {"k": "v"}}, n=None))
    assert read_safetensors_metadata(p, cap_bytes=4) == {}


@pytest.mark.parametrize("head,kind", [
    (b"", "empty"),
    (b"GGUF\x03\0\0\0", "gguf"),
    (b"PK\x03\x04rest", "zip"),
    (b"\x80\x02\x8a\x0a", "pickle"),
    (b"\x80\x05\x95", "pickle"),
    (_st(b'{"a":1}'), "safetensors"),
    (b"  <!DOCTYPE html>", "html"),
    (b"\xef\xbb\xbf<html>", "html"),
    (b'{"error": "x"}', "json"),
    (b"[1,2]", "json"),
    (b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09", "unknown"),
    (_st(b'{"a":1}', n=200_000_000), "unknown"),
])
def test_sniff(head: bytes, kind: str) -> None:
    assert sniff(head) == kind


def test_check_model_bytes_refuses_html_and_json_only(tmp_path: Path) -> None:
    for body in (b"<!doctype html><title>Login</title>", b'{"error":"Unauthorized"}'):
        with pytest.raises(DepotError) as info:
            check_model_bytes(body, "lora.safetensors")
        assert info.value.code == "html_instead_of_model"
        assert "lora.safetensors" in info.value.message
    check_model_bytes(_good_bytes(tmp_path)[:64], "lora.safetensors")
    check_model_bytes(b"PK\x03\x04", "model.ckpt")


def test_pickle_and_zip_checks_never_unpickle(tmp_path: Path) -> None:
    # Given a plain pickle whose loading would have a side effect, a truncated one, a torch-style zip, and a zip
    # without data.pkl
    marker = tmp_path / "pwned"
    evil = b"\x80\x04cos\nsystem\n(X" + f"touch {marker}".encode() + b"\ntR."
    (tmp_path / "evil.pkl").write_bytes(evil)
    (tmp_path / "trunc.pkl").write_bytes(pickle.dumps({"a": list(range(100))}, protocol=4)[:-5])
    with zipfile.ZipFile(tmp_path / "model.ckpt", "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"w": 1}, protocol=2))
        zf.writestr("archive/version", "3\n")
    with zipfile.ZipFile(tmp_path / "other.ckpt", "w") as zf:
        zf.writestr("readme.txt", "hi")
    (tmp_path / "broken.ckpt").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    # Then the verdicts come from the bytes alone
    assert pickle_check(tmp_path / "evil.pkl") == (True, None)
    assert not marker.exists()
    assert pickle_check(tmp_path / "trunc.pkl")[0] is False
    assert pickle_check(tmp_path / "model.ckpt") == (True, None)
    assert "data.pkl" in pickle_check(tmp_path / "other.ckpt")[1]
    assert pickle_check(tmp_path / "broken.ckpt")[0] is False


def test_gguf_and_validate_file(tmp_path: Path) -> None:
    good = b"GGUF" + struct.pack("<IQQ", 3, 1, 2) + b"\0" * 64
    (tmp_path / "m.gguf").write_bytes(good)
    (tmp_path / "bad.gguf").write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**40, 2))
    (tmp_path / "v9.gguf").write_bytes(b"GGUF" + struct.pack("<IQQ", 9, 1, 1))
    assert gguf_check(tmp_path / "m.gguf") == (True, None)
    assert gguf_check(tmp_path / "bad.gguf")[0] is False
    assert "version 9" in gguf_check(tmp_path / "v9.gguf")[1]
    (tmp_path / "page.safetensors").write_bytes(b"<html>login</html>")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "not.gguf").write_bytes(b"PK\x03\x04")
    (tmp_path / "ok.safetensors").write_bytes(_good_bytes(tmp_path))
    (tmp_path / "raw.onnx").write_bytes(b"\x08\x07\x12\x04" + b"\0" * 100)
    assert validate_file(tmp_path / "page.safetensors")[0] == "html"
    assert "empty" in validate_file(tmp_path / "empty.ckpt")[1]
    assert validate_file(tmp_path / "not.gguf")[1]
    assert validate_file(tmp_path / "ok.safetensors") == ("safetensors", None)
    assert validate_file(tmp_path / "raw.onnx") == ("unknown", None)
    assert validate_file(tmp_path / "m.gguf") == ("gguf", None)
