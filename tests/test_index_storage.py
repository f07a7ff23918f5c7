"""What the index keeps in Redis per model, on real Redis: a document without its unset keys (a million documents
pay for every key), read back whole, also as an older version stored it; the SHA256 of each id for the
duplicates, changing with the file; and the hourly cleanup deleting what an older version kept beside them."""
from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from shared.config import Settings
from shared.store.index import DOC, StoreIndex, build_doc, model_json, to_model


def _doc(relpath: str, sha: str | None = None, **summary: Any) -> Any:
    st = SimpleNamespace(st_size=10, st_mtime_ns=2 * 10**18, st_ctime_ns=10**18, st_ino=7)
    return build_doc("loras", 0, relpath, st, summary, None, {"SHA256": sha} if sha else None)


def test_a_document_is_stored_without_its_unset_keys_and_read_back_whole(settings: Settings, redis: Any) -> None:
    index = StoreIndex(redis, settings)
    # Given a model no sidecar describes and one with a title, a rating and a verdict
    bare = _doc("bare.safetensors")
    rich = _doc("rich.safetensors", "AB" * 32, name="Rich", base_model="SDXL 1.0", trigger_words=["ink"],
                nsfw_level=0, model_type="LoRA")
    rich["verify_status"], rich["verified_at"], rich["verify_reason"] = "ok", 1.5, ""
    index.put_docs([bare, rich])
    # Then Redis holds only what is set (a 0 and an empty string are set)
    stored = json.loads(redis.hget(DOC, "loras/0/bare.safetensors"))
    assert not {"title", "verify_status", "verified_at", "verify_reason", "nsfw_level", "model_type", "dir",
                "hashed", "hashes", "trigger_words", "preview", "source"} & set(stored)
    stored = json.loads(redis.hget(DOC, "loras/0/rich.safetensors"))
    assert stored["nsfw_level"] == 0 and stored["verify_reason"] == "" and stored["hashed"] is True
    # And both read back equal to what was written, with every key
    assert index.lookup("loras", 0, "bare.safetensors") == bare
    assert index.lookup("loras", 0, "rich.safetensors") == rich
    # And a listing's Model made from the stored bytes is the one of the whole document
    for doc in (bare, rich):
        raw = redis.hget(DOC, f"loras/0/{doc['relpath']}").encode()
        assert json.loads(model_json(raw)) == json.loads(json.dumps(to_model(doc)))


def test_a_document_an_older_version_stored_whole_reads_the_same(settings: Settings, redis: Any) -> None:
    doc = _doc("old.safetensors", name="Old")
    redis.hset(DOC, "loras/0/old.safetensors", json.dumps(doc))
    assert StoreIndex(redis, settings).lookup("loras", 0, "old.safetensors") == doc


def test_duplicates_follow_a_changed_hash_and_a_removal(settings: Settings, redis: Any) -> None:
    index = StoreIndex(redis, settings)
    index.put_docs([_doc("a.safetensors", "AA" * 32), _doc("b.safetensors", "AA" * 32),
                    _doc("c.safetensors", "CC" * 32)])
    assert [[m["relpath"] for m in g["models"]] for g in index.duplicates()] == [["a.safetensors", "b.safetensors"]]
    assert index.duplicate_ids() == {"loras/0/a.safetensors", "loras/0/b.safetensors"}
    # When b's bytes change, and then c gets a's hash and a is removed
    index.put_docs([_doc("b.safetensors", "BB" * 32)])
    assert index.duplicates() == [] and index.duplicate_ids() == frozenset()
    index.put_docs([_doc("c.safetensors", "AA" * 32)])
    assert index.duplicate_ids() == {"loras/0/a.safetensors", "loras/0/c.safetensors"}
    index.remove("loras", 0, "a.safetensors")
    # Then a file rebuilt without hashes leaves its group too
    index.put_docs([_doc("b.safetensors", "AA" * 32), _doc("c.safetensors")])
    assert index.duplicates() == []


def test_the_cleanup_deletes_what_an_older_version_kept_and_nothing_else(settings: Settings, redis: Any) -> None:
    index = StoreIndex(redis, settings)
    index.put_docs([_doc("a.safetensors", "AA" * 32)])
    kept = set(redis.keys("*"))
    # Given the per-model JSON and a set of ids per SHA256, as an older version wrote them
    redis.hset("depot:store:model", "loras/0/a.safetensors", "{}")
    for n in range(2500):
        redis.sadd(f"depot:store:sha:{n:064X}", f"loras/0/m{n}.safetensors")
    # When the cleanup runs
    assert index.drop_legacy_keys() == 2501
    # Then exactly those are gone
    assert set(redis.keys("*")) == kept
    assert index.duplicate_ids() == frozenset()
