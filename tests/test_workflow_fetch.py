"""``POST /api/v1/workflows/fetch`` and ``depot workflow fetch`` end to end: real worker subprocesses (a
download node and the thread-pool workflow node), real HTTP to the fake upstream. The missing models land in the
folder and path the workflow names, with the workflow's SHA256 checked; a hash mismatch fails that download and
the workflow task and saves nothing; three concurrent fetches make one transfer per file; a SIGKILLed fleet
mid-fetch still ends with the workflow task done; a host whose mount lacks a folder is not ready while the other
is; cancelling the workflow task cancels its downloads."""
from __future__ import annotations

import hashlib
import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.download_support import model_files, safetensors_bytes
from tests.support import wait_for
from tests.test_download_e2e import _reap
from tests.workflow_support import comfy_png, node, ui_graph

SIZE = 2 * 1024 * 1024 + 11
ENDED = ("succeeded", "failed", "cancelled")


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url, "HF_ENDPOINT": upstream.url,
                         "DEPOT_CHUNK_BYTES": str(128 * 1024), "DEPOT_STALL_S": "5",
                         "DEPOT_HOST_MOUNTS": "gpu1=/mnt/models,gpu2=/srv/models,gpu2:loras="})
    return settings_env


def fleet(workers: Any, host: str = "gpu1") -> tuple[Any, Any]:
    """A download node and a workflow node on one host, the way ``depot worker`` starts them."""
    return (workers(host=host, queues=["downloads"]),
            workers(host=host, queues=["workflows"], pool="threads", concurrency=4, name="wf"))


def served_files(upstream: Any, *, seed: int = 1) -> dict[str, Any]:
    """Two model files on the fake upstream: a checkpoint and a LoRA (workflow names, bytes, SHA256, URL)."""
    files = {}
    for i, (folder, name) in enumerate((("checkpoints", "base.safetensors"), ("loras", "style/ink.safetensors"))):
        data = safetensors_bytes(SIZE + i, seed=seed + i)
        path = f"/files/{seed}/{name.rsplit('/', 1)[-1]}"
        files[name] = {"folder": folder, "data": data, "sha": hashlib.sha256(data).hexdigest(), "path": path,
                       "url": upstream.add_direct(path, data)}
    return files


def workflow(files: dict[str, Any], *, wrong_hash_for: str | None = None) -> dict[str, Any]:
    """A UI workflow whose loaders name the files, with the ``models`` list ComfyUI writes (url, directory,
    SHA256)."""
    models = [{"name": name, "url": f["url"], "directory": f["folder"], "hash_type": "SHA256",
               "hash": "0" * 64 if name == wrong_hash_for else f["sha"]} for name, f in files.items()]
    return ui_graph([node(1, "CheckpointLoaderSimple", ["base.safetensors"]),
                     node(2, "LoraLoader", ["style/ink.safetensors", 1, 1])], models=models)


def task(client: Any, task_id: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/v1/tasks/{task_id}").get_json()
    return body


def ended(client: Any, task_id: str, timeout: float = 60) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(lambda: (t := task(client, task_id))["state"] in ENDED and t,
                                     timeout=timeout, what=f"task {task_id} to end")
    return found


def fetch(client: Any, wf: dict[str, Any]) -> Any:
    return client.post("/api/v1/workflows/fetch", json={"workflow": wf, "offline": True, "title": "portrait.json"})


def test_fetch_puts_each_file_where_the_workflow_looks_and_readiness_follows_the_mounts(client, workers,
                                                                                         settings, upstream):
    # Given a workflow whose two models the store lacks, and one GPU host's workers
    files = served_files(upstream)
    fleet(workers)
    before = client.post("/api/v1/workflows/resolve", json={"workflow": workflow(files), "offline": True}).get_json()
    assert [r["state"] for r in before["references"]] == ["missing", "missing"]
    assert before["ready"] == {"gpu1": False}
    # When the user fetches it
    resp = fetch(client, workflow(files))
    assert resp.status_code == 202, resp.get_json()
    wf_task = resp.get_json()
    assert wf_task["kind"] == "workflow" and wf_task["queue"] == "workflows"
    assert wf_task["params"]["title"] == "portrait.json" and len(wf_task["params"]["children"]) == 2
    assert wf_task["params"]["skipped"] == []
    # Then the workflow task ends with both downloads, its progress the bytes of both
    done = ended(client, wf_task["id"])
    assert done["state"] == "succeeded", done["error"]
    assert done["progress"]["total"] == sum(len(f["data"]) for f in files.values())
    assert done["progress"]["done"] == done["progress"]["total"]
    assert {(f["folder"], f["relpath"]) for f in done["result"]["children"]} == {
        ("checkpoints", "base.safetensors"), ("loras", "style/ink.safetensors")}
    # And each file sits where the workflow names it, with the bytes the workflow's hash names
    for name, f in files.items():
        assert (Path(settings.store) / f["folder"] / name).read_bytes() == f["data"]
    # And the workflow is ready on gpu1, and not on gpu2 whose mount lacks the loras folder
    after = client.post("/api/v1/workflows/resolve", json={"workflow": workflow(files), "offline": True,
                                                           "hosts": ["gpu1", "gpu2"]}).get_json()
    assert [(r["state"], r["matched_by"]) for r in after["references"]] == [("present", "hash")] * 2
    assert after["ready"] == {"gpu1": True, "gpu2": False}
    # And a second fetch finds nothing to do
    again = fetch(client, workflow(files))
    assert again.status_code == 200 and again.get_json()["ready"] == {"gpu1": True}


def test_a_hash_mismatch_fails_that_download_and_the_workflow_and_saves_nothing(client, workers, settings,
                                                                                 upstream):
    files = served_files(upstream, seed=5)
    fleet(workers)
    started = fetch(client, workflow(files, wrong_hash_for="style/ink.safetensors")).get_json()
    done = ended(client, started["id"])
    # Then the workflow task fails with the download's reason, naming the model
    assert done["state"] == "failed"
    assert done["error"]["code"] == "download_failed"
    assert done["error"]["message"].startswith("style/ink.safetensors: ") and "SHA256" in done["error"]["message"]
    # And the good file was saved, the bad one not, and no partial is left
    assert (Path(settings.store) / "checkpoints" / "base.safetensors").is_file()
    loras = Path(settings.store) / "loras"
    assert model_files(loras) == []


def test_three_concurrent_fetches_make_one_transfer_per_file(app, client, workers, upstream):
    files = served_files(upstream, seed=9)
    for f in files.values():
        upstream.fault(f["path"], "slow", bytes_per_s=4 * 1024 * 1024)
    fleet(workers)
    answers: list[dict[str, Any]] = []

    def post() -> None:
        resp = fetch(app.test_client(), workflow(files))
        assert resp.status_code == 202, resp.get_json()
        answers.append(resp.get_json())

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then the three requests share the downloads, and the workflow task
    assert len(answers) == 3
    assert len({a["id"] for a in answers}) == 1
    done = ended(client, answers[0]["id"])
    assert done["state"] == "succeeded", done["error"]
    # And each file crossed the wire once
    for f in files.values():
        assert upstream.bytes_served(f["path"]) == len(f["data"])


def test_a_fleet_killed_mid_fetch_still_completes_the_workflow(client, workers, settings, upstream):
    # Given a slow fetch running on gpu1
    files = served_files(upstream, seed=13)
    for f in files.values():
        upstream.fault(f["path"], "slow", bytes_per_s=1024 * 1024)
    dl, wf = fleet(workers)
    started = fetch(client, workflow(files)).get_json()
    wf_id = started["id"]
    wait_for(lambda: (task(client, wf_id)["progress"]["done"] or 0) >= 512 * 1024, timeout=30,
             what="the fetch to be under way")
    # When every worker of gpu1 is SIGKILLed
    dl.kill()
    wf.kill()
    # The download and the workflow task each hold their own lease, which may expire a beat apart
    lost: list[str] = []

    def reaped_workflow() -> bool:
        lost.extend(_reap(settings))
        return wf_id in lost

    wait_for(reaped_workflow, timeout=20, what="the workflow task's lease to expire")
    # Then gpu3's workers pick the downloads and the workflow task up, and it completes (the reaper goes on
    # running, as the beat runs it: a download's lease may run out after the workflow task was requeued)
    fleet(workers, host="gpu3")

    def finished() -> Any:
        _reap(settings)
        return (t := task(client, wf_id))["state"] in ENDED and t

    done = wait_for(finished, timeout=90, interval=0.5, what=f"task {wf_id} to end")
    assert done["state"] == "succeeded", done["error"]
    assert done["attempt"] >= 2
    for name, f in files.items():
        assert (Path(settings.store) / f["folder"] / name).read_bytes() == f["data"]


def test_cancelling_the_workflow_task_cancels_its_downloads(client, workers, settings, upstream):
    files = served_files(upstream, seed=17)
    for f in files.values():
        upstream.fault(f["path"], "slow", bytes_per_s=256 * 1024)
    fleet(workers)
    started = fetch(client, workflow(files)).get_json()
    wf_id = started["id"]
    wait_for(lambda: task(client, wf_id)["state"] == "running", timeout=30, what="the workflow task to run")
    assert client.post(f"/api/v1/tasks/{wf_id}/cancel").status_code == 200
    assert ended(client, wf_id)["state"] == "cancelled"
    for child in started["params"]["children"]:
        assert ended(client, child["task_id"])["state"] == "cancelled"
    assert [f for f in model_files(Path(settings.store)) if not f.endswith((".md", ".webp"))] == []


def test_what_cannot_be_fetched_is_said_and_bad_input_is_a_4xx(client):
    # A missing model the workflow gives no URL for (offline: Civitai is not asked)
    wf = ui_graph([node(1, "LoraLoader", ["nowhere.safetensors", 1, 1])])
    resp = fetch(client, wf)
    assert resp.status_code == 200
    body = resp.get_json()
    assert "id" not in body and [s["code"] for s in body["skipped"]] == ["no_source"]
    # Bad bodies are refused at the door
    assert client.post("/api/v1/workflows/fetch", json={"workflow": wf, "title": 5}).status_code == 400
    assert client.post("/api/v1/workflows/fetch", json=[1]).status_code == 400
    assert client.post("/api/v1/workflows/fetch", data={"file": (io.BytesIO(b"<html>hi</html>"), "x.png")},
                       content_type="multipart/form-data").status_code in (400, 415)


def test_cli_fetch_waits_with_one_bar_then_reports_readiness(served, workers, upstream, tmp_path: Path, capsys):
    from cli import main
    files = served_files(upstream, seed=21)
    fleet(workers)
    png = tmp_path / "portrait.png"
    png.write_bytes(comfy_png(workflow(files), None))
    code = main(["workflow", "fetch", str(png), "--wait", "--offline"])
    out = capsys.readouterr()
    assert code == 0, out
    assert "fetching 2 model(s)" in out.out and "ready on: gpu1" in out.out
    # And with nothing left to fetch it says so, still exit 0; --json is the API's answer
    assert main(["workflow", "fetch", str(png), "--offline", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ready"] == {"gpu1": True}
