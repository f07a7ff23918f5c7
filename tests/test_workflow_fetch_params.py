"""What a workflow fetch asks the downloader for: the file lands where the workflow looks, and its bytes are checked
against the fullest hash known (the workflow's SHA256, else the one its Civitai source lists for a short hash)."""
from __future__ import annotations

from shared.workflows.fetch import download_params
from shared.workflows.refs import Reference, Source

SHA_A = "a" * 64
SHA_B = "B" * 64


def ref(**kw: object) -> Reference:
    base: dict[str, object] = {"name": "style/ink.safetensors", "folder": "loras", "node_type": "LoraLoader",
                               "state": "missing", "relpath": "style/ink.safetensors"}
    base.update(kw)
    return Reference(**base)  # type: ignore[arg-type]


def test_the_workflows_sha256_wins_over_the_sources() -> None:
    params = download_params(ref(expected_hash=SHA_A, hash_type="SHA256",
                                 source=Source("https://h/f", "workflow", sha256=SHA_B)))
    assert params == {"url": "https://h/f", "folder": "loras", "filename": "ink.safetensors",
                      "subfolder": "style", "sha256": SHA_A}


def test_a_short_hash_is_checked_through_the_civitai_sources_sha256() -> None:
    params = download_params(ref(expected_hash="0123456789", hash_type="AutoV2",
                                 source=Source("https://civitai/api/download/models/9", "civitai", sha256=SHA_B)))
    assert params["sha256"] == SHA_B.lower()


def test_no_full_hash_anywhere_means_no_check_is_claimed() -> None:
    params = download_params(ref(relpath=None, name="x.safetensors",
                                 source=Source("https://h/x.safetensors", "workflow", filename="x.safetensors")))
    assert "sha256" not in params and params["filename"] == "x.safetensors" and "subfolder" not in params
