"""Links and folders as people type them: a link pasted without its scheme works, a folder named in the singular
(or by ComfyUI's old name) is answered with the folder meant, and a link to a web page is refused as a web page,
not for its name."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.upstream.urls import normalise_url
from tests.download_support import safetensors_bytes


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url})
    return settings_env


@pytest.mark.parametrize("typed,meant", [
    ("civitai.com/models/1001", "https://civitai.com/models/1001"),
    ("  huggingface.co/org/repo/resolve/main/m.safetensors ", "https://huggingface.co/org/repo/resolve/main/m.safetensors"),
    ("example.com:8080/f.safetensors?x=1", "https://example.com:8080/f.safetensors?x=1"),
    ("http://civitai.com/models/1", "http://civitai.com/models/1"),
    ("not a link", "not a link"),
    ("localhost/x", "localhost/x"),
    ("/etc/passwd", "/etc/passwd"),
])
def test_a_bare_host_gets_https(typed: str, meant: str) -> None:
    assert normalise_url(typed) == meant


def test_a_civitai_link_without_its_scheme_is_downloaded(client: Any, upstream: Any) -> None:
    upstream.add_civitai_model(7, "Ink Lines", "LORA", versions=[{
        "id": 70, "name": "v1", "files": [{"id": 700, "name": "ink.safetensors", "data": safetensors_bytes(4096)}]}])
    bare = upstream.url.split("://", 1)[1] + "/models/7"
    resp = client.post("/api/v1/downloads", json={"url": bare})
    assert resp.status_code == 202, resp.json
    assert resp.json["params"]["url"] == f"https://{bare}"
    assert resp.json["params"]["plan"]["filename"] == "ink.safetensors"


@pytest.mark.parametrize("typed,meant", [("lora", "loras"), ("Checkpoint", "checkpoints"), ("unet", "diffusion_models"),
                                         ("vaes", "vae"), ("text_encoder", "text_encoders")])
def test_a_wrong_folder_names_the_one_meant_and_lists_them(client: Any, upstream: Any, typed: str, meant: str) -> None:
    url = upstream.add_direct("/files/m.safetensors", safetensors_bytes(4096))
    resp = client.post("/api/v1/downloads", json={"url": url, "folder": typed})
    assert resp.status_code == 400
    message = resp.json["error"]["message"]
    assert f"did you mean {meant!r}?" in message and "loras, " in message
    assert message.count("No model folder") == 1  # said once, not once per layer it passed


def test_an_unknown_folder_lists_the_folders_without_a_guess(client: Any) -> None:
    resp = client.get("/api/v1/models", query_string={"folder": "zzzz"})
    assert resp.status_code == 400
    assert "did you mean" not in resp.json["error"]["message"]
    assert "checkpoints" in resp.json["error"]["message"]


def test_a_web_page_is_refused_as_a_web_page(client: Any, upstream: Any) -> None:
    # Named like a model, served as a page: the name must not be what decides
    for path in ("/gallery/model-page", "/gallery/looks-like.safetensors"):
        url = upstream.add_direct(path, b"<!doctype html><title>x</title>", content_type="text/html; charset=utf-8")
        resp = client.post("/api/v1/downloads", json={"url": url})
        assert resp.status_code == 400, resp.json
        assert resp.json["error"]["code"] == "html_instead_of_model"
        assert "is a web page (text/html)" in resp.json["error"]["message"]
        assert urlsplit(url).path in resp.json["error"]["message"]
    assert client.get("/api/v1/tasks").json["items"] == []
