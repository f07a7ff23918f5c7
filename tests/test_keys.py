"""API keys as a person meets them: ``depot keys set`` and the Settings view save a key only once the service has
accepted it (Civitai ``/api/v1/me``, Hugging Face ``/api/whoami-v2`` on the fake upstream), a rejected key is said
to be rejected and the one before it stays, an unreachable service saves it unchecked and says so; a download
refused without a key says how to add one, and refused with a key says that key was refused."""
from __future__ import annotations

from typing import Any

import pytest

from shared.upstream.keystore import KeyStore
from tests.download_support import safetensors_bytes
from tests.support import free_port
from tests.test_download_job import _fails, _lora

GOOD, REVOKED = "civitai-good-key-1234567", "civitai-old-key-7654321"


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url, "HF_ENDPOINT": upstream.url, "DEPOT_STALL_S": "2"})
    return settings_env


def _put(client: Any, name: str, value: str | None) -> Any:
    return client.put(f"/api/v1/settings/keys/{name}", json={"value": value})


def test_a_key_is_checked_before_it_is_saved(client: Any, upstream: Any) -> None:
    upstream.civitai_tokens.add(GOOD)
    upstream.hf_tokens.add("hf_good_token_abcdef")
    ok = _put(client, "civitai", GOOD)
    assert ok.status_code == 200
    assert ok.json["check"] == {"status": "accepted", "message": "Civitai accepted the key."}
    assert ok.json["value"].startswith("civi") and GOOD not in ok.json["value"]
    # A wrong key is refused, and the good one stays
    bad = _put(client, "civitai", "not-a-real-key-000000")
    assert bad.status_code == 400 and bad.json["error"]["code"] == "key_rejected"
    assert "Civitai rejected this key" in bad.json["error"]["message"]
    assert client.get("/api/v1/settings/keys").json["civitai"] == ok.json["value"]
    assert _put(client, "huggingface", "hf_good_token_abcdef").json["check"]["status"] == "accepted"
    assert _put(client, "huggingface", "hf_wrong").json["error"]["code"] == "key_rejected"
    # Clearing needs no check
    assert _put(client, "civitai", None).json == {"name": "civitai", "value": None, "check": None}


def test_an_unreachable_service_saves_the_key_unchecked(settings: Any) -> None:
    from web import create_app
    client = create_app(settings.replace(civitai_url=f"http://127.0.0.1:{free_port()}")).test_client()
    resp = _put(client, "civitai", GOOD)
    assert resp.status_code == 200, resp.json
    assert resp.json["check"]["status"] == "unchecked"
    assert "could not be reached" in resp.json["check"]["message"]
    assert KeyStore.from_settings(settings).get("civitai") == GOOD


def test_the_cli_sets_lists_and_clears_keys(served: str, upstream: Any, capsys: Any) -> None:
    from cli import main
    upstream.civitai_tokens.add(GOOD)
    assert main(["keys", "set", "civitai", GOOD]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("civitai: civi") and "saved" in out and "Civitai accepted the key." in err
    assert main(["keys", "set", "civitai", "wrong-key-000000000"]) == 1
    assert "Civitai rejected this key" in capsys.readouterr().err
    assert main(["keys"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].startswith("civitai") and "civi" in listing[0] and GOOD not in listing[0]
    assert listing[1].split() == ["huggingface", "(not", "set)"]
    assert main(["keys", "clear", "civitai"]) == 0
    assert capsys.readouterr().out == "civitai: cleared\n"
    assert main(["keys"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["civitai", "(not", "set)"]


def test_a_refusal_says_add_a_key_or_that_the_key_was_refused(settings: Any, upstream: Any) -> None:
    _lora(upstream, safetensors_bytes(64 * 1024), require_auth=True)
    url = f"{upstream.url}/models/100"
    # No key: how to add one
    err = _fails(settings, url, "login_required")
    assert "Civitai requires a login for this file" in err.message and "depot keys set civitai" in err.message
    # A key that worked once and was revoked since: that key was refused
    KeyStore.from_settings(settings).set("civitai", REVOKED)
    err = _fails(settings, url, "login_required")
    assert "Civitai refused the API key that is set" in err.message and "requires a login" not in err.message
