"""Two models with one stem (``x.safetensors`` and ``x.gguf`` in one folder), as ComfyUI lists them. The scan
indexes both, run alone and through its scan processes, and lists exactly what ComfyUI's
``folder_paths.get_filename_list`` would; over HTTP both show the stem's sidecars and preview, search,
duplicates and verify (in a worker) treat them as the two files they are, moving or deleting one leaves the
other its sidecars, and the web process's listing catches up on every change from the index's change log."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image
from safetensors.numpy import save_file

from shared.config import Settings
from shared.store.extra_paths import parse_extra_model_paths
from shared.store.index import CHANGES, StoreIndex
from shared.store.layout import StoreLayout
from tests.support import wait_for
from tests.test_scan import scan

PAIRED = ["pair/solo.safetensors", "pair/v.gguf", "pair/v.safetensors", "pair/x.gguf", "pair/x.safetensors",
          "pair/y.ckpt", "pair/y.pt"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest().upper()


def build_pairs(loras: Path) -> Path:
    """``x`` and ``v``: a safetensors and a GGUF of one stem sharing a description (which records the
    safetensors' SHA256), a Civitai info file and a preview; ``y``: two files of one stem with the same bytes and
    no sidecars; ``solo``: a model alone with its sidecar, whose recorded hash is its own."""
    d = loras / "pair"
    d.mkdir(parents=True)
    for stem, seed in (("x", 1), ("v", 2)):
        save_file({"w": np.full(16, seed, dtype=np.float32)}, str(d / f"{stem}.safetensors"))
        (d / f"{stem}.gguf").write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 2) + bytes([seed]) * 256)
        digest = sha(d / f"{stem}.safetensors")
        (d / f"{stem}.md").write_text(
            f"---\nbaseModel: SDXL 1.0\nwebsite: Civitai\nhashes:\n  SHA256: {digest}\n---\n\n# Trigger Words\n\n"
            f"{stem}word\n\n# About this version\n\nv1\n\n# Style {stem.upper()}\n\nbody\n")
        info = {"id": seed, "modelId": 9, "baseModel": "SDXL 1.0",
                "files": [{"primary": True, "hashes": {"SHA256": digest}}]}
        (d / f"{stem}.civitai.info").write_text(json.dumps(info))
        Image.new("RGB", (8, 8), "red" if seed == 1 else "blue").save(d / f"{stem}.webp", "WEBP")
    same = pickle.dumps({"w": list(range(32))}, protocol=4)
    (d / "y.ckpt").write_bytes(same)
    (d / "y.pt").write_bytes(same)
    save_file({"w": np.full(16, 9, dtype=np.float32)}, str(d / "solo.safetensors"))
    (d / "solo.md").write_text(f"---\nhashes:\n  SHA256: {sha(d / 'solo.safetensors')}\n---\n")
    return d


def by_rel(index: StoreIndex) -> dict[str, dict[str, Any]]:
    return {d["relpath"]: d for d in index.models("loras")}


@pytest.mark.parametrize("processes", [1, 2], ids=["inline", "scan-processes"])
def test_scan_indexes_every_model_of_a_stem(settings: Settings, redis: Any, monkeypatch: pytest.MonkeyPatch,
                                            processes: int) -> None:
    # Given pairs of models sharing a stem (and, for the scan processes, chunks small enough to use them)
    StoreLayout(settings.store).ensure_default_dirs()
    d = build_pairs(settings.store / "loras")
    monkeypatch.setattr("shared.scan.walk.CHUNK_FILES", 2)
    # When a first quick scan runs without hashing
    first = scan(settings, folder="loras", overrides={"scan_processes": processes, "lazy_hash_bytes": 0})
    # Then every file is its own model, each of a pair showing the stem's sidecars and preview
    assert first["processes"] == (0 if processes == 1 else processes)
    assert (first["files"], first["added"]) == (7, 7)
    index = StoreIndex(redis, settings)
    docs = by_rel(index)
    assert sorted(docs) == PAIRED
    for rel in ("pair/x.safetensors", "pair/x.gguf"):
        doc = docs[rel]
        assert (doc["title"], doc["base_model"], doc["trigger_words"], doc["source"], doc["preview"]) == \
            ("Style X", "SDXL 1.0", ["xword"], "civitai", "x.webp")
        # but not the hashes the sidecars record: nothing says whose they are
        assert "SHA256" not in doc["hashes"]
    assert docs["pair/solo.safetensors"]["hashes"]["SHA256"] == sha(d / "solo.safetensors")
    assert index.duplicates("loras") == []
    # And the index's change log names both models of each pair
    logged = {mid for entry in redis.lrange(CHANGES, 0, -1) for mid in entry.split("\0")[1:]}
    assert {f"loras/0/{rel}" for rel in PAIRED} <= logged
    # When a full scan hashes them, each gets its own file's hashes, and a quick rescan has nothing to do
    assert scan(settings, folder="loras", mode="full", overrides={"scan_processes": processes})["hashed"] == 7
    for rel, doc in by_rel(index).items():
        assert doc["hashes"]["SHA256"] == sha(settings.store / "loras" / rel), rel
    again = scan(settings, folder="loras", overrides={"scan_processes": processes})
    assert (again["files"], again["added"], again["changed"], again["removed"], again["hashed"]) == (7, 0, 0, 0, 0)
    # When one of a pair goes, only it leaves the index
    (d / "x.gguf").unlink()
    gone = scan(settings, folder="loras", overrides={"scan_processes": processes})
    assert (gone["removed"], gone["hashed"]) == (1, 0)
    assert sorted(by_rel(index)) == [r for r in PAIRED if r != "pair/x.gguf"]
    # When a new one joins the stem, only it is hashed, and neither takes the sidecars' hashes
    (d / "x.gguf").write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 2) + b"\x07" * 300)
    back = scan(settings, folder="loras", overrides={"scan_processes": processes})
    assert (back["added"], back["changed"], back["hashed"]) == (1, 0, 1)
    docs = by_rel(index)
    assert docs["pair/x.gguf"]["hashes"]["SHA256"] == sha(d / "x.gguf")
    assert docs["pair/x.gguf"]["stem_shared"] and docs["pair/x.safetensors"]["stem_shared"]


def comfyui_filename_list(roots: tuple[str, ...], extensions: frozenset[str]) -> list[str]:
    """ComfyUI's ``folder_paths.get_filename_list`` rule, restated: every file under each root (recursively,
    ``.git`` directories left out), relative to its root, kept when its ``os.path.splitext`` extension,
    lower-cased, is one of the folder's (or the folder names none); merged across roots and sorted."""
    found: set[str] = set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = [n for n in dirnames if n != ".git"]
            for name in filenames:
                if os.path.splitext(name)[-1].lower() in extensions or not extensions:
                    found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(found)


def test_listing_is_what_comfyui_lists(settings: Settings, served: str, tmp_path: Path) -> None:
    # Given pairs, triples and look-alike names in a model folder and in the folder of extensionless files
    # (no hidden files or links: the store leaves those out on purpose)
    StoreLayout(settings.store).ensure_default_dirs()
    loras, classifiers = settings.store / "loras", settings.store / "classifiers"
    build_pairs(loras)
    tricky = loras / "tricky" / "deep"
    tricky.mkdir(parents=True)
    for name in ("a.b.safetensors", "a.b.gguf", "a.b.CKPT", "a.b.md", "a.b.preview.png", "Up.SafeTensors",
                 "Up.GGUF", "noext", "model.safetensors.md", "x.preview.safetensors", "x.json", "z.pt2", "z.bin"):
        (tricky / name).write_bytes(b"\x00" * 8)
    for name in ("clf", "clf.md", "clf.safetensors", "other"):
        (classifiers / name).write_bytes(b"\x01" * 8)
    scan(settings)
    # And the extra_model_paths.yaml the depot gives ComfyUI, read as ComfyUI reads it
    yml = tmp_path / "extra_model_paths.yaml"
    yml.write_text(requests.get(f"{served}/api/v1/comfyui/extra_model_paths.yaml", timeout=30).text)
    roots = parse_extra_model_paths(yml)
    layout, listed = StoreLayout(settings.store), {}
    for folder in ("loras", "classifiers"):
        # When the folder is listed over HTTP
        body = requests.get(f"{served}/api/v1/models", params={"folder": folder, "limit": 1000}, timeout=30).json()
        # Then it holds exactly the files ComfyUI would list from those paths (with ComfyUI's extensions for the
        # folder, and .gguf as the GGUF loader adds it)
        expected = comfyui_filename_list(tuple(roots[folder]), layout.folder(folder).extensions)
        assert sorted(m["relpath"] for m in body["items"]) == expected
        assert body["total"] == len(expected)
        listed[folder] = expected
    assert {"pair/x.gguf", "pair/x.safetensors", "tricky/deep/a.b.gguf", "tricky/deep/a.b.CKPT"} <= set(listed["loras"])
    assert listed["classifiers"] == ["clf", "other"]


class Api:
    def __init__(self, url: str) -> None:
        self.url = url + "/api/v1"

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        return requests.request(method, self.url + path, timeout=30, **kw)

    def rels(self, **params: Any) -> list[str]:
        body = self("GET", "/models", params={"folder": "loras", "limit": 1000, **params}).json()
        return sorted(m["relpath"] for m in body["items"])

    def detail(self, rel: str) -> dict[str, Any]:
        resp = self("GET", f"/models/loras/0/{rel}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def move(self, rel: str, to: str) -> requests.Response:
        return self("PATCH", f"/models/loras/0/{rel}", json={"move_to": {"relpath": to}})


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_pair_over_http(settings: Settings, served: str, app: Any) -> None:
    # Given scanned pairs, and the web process's listing built once
    StoreLayout(settings.store).ensure_default_dirs()
    d = build_pairs(settings.store / "loras")
    scan(settings, folder="loras")
    api = Api(served)
    assert api.rels() == PAIRED
    listing = app.extensions["depot"].index
    reloads = listing.full_reloads
    # Then search finds both models of a pair by the shared trigger word, and each by its own name
    assert api.rels(q="xword") == ["pair/x.gguf", "pair/x.safetensors"]
    assert api.rels(q="gguf") == ["pair/v.gguf", "pair/x.gguf"]
    # And each shows the stem's metadata and preview, its own hashes, and what it shares with whom
    gguf, st = api.detail("pair/x.gguf"), api.detail("pair/x.safetensors")
    for model in (gguf, st):
        assert (model["name"], model["base_model"], model["trigger_words"], model["preview"]) == \
            ("Style X", "SDXL 1.0", ["xword"], "x.webp")
        assert model["sidecars"] == ["x.civitai.info", "x.md", "x.webp"] and model["metadata"]["hashes"] == {}
    assert (gguf["siblings"], st["siblings"]) == (["pair/x.safetensors"], ["pair/x.gguf"])
    assert (gguf["sha256"], st["sha256"]) == (sha(d / "x.gguf"), sha(d / "x.safetensors"))
    etags = {rel: api("GET", f"/previews/loras/0/{rel}").headers["ETag"] for rel in PAIRED}
    assert etags["pair/x.gguf"] == etags["pair/x.safetensors"] != etags["pair/v.gguf"]
    assert etags["pair/y.ckpt"] != etags["pair/x.gguf"]  # no preview: the placeholder
    # And duplicates group files by their bytes: the y pair, two files, and not the x or v pairs
    groups = api("GET", "/duplicates").json()
    assert [(g["sha256"], [m["relpath"] for m in g["models"]]) for g in groups] == \
        [(sha(d / "y.ckpt"), ["pair/y.ckpt", "pair/y.pt"])]

    # When x.gguf moves to another folder under a new name while x.safetensors stays
    r = api.move("pair/x.gguf", "moved/z.gguf")
    assert r.status_code == 200, r.text
    assert (r.json()["relpath"], r.json()["preview"], r.json()["base_model"]) == ("moved/z.gguf", "z.webp", "SDXL 1.0")
    # Then it takes copies of the sidecars and its own hashes, and x.safetensors keeps the sidecars, now alone
    # with them; the hashes they record are still taken as neither's (they describe one of two files)
    assert names(d.parent / "moved") == ["z.civitai.info", "z.gguf", "z.md", "z.webp"]
    assert [n for n in names(d) if n.startswith("x.")] == ["x.civitai.info", "x.md", "x.safetensors", "x.webp"]
    st, z = api.detail("pair/x.safetensors"), api.detail("moved/z.gguf")
    assert (st["siblings"], st["preview"], st["metadata"]["hashes"]) == ([], "x.webp", {})
    assert (z["siblings"], z["sidecars"], z["metadata"]["hashes"]) == ([], ["z.civitai.info", "z.md", "z.webp"], {})
    assert (z["sha256"], st["sha256"]) == (sha(d.parent / "moved" / "z.gguf"), sha(d / "x.safetensors"))
    assert api.rels(q="xword") == ["moved/z.gguf", "pair/x.safetensors"]
    # When only a model's extension changes, its sidecars are already named right and stay
    r = api.move("pair/x.safetensors", "pair/x.sft")
    assert r.status_code == 200, r.text
    assert [n for n in names(d) if n.startswith("x.")] == ["x.civitai.info", "x.md", "x.sft", "x.webp"]

    # When one of the v pair is deleted
    assert api("DELETE", "/models/loras/0/pair/v.gguf").status_code == 204
    # Then the other keeps the sidecars and preview, and shows them
    assert [n for n in names(d) if n.startswith("v.")] == ["v.civitai.info", "v.md", "v.safetensors", "v.webp"]
    v = api.detail("pair/v.safetensors")
    assert (v["base_model"], v["preview"], v["siblings"]) == ("SDXL 1.0", "v.webp", [])
    # When one of the y pair (no sidecars) is deleted, the other stays and is no duplicate any more
    assert api("DELETE", "/models/loras/0/pair/y.pt").status_code == 204
    assert api("GET", "/duplicates").json() == []
    # When the last model of a stem is deleted or moved, its sidecars go with it
    assert api("DELETE", "/models/loras/0/pair/v.safetensors").status_code == 204
    assert api.move("pair/x.sft", "alone/x.sft").status_code == 200
    assert names(d) == ["solo.md", "solo.safetensors", "y.ckpt"]
    assert names(d.parent / "alone") == ["x.civitai.info", "x.md", "x.sft", "x.webp"]
    # And the web process's listing followed every change from the change log, without re-reading every row
    assert api.rels() == ["alone/x.sft", "moved/z.gguf", "pair/solo.safetensors", "pair/y.ckpt"]
    assert listing.full_reloads == reloads


def test_verify_checks_each_file_of_a_pair_in_a_worker(settings: Settings, client: Any, workers: Any) -> None:
    # Given a scanned pair whose description records the safetensors' SHA256, and a worker
    StoreLayout(settings.store).ensure_default_dirs()
    d = build_pairs(settings.store / "loras")
    scan(settings, folder="loras")
    workers(queues=["verify"])
    refs = [{"folder": "loras", "path_index": 0, "relpath": f"pair/x.{ext}"} for ext in ("gguf", "safetensors")]

    def verify() -> dict[str, str]:
        task = client.post("/api/v1/verifications", json={"models": refs}).json
        done = wait_for(lambda: (t := client.get(f"/api/v1/tasks/{task['id']}").json)["state"] in
                        ("succeeded", "failed") and t, timeout=60, what="verify finished")
        assert done["state"] == "succeeded", done
        return {f["model"]["relpath"]: f["status"] for f in done["result"]["files"]}

    # When both are verified, each is checked against its own hashes (the sidecar's are the other file's)
    assert verify() == {"pair/x.gguf": "ok", "pair/x.safetensors": "ok"}
    # When the GGUF is damaged in place, only it is a mismatch
    data = bytearray((d / "x.gguf").read_bytes())
    data[-1] ^= 0xFF
    (d / "x.gguf").write_bytes(bytes(data))
    assert verify() == {"pair/x.gguf": "mismatch", "pair/x.safetensors": "ok"}
    listed = {m["relpath"]: m["verify_status"] for m in client.get("/api/v1/models?q=xword").json["items"]}
    assert listed == {"pair/x.gguf": "mismatch", "pair/x.safetensors": "ok"}
    # When the pair is split (the v GGUF moves away with copies of the sidecars), each is still checked
    # against its own bytes, not against the hash the copies record
    r = client.patch("/api/v1/models/loras/0/pair/v.gguf", json={"move_to": {"relpath": "split/v.gguf"}})
    assert r.status_code == 200, r.json
    assert (d.parent / "split" / "v.md").exists() and (d / "v.md").exists()
    refs[:] = [{"folder": "loras", "path_index": 0, "relpath": rel} for rel in ("split/v.gguf", "pair/v.safetensors")]
    assert verify() == {"split/v.gguf": "ok", "pair/v.safetensors": "ok"}
