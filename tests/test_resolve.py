"""What a pasted URL means: URL parsing for every supported form, and ``GET /resolve`` / ``POST /downloads``
input handling against the fake upstream."""
from __future__ import annotations

import pytest

from shared.config import load_settings
from shared.upstream.urls import parse_source
from tests.download_support import safetensors_bytes

S = load_settings({}, civitai_url="https://civitai.com", hf_endpoint="https://huggingface.co")


@pytest.mark.parametrize("url,kind,expect", [
    ("https://civitai.com/models/4384/dreamshaper", "civitai", {"model_id": 4384, "version_id": None}),
    ("https://civitai.com/models/4384?modelVersionId=128713", "civitai", {"model_id": 4384, "version_id": 128713}),
    ("https://civitai.com/api/download/models/128713?type=Model&format=SafeTensor&fileId=9",
     "civitai", {"version_id": 128713, "query": {"type": "Model", "format": "SafeTensor", "fileId": "9"}}),
    ("https://huggingface.co/org/repo/resolve/main/sub/x.safetensors", "huggingface",
     {"repo": "org/repo", "revision": "main", "path": "sub/x.safetensors"}),
    ("https://huggingface.co/org/repo/blob/v1.0/x.gguf", "huggingface",
     {"repo": "org/repo", "revision": "v1.0", "path": "x.gguf"}),
    ("https://huggingface.co/org/repo", "huggingface", {"repo": "org/repo", "path": None}),
    ("https://huggingface.co/org/repo/tree/main/unet", "huggingface", {"repo": "org/repo", "path": None}),
    ("https://example.org/files/model.safetensors", "direct", {}),
])
def test_parse_source(url, kind, expect):
    src = parse_source(url, S)
    assert src.kind == kind
    for k, v in expect.items():
        assert getattr(src, k) == v


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url, "HF_ENDPOINT": upstream.url})
    return settings_env


def test_resolve_civitai_lists_versions_files_and_suggests_folder(client, upstream):
    upstream.add_civitai_model(5, "Emb", "TextualInversion", versions=[{"id": 50, "files": [
        {"id": 500, "name": "emb.safetensors", "data": safetensors_bytes(64), "primary": True},
        {"id": 501, "name": "emb-neg.safetensors", "type": "Negative", "data": safetensors_bytes(32)}]}])
    body = client.get("/api/v1/resolve", query_string={"url": f"{upstream.url}/models/5"}).json
    assert body["source"] == "civitai" and body["suggested_folder"] == "embeddings"
    assert body["suggested_filename"] == "emb.safetensors" and body["file_id"] == 500
    assert [f["id"] for f in body["files"]] == [500, 501] and body["files"][1]["type"] == "Negative"


def test_resolve_hugging_face_repo_lists_files(client, upstream):
    upstream.add_hf_file("org/pack", "a.safetensors", safetensors_bytes(64))
    upstream.add_hf_file("org/pack", "README.md", b"# hi", lfs=False)
    body = client.get("/api/v1/resolve", query_string={"url": f"{upstream.url}/org/pack"}).json
    assert body["source"] == "huggingface"
    assert {f["path"] for f in body["files"]} == {"a.safetensors", "README.md"}
    assert body["suggested_filename"] == "a.safetensors"


def test_bad_download_requests_are_clear_400s(client, upstream):
    assert client.post("/api/v1/downloads", json={}).json["error"]["code"] == "invalid_request"
    assert client.post("/api/v1/downloads", json={"url": "ftp://x/y"}).status_code == 400
    assert client.get("/api/v1/resolve").status_code == 400
    url = upstream.add_direct("/f/m.safetensors", safetensors_bytes(64))
    bad = [{"url": url, "folder": "configs"}, {"url": url, "folder": "loras", "filename": "../../evil.safetensors"},
           {"url": url, "sha256": "xyz"}, {"url": url, "overwrite": "yes"}, {"url": url, "path_index": 9}]
    for body in bad:
        resp = client.post("/api/v1/downloads", json=body)
        assert resp.status_code == 400, (body, resp.json)
    assert client.post("/api/v1/downloads", json={"url": f"{upstream.url}/models/404"}).status_code == 404
