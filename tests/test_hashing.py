"""Hash vectors from the reference (Civitai's scanner test vector "hello world"), AutoV1/AutoV3 rules, and the
threaded MultiHasher's behaviour on errors and cancellation."""
from __future__ import annotations

import hashlib
import os
import struct
import threading
import zlib

import numpy as np
import pytest
from safetensors.numpy import save_file

from shared.media.hashing import ALL, SHA256_ONLY, MultiHasher, hash_file

HELLO = b"hello world"


def test_hello_world_vectors_match_civitai() -> None:
    # Given the scanner's test vector
    with MultiHasher() as h:
        h.update(HELLO)
        d = h.digests()
    # Then every applicable hash is upper-case hex as Civitai stores it
    assert d["SHA256"] == "B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9"
    assert d["AutoV2"] == "B94D27B993"
    assert d["CRC32"] == "85114A0D"  # little-endian bytes of zlib's 0D4A1185
    assert d["BLAKE3"].startswith("D74981EF") and d["BLAKE3"].endswith("9E24") and len(d["BLAKE3"]) == 64
    # A1111's legacy hash of a short file hashes the (empty) block at 1 MiB
    assert d["AutoV1"] == "E3B0C442"
    # Not a safetensors stream: AutoV3 does not apply and is omitted
    assert "AutoV3" not in d


def test_autov1_reads_64k_at_one_mib_across_chunk_boundaries(tmp_path) -> None:
    # Given a 6 MiB file with distinct bytes (big enough for the threaded path)
    data = bytes(range(256)) * (6 * 4096)
    path = tmp_path / "m.ckpt"
    path.write_bytes(data)
    # When hashed with an odd chunk size that splits the AutoV1 window
    d = hash_file(path, chunk=777_777)
    # Then AutoV1 is the legacy rule and SHA256/CRC32 match the standard library
    assert d["AutoV1"] == hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8].upper()
    assert d["SHA256"] == hashlib.sha256(data).hexdigest().upper()
    assert d["CRC32"] == struct.pack("<I", zlib.crc32(data)).hex().upper()


def test_autov3_on_a_real_safetensors_file(tmp_path) -> None:
    # Given a file written by the safetensors package, with metadata
    path = tmp_path / "lora.safetensors"
    save_file({"w": np.arange(4096, dtype=np.float32), "b": np.ones(7, dtype=np.float16)}, str(path),
              metadata={"ss_network_dim": "16"})
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    expected = hashlib.sha256(raw[8 + n:]).hexdigest()[:12].upper()
    # When streamed in tiny chunks (the header decision must survive chunking) and hashed as a file
    with MultiHasher() as streamed:
        for i in range(0, len(raw), 5):
            streamed.update(raw[i:i + 5])
    d = hash_file(path)
    # Then AutoV3 is the hash of the tensor data only, both ways
    assert d["AutoV3"] == expected and streamed.digests() == d
    # And editing the metadata does not change AutoV3 but changes SHA256
    path2 = tmp_path / "lora2.safetensors"
    save_file({"w": np.arange(4096, dtype=np.float32), "b": np.ones(7, dtype=np.float16)}, str(path2),
              metadata={"ss_network_dim": "32", "note": "edited"})
    d2 = hash_file(path2)
    assert d2["AutoV3"] == d["AutoV3"]
    assert d2["SHA256"] != d["SHA256"]


def test_sha256_only_returns_just_that(tmp_path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(HELLO)
    assert hash_file(path, SHA256_ONLY) == {"SHA256": hashlib.sha256(HELLO).hexdigest().upper()}


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError):
        MultiHasher(["MD5"])


def test_progress_reports_bytes_and_can_cancel_without_leaking_threads(tmp_path) -> None:
    # Given a 5 MiB file and a progress callback that cancels after the second chunk
    path = tmp_path / "big.bin"
    path.write_bytes(b"\x01" * (5 * 1024 * 1024))
    seen: list[int] = []

    def progress(done: int) -> None:
        seen.append(done)
        if len(seen) == 2:
            raise KeyboardInterrupt("cancel")

    before = {t.name for t in threading.enumerate()}
    # When the callback raises
    with pytest.raises(KeyboardInterrupt):
        hash_file(path, progress=progress, chunk=1024 * 1024)
    # Then progress was in bytes and no hash thread survives
    assert seen == [1024 * 1024, 2 * 1024 * 1024]
    leftover = {t.name for t in threading.enumerate() if t.name.startswith("hash-")} - before
    assert not leftover


def test_digests_is_repeatable_and_update_after_is_refused() -> None:
    h = MultiHasher(ALL)
    h.update(bytearray(HELLO))
    assert h.digests() == h.digests()
    with pytest.raises(RuntimeError):
        h.update(b"more")


def test_small_files_are_hashed_without_threads_and_agree_with_the_threaded_path(tmp_path, monkeypatch) -> None:
    # Given a small safetensors file and a small file that is not safetensors
    st = tmp_path / "small.safetensors"
    save_file({"w": np.arange(64, dtype=np.float32)}, str(st))
    other = tmp_path / "small.bin"
    other.write_bytes(os.urandom(300_000))
    for path in (st, other):
        raw = path.read_bytes()
        with MultiHasher() as threaded:
            for i in range(0, len(raw), 4096):
                threaded.update(raw[i:i + 4096])
        started: list[str] = []
        real_start = threading.Thread.start
        with monkeypatch.context() as m:
            m.setattr(threading.Thread, "start",
                      lambda self, started=started, real_start=real_start: (started.append(self.name),
                                                                            real_start(self))[1])
            # When the file is hashed
            d = hash_file(path)
        # Then no hash thread was started and the digests equal the threaded ones
        assert not [n for n in started if n.startswith("hash-")]
        assert d == threaded.digests() and d["SHA256"] == hashlib.sha256(raw).hexdigest().upper()
    assert "AutoV3" in hash_file(st) and "AutoV3" not in hash_file(other)
