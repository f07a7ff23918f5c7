"""Upstream API keys: stored server-side with mode 0600, shown only masked, validated, cleared with null."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from shared.upstream.keystore import KeyStore, mask


def test_mask_shows_only_the_ends():
    assert mask("abcd1234efgh5678wxyz") == "abcd****wxyz"
    assert mask("short") == "****"
    assert mask(None) is None


def test_put_and_get_keys_over_the_api_never_return_the_value(client, settings):
    # Given no keys, When a Civitai key is set
    assert client.get("/api/v1/settings/keys").json == {"civitai": None, "huggingface": None}
    resp = client.put("/api/v1/settings/keys/civitai", json={"value": "abcd-secret-middle-wxyz"})
    # Then only the masked value comes back, everywhere
    assert resp.status_code == 200 and resp.json["value"] == "abcd****wxyz"
    body = client.get("/api/v1/settings/keys").json
    assert body == {"civitai": "abcd****wxyz", "huggingface": None}
    assert "secret" not in json.dumps(body)
    # And the file on disk is private to the server's user and holds the real key
    path = Path(settings.keys_file)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert KeyStore.from_settings(settings).get("civitai") == "abcd-secret-middle-wxyz"
    # And null clears it
    assert client.put("/api/v1/settings/keys/civitai", json={"value": None}).json["value"] is None
    assert KeyStore.from_settings(settings).get("civitai") is None


def test_bad_key_requests_are_400(client):
    assert client.put("/api/v1/settings/keys/github", json={"value": "x"}).status_code == 400
    assert client.put("/api/v1/settings/keys/civitai", json={"value": "has spaces in it"}).status_code == 400
    assert client.put("/api/v1/settings/keys/civitai", json={"value": 12}).status_code == 400
    resp = client.put("/api/v1/settings/keys/civitai", data="nope", content_type="application/json")
    assert resp.status_code == 400 and resp.json["error"]["code"] == "invalid_request"
