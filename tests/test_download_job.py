"""The download job against the fake upstream over real loopback HTTP and real Redis: each source ends with the
exact bytes, sidecar and preview; each upstream fault ends correctly; nothing but a verified file ever appears
under a model name. ``run_download`` is called directly here (the worker wiring is in test_download_e2e.py)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from shared.config import load_settings
from shared.downloads.job import run_download
from shared.errors import DepotError
from shared.upstream.keystore import KeyStore
from tests.download_support import job_context, jpeg_bytes, model_files, safetensors_bytes

SIZE = 3 * 1024 * 1024 + 123


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url, "HF_ENDPOINT": upstream.url, "DEPOT_STALL_S": "1",
                         "DEPOT_CHUNK_BYTES": str(256 * 1024)})
    return settings_env


def _lora(upstream, data: bytes, **version) -> None:  # type: ignore[no-untyped-def]
    upstream.add_civitai_model(100, "Paper Cut Style", "LORA", creator="alice", description="<p>Paper art.</p>",
                               versions=[{"id": 200, "name": "v2", "baseModel": "SDXL 1.0",
                                          "trainedWords": ["papercut"], **version,
                                          "files": [{"id": 300, "name": "papercut.safetensors", "data": data}],
                                          "images": [{"data": jpeg_bytes(), "nsfwLevel": 4},
                                                     {"data": jpeg_bytes("blue"), "nsfwLevel": 1}]}])


def _run(settings, url: str, **params):  # type: ignore[no-untyped-def]
    ctx, _services = job_context(settings, {"url": url, **params})
    return run_download(ctx, _services)


def _fails(settings, url: str, code: str, **params) -> DepotError:  # type: ignore[no-untyped-def]
    with pytest.raises(DepotError) as info:
        _run(settings, url, **params)
    assert info.value.code == code, info.value.message
    return info.value


def test_civitai_model_page_publishes_exact_bytes_sidecar_preview_and_index(settings, upstream):
    # Given a LoRA on the fake Civitai with two preview images, the first above the NSFW ceiling
    data = safetensors_bytes(SIZE)
    _lora(upstream, data)
    # When the model page is downloaded
    result = _run(settings, f"{upstream.url}/models/100/paper-cut-style")
    # Then the exact bytes are in loras/ under Civitai's file name, with matching hashes
    target = Path(settings.store) / "loras" / "papercut.safetensors"
    assert target.read_bytes() == data
    assert result["already_present"] is False
    assert result["hashes"]["SHA256"] == hashlib.sha256(data).hexdigest().upper()
    assert result["hashes"]["CRC32"] == upstream.file_hashes(300)["CRC32"]
    assert result["model"]["folder"] == "loras" and result["model"]["relpath"] == "papercut.safetensors"
    # And the sidecar and the PG preview (the blue one) sit beside it
    md = (target.parent / "papercut.md").read_text()
    assert "author: alice" in md and "baseModel: SDXL 1.0" in md and "papercut" in md and "# Paper Cut Style" in md
    from PIL import Image
    with Image.open(target.parent / "papercut.webp") as img:
        assert img.getpixel((5, 5))[2] > 200  # blue, not the red R-rated image
    assert not [f for f in model_files(settings.store) if f.endswith(".part")]


def test_hugging_face_lfs_file_is_verified_against_linked_etag(settings, upstream):
    data = safetensors_bytes(SIZE, seed=7)
    upstream.add_hf_file("acme/vae-x", "vae/diffusion_pytorch_model.safetensors", data)
    result = _run(settings, f"{upstream.url}/acme/vae-x/blob/main/vae/diffusion_pytorch_model.safetensors")
    target = Path(settings.store) / "vae" / "diffusion_pytorch_model.safetensors"
    assert target.read_bytes() == data
    assert result["hashes"]["SHA256"].lower() == hashlib.sha256(data).hexdigest()
    md = (target.parent / "diffusion_pytorch_model.md").read_text()
    assert "website: HuggingFace" in md and "author: acme" in md and "modelPage:" in md


def test_direct_link_lands_in_the_chosen_folder_with_a_direct_link_sidecar(settings, upstream):
    data = b"GGUF" + bytes(range(256)) * 4000
    url = upstream.add_direct("/files/tiny-q4.gguf", data)
    result = _run(settings, url, folder="checkpoints")
    target = Path(settings.store) / "checkpoints" / "tiny-q4.gguf"
    assert target.read_bytes() == data and result["model"]["name"] == "tiny-q4"
    md = (target.parent / "tiny-q4.md").read_text()
    assert "website: Direct Link" in md and f"modelPage: {url}" in md


def test_connection_dropped_midway_resumes_with_range(settings, upstream):
    data = safetensors_bytes(SIZE)
    _lora(upstream, data)
    upstream.fault("civitai:file:300", "drop_after", bytes=SIZE // 2)
    _run(settings, f"{upstream.url}/api/download/models/200")
    assert (Path(settings.store) / "loras" / "papercut.safetensors").read_bytes() == data
    # Only the missing half was fetched again (no restart from zero)
    assert upstream.bytes_served("civitai:file:300") <= len(data) + settings.chunk_bytes


def test_server_ignoring_range_restarts_from_zero_and_still_publishes_exact_bytes(settings, upstream):
    data = safetensors_bytes(SIZE)
    url = upstream.add_direct("/m/model.safetensors", data)
    upstream.fault("/m/model.safetensors", "drop_after", bytes=SIZE // 3)
    upstream.fault("/m/model.safetensors", "ignore_range", times=2)  # the first use is on the Range-less GET
    _run(settings, url)
    assert (Path(settings.store) / "checkpoints" / "model.safetensors").read_bytes() == data
    assert upstream.bytes_served("/m/model.safetensors") >= SIZE + SIZE // 3


def test_stalled_transfer_reconnects(settings, upstream):
    data = safetensors_bytes(SIZE)
    url = upstream.add_direct("/m/stall.safetensors", data)
    upstream.fault("/m/stall.safetensors", "stall", seconds=4, after=SIZE // 4)
    _run(settings, url)
    assert (Path(settings.store) / "checkpoints" / "stall.safetensors").read_bytes() == data
    assert upstream.requests("/m/stall.safetensors") >= 2


def test_expired_storage_link_gets_a_fresh_one_from_civitai(settings, upstream):
    data = safetensors_bytes(SIZE)
    _lora(upstream, data)
    upstream.fault("civitai:file:300", "drop_after", bytes=SIZE // 2)
    upstream.fault("civitai:file:300", "expired", times=1)
    # The first storage request drops halfway; the cached link is then refused as expired
    upstream.fault("civitai:file:300", "expired", times=0)
    _run(settings, f"{upstream.url}/models/100")
    assert (Path(settings.store) / "loras" / "papercut.safetensors").read_bytes() == data
    assert upstream.requests("/api/download/models/200") >= 2


@pytest.mark.parametrize("kind", ["html", "json"])
def test_html_or_json_body_with_200_is_never_saved(settings, upstream, kind):
    _lora(upstream, safetensors_bytes(SIZE))
    upstream.fault("civitai:file:300", kind)
    _fails(settings, f"{upstream.url}/models/100", "html_instead_of_model")
    assert model_files(Path(settings.store) / "loras") == []


def test_login_required_then_key_is_sent_only_to_civitai(settings, upstream):
    data = safetensors_bytes(SIZE)
    _lora(upstream, data, require_auth=True)
    err = _fails(settings, f"{upstream.url}/models/100", "login_required")
    assert "key" in err.message.lower()
    upstream.civitai_tokens.add("civitai-secret-token-1234")
    KeyStore.from_settings(settings).set("civitai", "civitai-secret-token-1234")
    upstream.reset_counts()
    _run(settings, f"{upstream.url}/models/100")
    assert (Path(settings.store) / "loras" / "papercut.safetensors").read_bytes() == data
    assert upstream.auth_seen("/api/download/models/200") == ["Bearer civitai-secret-token-1234"]
    # The signed storage link is on another host: the key is never forwarded there
    assert upstream.auth_seen("civitai:file:300") == [None]


@pytest.mark.parametrize("flag,code", [("early_access", "early_access"), ("archived", "archived")])
def test_civitai_refusals_map_to_their_codes(settings, upstream, flag, code):
    _lora(upstream, safetensors_bytes(1024), **{flag: True})
    _fails(settings, f"{upstream.url}/models/100", code)


def test_download_endpoint_archived_410_and_not_found(settings, upstream):
    _lora(upstream, safetensors_bytes(1024))
    upstream.fault("/api/download/models/200", 410)
    _fails(settings, f"{upstream.url}/models/100", "archived")
    _fails(settings, f"{upstream.url}/models/999", "not_found")


def test_rate_limit_with_retry_after_and_5xx_are_retried(settings, upstream):
    data = safetensors_bytes(SIZE)
    _lora(upstream, data)
    upstream.fault("/api/download/models/200", 429, retry_after=1)
    upstream.fault("/api/download/models/200", 500, times=2)
    _run(settings, f"{upstream.url}/models/100")
    assert (Path(settings.store) / "loras" / "papercut.safetensors").read_bytes() == data
    assert upstream.requests("/api/download/models/200") == 4


def test_rate_limit_that_never_ends_fails_as_rate_limited(settings, upstream):
    _lora(upstream, safetensors_bytes(1024))
    upstream.fault("/api/download/models/200", 429, times=None, retry_after=0)
    settings = load_settings({**_env(settings), "DEPOT_DOWNLOAD_RETRIES": "2"})
    _fails(settings, f"{upstream.url}/models/100", "rate_limited")


def _env(settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"DEPOT_REDIS_URL": settings.redis_url, "DEPOT_STORE": str(settings.store),
            "DEPOT_VAR_DIR": str(settings.var_dir), "DEPOT_HOST": settings.host, "DEPOT_ALLOW_PRIVATE_URLS": "1",
            "DEPOT_CIVITAI_URL": settings.civitai_url, "HF_ENDPOINT": settings.hf_endpoint}


def test_gated_hugging_face_repo(settings, upstream):
    upstream.add_hf_file("meta/gated", "model.safetensors", safetensors_bytes(1024), gated=True)
    err = _fails(settings, f"{upstream.url}/meta/gated/resolve/main/model.safetensors", "gated_repo")
    assert "request access" in err.message.lower()
    KeyStore.from_settings(settings).set("huggingface", "hf_not_authorized_0000")
    _fails(settings, f"{upstream.url}/meta/gated/resolve/main/model.safetensors", "gated_repo")


def test_wrong_expected_hash_fails_and_publishes_nothing(settings, upstream):
    url = upstream.add_direct("/m/x.safetensors", safetensors_bytes(SIZE))
    _fails(settings, url, "hash_mismatch", sha256="ab" * 32)
    left = model_files(settings.store)
    assert left == [] or all(not f.startswith("checkpoints/x") for f in left)
    assert not (Path(settings.store) / "checkpoints" / "x.safetensors").exists()
    assert [f for f in model_files(settings.store) if "x.safetensors" in f] == []


def test_same_file_already_there_is_already_present_and_different_file_is_conflict(settings, upstream):
    data = safetensors_bytes(SIZE)
    _lora(upstream, data)
    _run(settings, f"{upstream.url}/models/100")
    upstream.reset_counts()
    again = _run(settings, f"{upstream.url}/models/100")
    assert again["already_present"] is True and upstream.bytes_served("civitai:file:300") == 0
    target = Path(settings.store) / "loras" / "papercut.safetensors"
    other = upstream.add_direct("/other/papercut.safetensors", safetensors_bytes(2048, seed=9))
    _fails(settings, other, "conflict", folder="loras")
    assert target.read_bytes() == data
    _run(settings, other, folder="loras", overwrite=True)
    assert target.read_bytes() == safetensors_bytes(2048, seed=9)


def test_private_address_refused_when_not_allowed(settings, upstream):
    url = upstream.add_direct("/m/y.safetensors", safetensors_bytes(1024))
    strict = load_settings({**_env(settings), "DEPOT_ALLOW_PRIVATE_URLS": "0"})
    _fails(strict, url, "private_address_refused")


def test_invalid_safetensors_is_refused(settings, upstream):
    bad = safetensors_bytes(4096)[:-100]
    url = upstream.add_direct("/m/trunc.safetensors", bad)
    _fails(settings, url, "invalid_model")
    assert not (Path(settings.store) / "checkpoints" / "trunc.safetensors").exists()
