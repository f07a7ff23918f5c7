"""The repair action submits its download like every other download (``shared/downloads/submit.py``): planned
against the upstream (fake Civitai over loopback) before the task exists, under the artifact's idempotency key,
so a second click gets the live task back, and a recorded source that can no longer give the recorded bytes
back is refused at the door with nothing queued."""
from __future__ import annotations

import hashlib
from typing import Any

import pytest

from shared.config import Settings
from tests.download_support import safetensors_bytes

DATA = safetensors_bytes(4096, seed=3)


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url, "HF_ENDPOINT": upstream.url})
    return settings_env


def _recorded_model(settings: Settings, upstream: Any, sha: str) -> str:
    """A model on disk whose sidecar records its Civitai page and ``sha``; returns its repair URL."""
    upstream.add_civitai_model(7, "Ink Lines", "LORA", versions=[{
        "id": 70, "name": "v1", "files": [{"id": 700, "name": "ink.safetensors", "data": DATA}]}])
    (settings.store / "loras").mkdir(exist_ok=True)
    (settings.store / "loras" / "ink.safetensors").write_bytes(b"corrupted" + DATA[9:])
    (settings.store / "loras" / "ink.md").write_text(
        f"---\nwebsite: Civitai\nmodelPage: {upstream.url}/models/7?modelVersionId=70\n"
        f"hashes:\n  SHA256: {sha}\n---\n")
    return "/api/v1/models/loras/0/ink.safetensors/repair"


def _task_keys(redis: Any) -> list[str]:
    return sorted(k for k in redis.keys("depot:*") if k.startswith(("depot:task", "depot:idem")))


def test_repair_is_planned_before_it_is_queued_and_a_second_click_gets_the_same_task(
        client: Any, settings: Settings, upstream: Any) -> None:
    sha = hashlib.sha256(DATA).hexdigest()
    url = _recorded_model(settings, upstream, sha)
    # When the user asks for a repair twice
    first = client.post(url)
    second = client.post(url)
    # Then one download task carries the plan of the recorded artifact, checked against the recorded hash
    assert first.status_code == 202, first.json
    task = first.json
    assert task["kind"] == "download" and task["params"]["overwrite"] is True
    plan = task["params"]["plan"]
    assert plan["sha256"] == sha and plan["filename"] == "ink.safetensors" and plan["source"] == "civitai"
    # And the second click is answered with the live task rather than a second download over the same file
    assert second.status_code == 202 and second.json["id"] == task["id"]
    # And nothing was downloaded at the door: only the Civitai API was asked
    assert upstream.bytes_served("civitai:file:700") == 0


def test_repair_whose_source_now_publishes_other_bytes_is_refused_with_nothing_queued(
        client: Any, settings: Settings, upstream: Any, redis: Any) -> None:
    # Given a model whose recorded hash is not the one its Civitai page publishes any more
    url = _recorded_model(settings, upstream, "b" * 64)
    # When its repair is asked for
    resp = client.post(url)
    # Then it is a 409 saying why (the client sent nothing to correct), and no task exists
    assert resp.status_code == 409, resp.json
    message = resp.json["error"]["message"]
    assert "cannot be downloaded again" in message and "differs from the one upstream publishes" in message
    assert _task_keys(redis) == []
