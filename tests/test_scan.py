"""The scan job run directly on real Redis and real files: every sidecar format and preview naming, a second
quick scan hashes nothing, touching one file rehashes only it, deleted files drop out, an unreachable root is
kept, lazy hashing of big files, cancellation, and the per-root lock."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from shared.config import Settings
from shared.errors import JobInterrupted
from shared.jobs import JobContext
from shared.scan import run_scan, submit_params
from shared.services import Services
from shared.store.index import StoreIndex, dirs_key, fp_key, pack_dir, unpack_dir
from shared.store.layout import StoreLayout
from tests.support import wait_for


def make_ctx(settings: Settings, params: dict[str, Any], **overrides: Any) -> tuple[JobContext, Services]:
    services = Services.build(settings.replace(**overrides) if overrides else settings)
    task, _ = services.records.create("scan", params, queue="scan")
    claim = services.records.claim(task["id"], host="testhost", worker="w1")
    return JobContext(services.records, task["id"], claim.attempt, params, "testhost"), services


def scan(settings: Settings, **kw: Any) -> dict[str, Any]:
    overrides = kw.pop("overrides", {})
    ctx, services = make_ctx(settings, submit_params(**kw), **overrides)
    return run_scan(ctx, services)


def build_tree(store: Path) -> None:
    """One model per sidecar format, each with a differently named preview."""
    StoreLayout(store).ensure_default_dirs()
    loras = store / "loras"
    (loras / "style").mkdir(parents=True)
    save_file({"w": np.ones(16, dtype=np.float32)}, str(loras / "style" / "md.safetensors"),
              metadata={"ss_network_dim": "8", "thumb": "A" * 10000})
    (loras / "style" / "md.md").write_text(
        "---\nauthor: alice\nbaseModel: SDXL 1.0\nmodelPage: https://civitai.com/models/1?modelVersionId=2\n"
        "website: Civitai\n---\n\n# Trigger Words\n\nneon, glow\n\n# About this version\n\nv1\n\n# Neon Style\n\nhi\n")
    (loras / "style" / "md.webp").write_bytes(b"RIFF....WEBP")
    (loras / "info.safetensors").write_bytes(b"x" * 100)
    (loras / "info.civitai.info").write_text(json.dumps(
        {"id": 22, "modelId": 11, "baseModel": "SD 1.5", "trainedWords": ["sks dog"], "model": {"name": "Dog"},
         "files": [{"primary": True, "hashes": {"SHA256": "ab" * 32}}]}, indent=4))
    (loras / "info.preview.png").write_bytes(b"\x89PNG")
    (loras / "lm.safetensors").write_bytes(b"y" * 100)
    (loras / "lm.metadata.json").write_text(json.dumps(
        {"model_name": "Lora Manager One", "base_model": "Flux.1 D", "trainedWords": ["lmword"], "sha256": "cd" * 32}))
    (loras / "lm.preview.jpeg").write_bytes(b"\xff\xd8")
    (loras / "sm.safetensors").write_bytes(b"z" * 100)
    (loras / "sm.cm-info.json").write_text(json.dumps(
        {"ModelName": "Stability One", "BaseModel": "Pony", "TrainedWords": ["smword"], "ModelId": 5,
         "VersionId": 6, "Hashes": {"SHA256": "ef" * 32}}))
    (loras / "sm.mp4").write_bytes(b"\x00\x00\x00\x18ftyp")
    (loras / "a1.pt").write_bytes(b"w" * 100)
    (loras / "a1.json").write_text(json.dumps({"activation text": "one || two", "sd version": "SD1"}))
    (loras / "txt.ckpt").write_bytes(b"v" * 100)
    (loras / "txt.txt").write_text("# Trigger Words\n\ntword\n")
    (loras / "notes.md").write_text("not a model")  # a stray sidecar-like file is not a model
    (loras / ".hidden.safetensors").write_bytes(b"h")
    (store / "checkpoints" / "big.safetensors").write_bytes(os.urandom(4096))
    (store / "diffusers" / "pipe").mkdir(parents=True)
    (store / "diffusers" / "pipe" / "model_index.json").write_text("{}")
    (store / "diffusers" / "pipe" / "unet").mkdir()
    (store / "diffusers" / "pipe" / "unet" / "w.safetensors").write_bytes(b"q" * 50)


def by_rel(index: StoreIndex) -> dict[str, dict[str, Any]]:
    return {d["relpath"]: d for d in index.models()}


def test_scan_reads_every_sidecar_format(settings: Settings, redis: Any) -> None:
    # Given a tree with every sidecar format
    build_tree(settings.store)
    # When a quick scan runs
    result = scan(settings)
    # Then every model is indexed with its summary and preview, and hidden files are skipped
    index = StoreIndex(redis, settings)
    docs = by_rel(index)
    assert result["files"] == 8 and result["added"] == 8 and result["hashed"] == 7
    assert set(docs) == {"style/md.safetensors", "info.safetensors", "lm.safetensors", "sm.safetensors",
                         "a1.pt", "txt.ckpt", "big.safetensors", "pipe"}
    md = docs["style/md.safetensors"]
    assert (md["title"], md["base_model"], md["trigger_words"], md["source"], md["preview"]) == \
        ("Neon Style", "SDXL 1.0", ["neon", "glow"], "civitai", "md.webp")
    assert md["hashes"]["AutoV3"] and md["hashes"]["SHA256"] == hashlib.sha256(
        (settings.store / "loras/style/md.safetensors").read_bytes()).hexdigest().upper()
    info = docs["info.safetensors"]
    assert (info["title"], info["base_model"], info["trigger_words"], info["preview"]) == \
        ("Dog", "SD 1.5", ["sks dog"], "info.preview.png")
    assert info["source_url"] == "https://civitai.com/models/11?modelVersionId=22"
    # our hash of the actual bytes wins over what a sidecar claims
    assert info["hashes"]["SHA256"] == hashlib.sha256(b"x" * 100).hexdigest().upper()
    assert (docs["lm.safetensors"]["title"], docs["lm.safetensors"]["base_model"], docs["lm.safetensors"]["preview"]) \
        == ("Lora Manager One", "Flux.1 D", "lm.preview.jpeg")
    sm = docs["sm.safetensors"]
    assert (sm["title"], sm["trigger_words"], sm["preview"]) \
        == ("Stability One", ["smword"], "sm.mp4")
    assert docs["a1.pt"]["trigger_words"] == ["one", "two"]
    assert docs["txt.ckpt"]["trigger_words"] == ["tword"]
    assert docs["pipe"]["dir"] is True and docs["pipe"]["size"] == 52


def test_second_quick_scan_hashes_nothing_and_touch_rehashes_one(settings: Settings, redis: Any) -> None:
    build_tree(settings.store)
    scan(settings)
    # When nothing changed
    again = scan(settings)
    # Then nothing is hashed, added or changed
    assert (again["hashed"], again["added"], again["changed"], again["removed"]) == (0, 0, 0, 0)
    assert again["files"] == 8
    # When one file's content changes
    target = settings.store / "loras" / "lm.safetensors"
    target.write_bytes(b"changed" * 10)
    third = scan(settings)
    # Then only that file is rehashed
    assert (third["hashed"], third["changed"]) == (1, 1)
    doc = StoreIndex(redis, settings).lookup("loras", 0, "lm.safetensors")
    assert doc["hashes"]["SHA256"] == hashlib.sha256(b"changed" * 10).hexdigest().upper()
    # When only a sidecar is edited, the summary updates without rehashing
    (settings.store / "loras" / "a1.json").write_text(json.dumps({"activation text": "three"}))
    fourth = scan(settings)
    assert fourth["hashed"] == 0
    assert StoreIndex(redis, settings).lookup("loras", 0, "a1.pt")["trigger_words"] == ["three"]


BIG_FILES = 24


def _hashing_scan(settings: Settings) -> tuple[Path, JobContext, Services, Callable[[], None]]:
    """A quick scan of a folder of 24 files of 6 MiB (hashed in chunks, with progress), not yet started, and a
    call that waits until its record shows the hashing phase."""
    loras = settings.store / "loras"
    loras.mkdir(parents=True)
    for i in range(BIG_FILES):
        (loras / f"big{i:02d}.safetensors").write_bytes(os.urandom(6 << 20))
    ctx, services = make_ctx(settings, submit_params("quick", "loras"))
    ctx.progress_interval_s = 0.0

    def until_hashing() -> None:
        wait_for(lambda: (services.records.get(ctx.task_id)["progress"] or {}).get("phase") == "hashing",
                 timeout=30, interval=0.002, what="the hashing phase")
    return loras, ctx, services, until_hashing


def test_hashes_a_cancelled_scan_left_are_made_by_the_next_quick_scan(settings: Settings, redis: Any) -> None:
    # Given a scan that is cancelled once it is hashing
    loras, ctx, services, until_hashing = _hashing_scan(settings)
    canceller = threading.Thread(target=lambda: (until_hashing(), services.records.control(ctx.task_id, "cancel")))
    canceller.start()
    with pytest.raises(JobInterrupted):
        run_scan(ctx, services)
    canceller.join()
    index = StoreIndex(redis, settings)
    hashed_before = sum(1 for d in index.models("loras") if d["hashed"])
    assert hashed_before < BIG_FILES
    # When the next quick scan runs (nothing on disk changed, so every directory looks unchanged)
    again = scan(settings, folder="loras")
    # Then it hashes exactly the files the cancelled scan left, and every file ends up hashed and right
    assert (again["added"], again["changed"], again["hashed"]) == (0, 0, BIG_FILES - hashed_before)
    for doc in index.models("loras"):
        assert doc["hashes"]["SHA256"] == hashlib.sha256((loras / doc["relpath"]).read_bytes()).hexdigest().upper()
    assert scan(settings, folder="loras")["hashed"] == 0


def test_a_root_stays_busy_while_its_scan_hashes(settings: Settings, redis: Any) -> None:
    # Given a scan that has walked the folder and is hashing its files
    loras, ctx, services, until_hashing = _hashing_scan(settings)
    first: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: first.update(run_scan(ctx, services)))
    runner.start()
    until_hashing()
    # When another scan of the folder starts meanwhile
    second = scan(settings, folder="loras")
    runner.join()
    # Then it finds the root busy and hashes nothing, and the first scan hashes every file once
    assert [b["path"] for b in second["busy_roots"]] == [str(loras)] and second["hashed"] == 0
    assert first["hashed"] == BIG_FILES


def test_full_scan_rehashes_everything(settings: Settings) -> None:
    build_tree(settings.store)
    scan(settings)
    assert scan(settings, mode="full")["hashed"] == 7


def test_deleted_file_is_dropped(settings: Settings, redis: Any) -> None:
    build_tree(settings.store)
    scan(settings)
    (settings.store / "loras" / "a1.pt").unlink()
    result = scan(settings, folder="loras")
    assert result["removed"] == 1
    assert StoreIndex(redis, settings).lookup("loras", 0, "a1.pt") is None


def test_unreachable_root_is_kept_and_reported(settings: Settings, redis: Any, tmp_path: Path) -> None:
    # Given an extra root (like a NAS mount) that was scanned
    nas = tmp_path / "nas"
    (nas / "Lora").mkdir(parents=True)
    (nas / "Lora" / "far.safetensors").write_bytes(b"f" * 10)
    yml = tmp_path / "extra.yaml"
    yml.write_text(f"nas:\n  base_path: {nas}\n  loras: Lora\n")
    s = settings.replace(extra_model_paths=(yml,))
    assert scan(s, folder="loras")["files"] == 1
    # When the mount disappears
    shutil.rmtree(nas)
    result = scan(s, folder="loras")
    # Then its models stay in the index and the root is reported
    assert result["removed"] == 0
    assert result["unreachable_roots"] == [{"folder": "loras", "path_index": 1, "path": str(nas / "Lora")}]
    assert StoreIndex(redis, s).lookup("loras", 1, "far.safetensors") is not None


def test_scan_of_one_root_leaves_the_others_alone(settings: Settings, redis: Any, tmp_path: Path) -> None:
    # Given the loras folder with a second root (a NAS), both scanned
    nas = tmp_path / "nas"
    (nas / "Lora").mkdir(parents=True)
    (nas / "Lora" / "far.safetensors").write_bytes(b"f" * 10)
    (settings.store / "loras").mkdir(parents=True)
    (settings.store / "loras" / "near.safetensors").write_bytes(b"n" * 10)
    yml = tmp_path / "extra.yaml"
    yml.write_text(f"nas:\n  base_path: {nas}\n  loras: Lora\n")
    s = settings.replace(extra_model_paths=(yml,))
    assert scan(s, folder="loras")["files"] == 2
    # When a file is added to each root and a file removed from the first, and only the NAS root is scanned
    (nas / "Lora" / "new.safetensors").write_bytes(b"w" * 10)
    (settings.store / "loras" / "other.safetensors").write_bytes(b"o" * 10)
    (settings.store / "loras" / "near.safetensors").unlink()
    result = scan(s, folder="loras", path_index=1)
    # Then only the NAS root's change is indexed; the first root's index is as it was
    assert (result["files"], result["added"], result["removed"]) == (2, 1, 0)
    rels = sorted((d["path_index"], d["relpath"]) for d in StoreIndex(redis, s).models("loras"))
    assert rels == [(0, "near.safetensors"), (1, "far.safetensors"), (1, "new.safetensors")]


def test_big_files_are_hashed_lazily_in_quick_mode(settings: Settings, redis: Any) -> None:
    build_tree(settings.store)
    result = scan(settings, overrides={"lazy_hash_bytes": 1000})
    # big.safetensors (4 KiB) and md.safetensors (10 KiB header) are past the limit: indexed but not hashed
    assert result["lazy"] == 2 and result["hashed"] == 5
    doc = StoreIndex(redis, settings).lookup("checkpoints", 0, "big.safetensors")
    assert doc is not None and "SHA256" not in doc["hashes"]


def test_scan_is_cancellable(settings: Settings) -> None:
    build_tree(settings.store)
    ctx, services = make_ctx(settings, submit_params())
    services.records.control(ctx.task_id, "cancel")
    ctx.progress_interval_s = 0.0
    with pytest.raises(JobInterrupted):
        run_scan(ctx, services)


def test_root_held_by_another_scan_is_reported_busy(settings: Settings, redis: Any) -> None:
    build_tree(settings.store)
    root = os.path.realpath(settings.store / "loras")
    lock = redis.lock(f"depot:lock:scan:{root}", timeout=30)
    assert lock.acquire(blocking=False)
    try:
        result = scan(settings, folder="loras")
    finally:
        lock.release()
    assert [b["path"] for b in result["busy_roots"]] == [str(settings.store / "loras")]
    assert result["files"] == 0


def test_removed_directory_and_directory_model_are_dropped(settings: Settings, redis: Any) -> None:
    # Given a scanned tree
    build_tree(settings.store)
    scan(settings)
    # When a whole subfolder and a diffusers model directory disappear
    shutil.rmtree(settings.store / "loras" / "style")
    shutil.rmtree(settings.store / "diffusers" / "pipe")
    result = scan(settings)
    # Then their models leave the index and nothing else changes
    docs = by_rel(StoreIndex(redis, settings))
    assert result["removed"] == 2 and result["files"] == 6
    assert "style/md.safetensors" not in docs and "pipe" not in docs
    assert scan(settings)["removed"] == 0


def test_record_file_then_scan_sees_no_change(settings: Settings, redis: Any) -> None:
    # Given a scanned tree and a file published outside the scan (as a download does)
    build_tree(settings.store)
    scan(settings)
    new = settings.store / "loras" / "style" / "fresh.safetensors"
    new.write_bytes(b"n" * 64)
    (new.parent / "fresh.preview.png").write_bytes(b"\x89PNG")
    (new.parent / "fresh.md").write_text("# Fresh\n")
    model = StoreIndex(redis, settings).record_file(new, hashes={"SHA256": "AB" * 32})
    assert model["relpath"] == "style/fresh.safetensors" and model["sha256"] == "AB" * 32
    # When the next quick scan runs, it neither re-adds nor rehashes it
    result = scan(settings)
    assert (result["added"], result["hashed"], result["changed"]) == (0, 0, 0)
    # And when a scan that read the folder just before the publish wrote the folder's lines without it, the
    # next scan indexes the file again but keeps the download's hashes rather than hashing it
    lines = unpack_dir(redis.hget(dirs_key("loras", 0), "style"))
    del lines["fresh.safetensors"]
    redis.hset(dirs_key("loras", 0), "style", pack_dir(lines))
    redis.hdel(fp_key("loras", 0), "style")
    result = scan(settings)
    assert result["hashed"] == 0
    assert StoreIndex(redis, settings).lookup("loras", 0, "style/fresh.safetensors")["hashes"]["SHA256"] == "AB" * 32


def test_symbolic_links_are_not_followed(settings: Settings, redis: Any, tmp_path: Path) -> None:
    # Given a model, a link loop next to it, a link to a folder on another drive and a link to the model itself
    loras = settings.store / "loras"
    (loras / "a").mkdir(parents=True)
    (loras / "a" / "m.safetensors").write_bytes(b"m" * 10)
    os.symlink("..", loras / "a" / "loop")
    (tmp_path / "drive2").mkdir()
    (tmp_path / "drive2" / "far.safetensors").write_bytes(b"f" * 10)
    os.symlink(tmp_path / "drive2", loras / "drive2")
    os.symlink("a/m.safetensors", loras / "alias.safetensors")
    # When the folder is scanned (twice)
    first = scan(settings, folder="loras")
    again = scan(settings, folder="loras")
    # Then the model is indexed once, nothing is reached through a link, and every link is reported each time
    assert sorted(d["relpath"] for d in StoreIndex(redis, settings).models("loras")) == ["a/m.safetensors"]
    assert (first["files"], first["links_skipped"], again["links_skipped"], again["added"]) == (1, 3, 3, 0)
    assert sorted(link["relpath"] for link in first["links_sample"]) == ["a/loop", "alias.safetensors", "drive2"]
    assert {(link["folder"], link["path_index"]) for link in first["links_sample"]} == {("loras", 0)}


def test_previews_count_by_name_only(settings: Settings, redis: Any) -> None:
    # Given a scanned tree
    build_tree(settings.store)
    scan(settings)
    loras = settings.store / "loras"
    index = StoreIndex(redis, settings)
    # When a preview is rewritten in place (new bytes, new size), nothing is re-read or rehashed
    (loras / "info.preview.png").write_bytes(b"\x89PNG" + b"x" * 500)
    assert {k: scan(settings)[k] for k in ("added", "changed", "hashed")} == {"added": 0, "changed": 0, "hashed": 0}
    assert index.lookup("loras", 0, "info.safetensors")["preview"] == "info.preview.png"
    # When a preview that ranks higher appears, the model shows it, still without rehashing
    (loras / "lm.png").write_bytes(b"\x89PNG")
    assert scan(settings)["hashed"] == 0
    assert index.lookup("loras", 0, "lm.safetensors")["preview"] == "lm.png"
    # When it goes again, the earlier preview is back
    (loras / "lm.png").unlink()
    scan(settings)
    assert index.lookup("loras", 0, "lm.safetensors")["preview"] == "lm.preview.jpeg"


def build_library(root: Path, folders: int = 30, per_folder: int = 40) -> int:
    """A library big enough for the scan processes (more new files than one chunk), with every sidecar kind
    and both preview namings; returns the number of models."""
    sidecar_of = [
        lambda i: ("md", f"---\nbaseModel: SDXL 1.0\nwebsite: Civitai\n---\n\n# Trigger Words\n\nword{i}, x\n\n"
                         f"# Title {i}\n\nbody\n"),
        lambda i: ("civitai.info", json.dumps({"id": i, "modelId": 7, "baseModel": "SD 1.5", "trainedWords": [
            f"c{i}"], "model": {"name": f"Civ {i}"}, "files": [{"primary": True, "hashes": {"SHA256": f"{i:064X}"}}]})),
        lambda i: ("metadata.json", json.dumps({"model_name": f"LM {i}", "base_model": "Flux.1 D"})),
        lambda i: ("cm-info.json", json.dumps({"ModelName": f"SM {i}", "BaseModel": "Pony", "ModelId": 3,
                                               "VersionId": i})),
        lambda i: ("json", json.dumps({"activation text": f"a{i} || b", "sd version": "SD1"})),
    ]
    for f in range(folders):
        d = root / f"group{f // 10}" / f"set{f:02d}"
        d.mkdir(parents=True)
        for i in range(per_folder):
            n = f * per_folder + i
            (d / f"m{i:02d}.safetensors").write_bytes(b"\x08" + n.to_bytes(4, "little") + b"\x00" * (i % 7))
            suffix, text = sidecar_of[i % 5](n)
            (d / f"m{i:02d}.{suffix}").write_text(text)
            if i % 2:
                (d / f"m{i:02d}{'.preview.webp' if i % 4 == 1 else '.png'}").write_bytes(b"\x89PNG")
    return folders * per_folder


def test_scan_processes_index_exactly_what_a_single_process_scan_does(settings: Settings, redis: Any) -> None:
    # Given a library of 1,200 models in 30 new folders (2,700 files: more than one chunk for the scan processes)
    StoreLayout(settings.store).ensure_default_dirs()
    models = build_library(settings.store / "loras" / "lib")
    os.symlink("..", settings.store / "loras/lib/group1/set15/up")  # a loop, inside a folder a process reads
    # When a first quick scan runs with two scan processes
    first = scan(settings, folder="loras", overrides={"scan_processes": 2})
    # Then the processes were used, every model is indexed once and hashed, and a rescan finds nothing to do
    assert first["processes"] == 2 and first["links_skipped"] == 1
    assert (first["files"], first["added"], first["hashed"], first["removed"]) == (models, models, models, 0)
    again = scan(settings, folder="loras", overrides={"scan_processes": 2})
    assert (again["added"], again["changed"], again["removed"], again["hashed"]) == (0, 0, 0, 0)
    by_processes = by_rel(StoreIndex(redis, settings))
    assert len(by_processes) == models
    sample = by_processes["lib/group0/set01/m05.safetensors"]  # 45 % 5 == 0: a NAME.md
    assert (sample["title"], sample["base_model"], sample["trigger_words"], sample["preview"]) == \
        ("Title 45", "SDXL 1.0", ["word45", "x"], "m05.preview.webp")
    # And the same library indexed by one process gives identical documents
    for key in redis.keys("depot:store:*"):
        redis.delete(key)
    alone = scan(settings, folder="loras", overrides={"scan_processes": 1})
    assert alone["processes"] == 0 and alone["added"] == models
    assert by_rel(StoreIndex(redis, settings)) == by_processes
    # And a file touched in a folder the processes indexed is seen by the next quick scan
    (settings.store / "loras/lib/group2/set27/m03.safetensors").write_bytes(b"\x08changed")
    touched = scan(settings, folder="loras", overrides={"scan_processes": 2})
    assert (touched["changed"], touched["hashed"], touched["added"]) == (1, 1, 0)


def _stuck_index_new_dirs(rel_dirs: list[str]) -> dict[str, Any]:
    """Stands in for the scan processes' work (they run it from the forked, patched module)."""
    time.sleep(60)
    raise AssertionError("a cancelled scan's processes must be stopped, not waited for")


def _child_pids() -> set[int]:
    me, out = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != "Z":
                out.add(int(entry))
    return out


def test_cancel_while_scan_processes_work_stops_them(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a big new library whose scan processes would take a minute per chunk
    StoreLayout(settings.store).ensure_default_dirs()
    build_library(settings.store / "loras" / "lib")
    monkeypatch.setattr("shared.scan.walk.index_new_dirs", _stuck_index_new_dirs)
    before = _child_pids()
    ctx, services = make_ctx(settings, submit_params(folder="loras"), scan_processes=2)
    ctx.progress_interval_s = 0.0
    # When the user cancels while they work
    timer = threading.Timer(1.0, services.records.control, (ctx.task_id, "cancel"))
    timer.start()
    with pytest.raises(JobInterrupted):
        run_scan(ctx, services)
    timer.join()
    # Then the scan stops and its processes are terminated instead of waited for
    wait_for(lambda: _child_pids() <= before, timeout=20, what="scan processes gone")
