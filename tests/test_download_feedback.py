"""What a person sees of a download while it runs, through the REST API, the CLI and a real worker subprocess:
progress comes every second even on a slow link with big chunks, a cancel takes effect long before the file is
done and the task shows where it stopped, and each retry is written on the task (and printed by ``--wait``)
with its reason; a host that never answers fails in seconds, not minutes."""
from __future__ import annotations

from typing import Any

import pytest

from tests.download_support import safetensors_bytes
from tests.support import free_port, wait_for

MIB = 1024 * 1024


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url, "DEPOT_CHUNK_BYTES": str(4 * MIB),
                         "DEPOT_UNREACHABLE_S": "3", "DEPOT_STALL_S": "5"})
    return settings_env


def _task(client: Any, task_id: str) -> dict[str, Any]:
    return client.get(f"/api/v1/tasks/{task_id}").json


def _logs(client: Any, task_id: str) -> list[str]:
    events = client.get(f"/api/v1/tasks/{task_id}/events").json["events"]
    return [e["task"].get("message", "") for e in events if e["type"] == "log"]


def test_a_slow_link_reports_before_a_chunk_fills_and_a_cancel_stops_it_midway(client: Any, workers: Any,
                                                                               upstream: Any) -> None:
    # Given a 6 MiB file at 512 KiB/s, read in 4 MiB chunks (8 s per chunk)
    data = safetensors_bytes(6 * MIB, seed=3)
    url = upstream.add_direct("/files/slow.safetensors", data)
    upstream.fault("/files/slow.safetensors", "slow", bytes_per_s=512 * 1024)
    workers(queues=["downloads"])
    task_id = client.post("/api/v1/downloads", json={"url": url}).json["id"]
    # Then progress shows bytes well before the first chunk is full
    first = wait_for(lambda: _task(client, task_id)["progress"]["done"], timeout=30, what="the first progress")
    assert 0 < first < 4 * MIB
    # When the user cancels
    assert client.post(f"/api/v1/tasks/{task_id}/cancel").status_code == 200
    done = wait_for(lambda: (t := _task(client, task_id))["state"] == "cancelled" and t, timeout=30,
                    what="the cancel to take effect")
    # Then it stopped where it was, not at the end of a chunk, and says so
    assert 0 < done["progress"]["done"] < 4 * MIB
    assert done["progress"]["total"] == len(data)


def test_retries_are_written_on_the_task_and_a_host_never_reached_fails_soon(served: str, workers: Any,
                                                                             client: Any, capsys: Any) -> None:
    workers(queues=["downloads"])
    url = f"http://127.0.0.1:{free_port()}/m.safetensors"
    from cli import main
    # When the CLI downloads from a host that refuses every connection, and waits
    assert main(["download", url, "--wait"]) == 1
    err = capsys.readouterr().err
    # Then each retry was printed with its reason as it happened, and the download failed
    assert "retry 1/8 in " in err and "connection refused" in err
    assert "download failed: upstream_unavailable" in err
    task = client.get("/api/v1/tasks", query_string={"kind": "download"}).json["items"][0]
    assert task["state"] == "failed" and "connection refused" in task["error"]["message"]
    retries = [m for m in _logs(client, task["id"]) if m.startswith("retry ")]
    assert retries and all(m.endswith(": connection refused") for m in retries)
    # (DEPOT_UNREACHABLE_S=3: a few retries, not the eight that minutes of backoff would allow)
    assert len(retries) < 8
