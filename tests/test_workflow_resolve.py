"""Workflow references resolved against a real Redis index filled by the real scan of real files in a temp
store: hash matches (full SHA256, AutoV2, AutoV3, a TI SHA256 prefix), path, unique name, stem, ambiguous,
duplicates, mismatch, missing with the workflow's URL or with Civitai's by-hash and by-version answers from the
fake upstream, the Civitai source recorded in the store (AIR), and the lookup tables following the index."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from shared.config import Settings
from shared.jobs import JobContext
from shared.media.hashing import hash_file
from shared.scan import run_scan, submit_params
from shared.services import Services
from shared.store.index import StoreIndex
from shared.store.layout import StoreLayout
from shared.store.lookup import ModelLookup
from shared.workflows import readiness
from shared.workflows.check import check
from shared.workflows.formats import read_bytes, read_json_value, read_text
from shared.workflows.sources import CivitaiSources
from tests.workflow_support import A1111_PARAMETERS, comfy_png, node, ui_graph


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url, "HF_ENDPOINT": upstream.url})
    return settings_env


def scan(settings: Settings) -> dict[str, Any]:
    services = Services.build(settings)
    params = submit_params()
    task, _ = services.records.create("scan", params, queue="scan")
    claim = services.records.claim(task["id"], host="testhost", worker="w1")
    return run_scan(JobContext(services.records, task["id"], claim.attempt, params, "testhost"), services)


def tensors(path: Path, seed: int) -> dict[str, str]:
    """A real safetensors file (so AutoV3 applies); returns its hashes as the scan computes them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.full(64, seed, dtype=np.float32)}, str(path), metadata={"seed": str(seed)})
    return hash_file(path)


@pytest.fixture
def store(settings: Settings) -> dict[str, dict[str, str]]:
    root = settings.store
    StoreLayout(root).ensure_default_dirs()
    h = {
        "base": tensors(root / "checkpoints/sdxl/base.safetensors", 1),
        "dream": tensors(root / "checkpoints/dreamshaper_8.safetensors", 2),
        "detail": tensors(root / "loras/add_detail.safetensors", 3),
        "ink_a": tensors(root / "loras/style/ink.safetensors", 4),
        "ink_b": tensors(root / "loras/other/ink.safetensors", 5),
        "dup_a": tensors(root / "loras/dup1/same.safetensors", 6),
        "dup_b": tensors(root / "loras/dup2/same.safetensors", 6),
        "ae": tensors(root / "vae/ae.safetensors", 7),
        "vae_a1111": tensors(root / "vae/vae-ft-mse.safetensors", 8),
        "neg": tensors(root / "embeddings/easynegative.safetensors", 9),
        "t5": tensors(root / "text_encoders/renamed_t5.safetensors", 10),
        "civ": tensors(root / "loras/from_civitai.safetensors", 11),
    }
    (root / "loras/from_civitai.civitai.info").write_text(json.dumps(
        {"id": 22, "modelId": 11, "model": {"name": "From Civitai"}, "files": [{"primary": True}]}))
    assert scan(settings)["hashed"] == 12
    return h


def run(settings: Settings, redis: Any, payload: Any, *, hosts: list[str] = (), offline: bool = False,
        lookup: ModelLookup | None = None) -> dict[tuple[str | None, str], dict[str, Any]]:
    services = Services.build(settings)
    find = None if offline else CivitaiSources(services, None).find
    result = check(payload, redis=redis, lookup=lookup or ModelLookup(redis),
                   layout=StoreLayout.from_settings(settings), hosts=readiness.hosts_for(settings, list(hosts)),
                   find=find)
    return {(r["folder"], r["name"]): r for r in result.to_json()["references"]}


def test_comfyui_workflow_resolves_by_hash_path_name_and_reports_every_state(settings, redis, store, upstream):
    other_sha = hashlib.sha256(b"another ae").hexdigest()
    graph = ui_graph([
        node(1, "CheckpointLoaderSimple", ["sdxl/base.safetensors"]),  # by path
        node(2, "LoraLoader", ["add_detail.safetensors", 1, 1]),
        node(3, "LoraLoaderModelOnly", ["ink.safetensors", 1]),  # two different files of that name
        node(4, "LoraLoaderModelOnly", ["same.safetensors", 1]),  # two copies of the same bytes
        node(5, "VAELoader", ["ae.safetensors"], models=[  # the workflow's hash differs from the file's
            {"name": "ae.safetensors", "directory": "vae", "url": "https://x.test/ae.safetensors",
             "hash": other_sha, "hash_type": "SHA256"}]),
        node(6, "CLIPLoader", ["t5xxl_fp16.safetensors", "sd3", "default"], models=[  # by hash, other name
            {"name": "t5xxl_fp16.safetensors", "directory": "text_encoders", "url": "https://x.test/t5.safetensors",
             "hash": store["t5"]["SHA256"].lower(), "hash_type": "SHA256"}]),
        node(7, "UNETLoader", ["flux1-dev.safetensors", "default"], models=[
            {"name": "flux1-dev.safetensors", "directory": "diffusion_models",
             "url": "https://huggingface.co/black-forest-labs/FLUX.1-dev/resolve/main/flux1-dev.safetensors"}]),
        node(8, "CLIPTextEncode", ["castle, embedding:easynegative"]),  # by stem, no extension given
        node(9, "SomeCustomNode", ["base.safetensors"]),  # no folder: found anywhere by name
    ])
    refs = run(settings, redis, read_bytes(comfy_png(graph, None)), offline=True)
    assert refs[("checkpoints", "sdxl/base.safetensors")]["state"] == "present"
    assert refs[("checkpoints", "sdxl/base.safetensors")]["matched_by"] == "path"
    detail = refs[("loras", "add_detail.safetensors")]
    assert (detail["state"], detail["matched_by"], detail["model"]["relpath"]) == ("present", "path",
                                                                                     "add_detail.safetensors")
    ink = refs[("loras", "ink.safetensors")]
    assert (ink["state"], ink["model"]) == ("ambiguous", None)
    assert sorted(c["relpath"] for c in ink["candidates"]) == ["other/ink.safetensors", "style/ink.safetensors"]
    same = refs[("loras", "same.safetensors")]
    assert (same["state"], same["matched_by"], len(same["candidates"])) == ("present", "name", 2)
    ae = refs[("vae", "ae.safetensors")]
    assert (ae["state"], ae["model"]["relpath"], ae["expected_hash"]) == ("mismatch", "ae.safetensors",
                                                                          other_sha.upper())
    assert ae["source"]["url"] == "https://x.test/ae.safetensors"
    t5 = refs[("text_encoders", "t5xxl_fp16.safetensors")]
    assert (t5["state"], t5["matched_by"], t5["model"]["relpath"]) == ("present", "hash", "renamed_t5.safetensors")
    flux = refs[("diffusion_models", "flux1-dev.safetensors")]
    assert (flux["state"], flux["matched_by"], flux["model"]) == ("missing", None, None)
    assert flux["source"] == {"url": "https://huggingface.co/black-forest-labs/FLUX.1-dev/resolve/main/"
                                     "flux1-dev.safetensors", "kind": "workflow",
                              "filename": "flux1-dev.safetensors", "sha256": None}
    assert (flux["relpath"], flux["folder"]) == ("flux1-dev.safetensors", "diffusion_models")
    neg = refs[("embeddings", "easynegative")]
    assert (neg["state"], neg["matched_by"], neg["model"]["relpath"]) == ("present", "name",
                                                                          "easynegative.safetensors")
    anywhere = refs[(None, "base.safetensors")]
    assert (anywhere["state"], anywhere["model"]["folder"]) == ("present", "checkpoints")


def test_a1111_short_hashes_find_the_files(settings, redis, store):
    text = A1111_PARAMETERS.format(model_hash=store["dream"]["AutoV2"].lower(),
                                   vae_hash=store["vae_a1111"]["AutoV2"].lower(),
                                   lora_hash=store["detail"]["AutoV3"].lower(),
                                   ti_hash=store["neg"]["SHA256"][:12].lower())
    # the names differ from the files, so only the hashes can find them
    text = text.replace("Model: dreamshaper_8", "Model: dreamshaper_v8_renamed")
    text = text.replace("add_detail", "detail_alias").replace("easynegative:", "EasyNeg:")
    refs = run(settings, redis, read_text(text), offline=True)
    assert {k: (r["state"], r["matched_by"], r["model"]["relpath"], r["hash_type"]) for k, r in refs.items()} == {
        ("checkpoints", "dreamshaper_v8_renamed"): ("present", "hash", "dreamshaper_8.safetensors", "AutoV2"),
        ("vae", "vae-ft-mse.safetensors"): ("present", "hash", "vae-ft-mse.safetensors", "AutoV2"),
        ("loras", "detail_alias"): ("present", "hash", "add_detail.safetensors", "AutoV3"),
        ("embeddings", "EasyNeg"): ("present", "hash", "easynegative.safetensors", "SHA256"),
    }


def test_missing_models_get_civitai_sources_by_hash_and_by_version(settings, redis, store, upstream):
    lora = b"lora bytes that the store does not have"
    upstream.add_civitai_model(100, "Paper Cut", "LORA", versions=[
        {"id": 200, "files": [{"id": 300, "name": "papercut.safetensors", "data": lora}]}])
    ckpt = b"checkpoint bytes"
    upstream.add_civitai_model(101, "Juggernaut", "Checkpoint", versions=[
        {"id": 201, "files": [{"id": 301, "name": "juggernaut.safetensors", "data": ckpt}]}])
    sha = hashlib.sha256(lora).hexdigest().upper()
    graph = ui_graph([node(1, "LoraLoader", ["papercut.safetensors", 1, 1], models=[
        {"name": "papercut.safetensors", "directory": "loras", "hash": sha, "hash_type": "SHA256"}])])
    refs = run(settings, redis, read_json_value(graph))
    paper = refs[("loras", "papercut.safetensors")]
    assert paper["state"] == "missing"
    assert paper["source"] == {"url": f"{upstream.url}/api/download/models/200?fileId=300", "kind": "civitai",
                               "filename": "papercut.safetensors", "sha256": sha}
    assert (paper["expected_hash"], paper["hash_type"], paper["relpath"]) == (sha, "SHA256", "papercut.safetensors")
    # An A1111 checkpoint known only by its AutoV2, and an AIR: Civitai names the file and its SHA256
    text = ("a castle, urn:air:sdxl:lora:civitai:100@200\nSteps: 20, Sampler: Euler, Seed: 1, Model hash: "
            f"{hashlib.sha256(ckpt).hexdigest()[:10]}, Model: jugg\n")
    refs = run(settings, redis, read_text(text))
    jugg = refs[("checkpoints", "jugg")]
    assert (jugg["state"], jugg["source"]["filename"], jugg["relpath"]) == ("missing", "juggernaut.safetensors",
                                                                            "juggernaut.safetensors")
    assert jugg["expected_hash"] == hashlib.sha256(ckpt).hexdigest().upper()
    air = refs[("loras", "urn:air:sdxl:lora:civitai:100@200")]
    assert (air["state"], air["source"]["url"]) == ("missing", f"{upstream.url}/api/download/models/200?fileId=300")
    # Answers are cached: asking again costs nothing upstream
    upstream.reset_counts()
    run(settings, redis, read_text(text))
    assert upstream.requests("/api/v1/model-versions/200") == 0
    # Civitai down: the check still answers, without a source
    redis.delete(*redis.keys("depot:workflows:civitai:*"))
    upstream.fault("/api/v1/model-versions/200", 500, times=None)
    refs = run(settings, redis, read_text("urn:air:sdxl:lora:civitai:100@200"))
    assert refs[("loras", "urn:air:sdxl:lora:civitai:100@200")]["source"] is None


def test_air_found_by_the_civitai_source_the_store_recorded_and_by_civitais_hash(settings, redis, store, upstream):
    # the store's from_civitai.safetensors was downloaded from version 22 (its .civitai.info says so)
    refs = run(settings, redis, read_text("urn:air:sd1:lora:civitai:11@22"), offline=True)
    got = refs[("loras", "urn:air:sd1:lora:civitai:11@22")]
    assert (got["state"], got["matched_by"], got["model"]["relpath"]) == ("present", "source",
                                                                          "from_civitai.safetensors")
    # a version Civitai describes with a SHA256 the store has under another name
    data = (settings.store / "loras/add_detail.safetensors").read_bytes()
    upstream.add_civitai_model(7, "Detail", "LORA", versions=[{"id": 77, "files": [
        {"id": 777, "name": "detail_tweaker.safetensors", "data": data}]}])
    got = run(settings, redis, read_text("urn:air:sd1:lora:civitai:7@77"))[("loras", "urn:air:sd1:lora:civitai:7@77")]
    assert (got["state"], got["matched_by"], got["model"]["relpath"]) == ("present", "hash", "add_detail.safetensors")


def test_lookup_tables_follow_the_index(settings, redis, store):
    lookup = ModelLookup(redis)
    graph = ui_graph([node(1, "LoraLoader", ["new.safetensors", 1, 1])])
    assert run(settings, redis, read_json_value(graph), offline=True, lookup=lookup)[
        ("loras", "new.safetensors")]["state"] == "missing"
    # a new model is published (a download, a move): the next check sees it from the change log
    path = settings.store / "loras/new.safetensors"
    tensors(path, 42)
    index = StoreIndex(redis, settings)
    index.record_file(path)
    assert run(settings, redis, read_json_value(graph), offline=True, lookup=lookup)[
        ("loras", "new.safetensors")]["state"] == "present"
    index.remove("loras", 0, "new.safetensors")
    assert run(settings, redis, read_json_value(graph), offline=True, lookup=lookup)[
        ("loras", "new.safetensors")]["state"] == "missing"
    assert lookup.full_builds == 1


def test_a_root_outside_the_store_is_visible_only_on_the_depots_host(settings_env, redis, tmp_path):
    from shared.config import load_settings
    outside = tmp_path / "a1111" / "Lora"
    yaml_path = tmp_path / "extra_model_paths.yaml"
    yaml_path.write_text(f"a111:\n  base_path: {tmp_path / 'a1111'}\n  loras: Lora\n")
    settings = load_settings({**settings_env, "DEPOT_EXTRA_MODEL_PATHS": str(yaml_path)})
    StoreLayout.from_settings(settings)
    tensors(outside / "far.safetensors", 3)
    tensors(settings.store / "loras/near.safetensors", 4)
    scan(settings)
    graph = ui_graph([node(1, "LoraLoader", ["far.safetensors", 1, 1]),
                      node(2, "LoraLoader", ["near.safetensors", 1, 1])])
    services = Services.build(settings)
    result = check(read_json_value(graph), redis=services.redis, lookup=ModelLookup(services.redis),
                   layout=StoreLayout.from_settings(settings),
                   hosts=readiness.hosts_for(settings, ["testhost", "gpu1"]))
    hosts = {r.name: r.hosts for r in result.references}
    assert hosts == {"far.safetensors": {"testhost": True, "gpu1": False},
                     "near.safetensors": {"testhost": True, "gpu1": True}}
    assert result.ready == {"testhost": True, "gpu1": False}
