"""Each process's copy of the search rows follows the index's change log on real Redis: after writes, renames
and removals made by another process, a process that was paging catches up from the log (without re-reading
every row) and pages exactly as a fresh process does; a change it cannot account for makes it re-read all."""
from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

from shared.config import Settings
from shared.store.index import GEN, SORTS, StoreIndex, build_doc

FOLDERS = ("loras", "checkpoints")
NAMES = ("alpha", "Beta", "gamma", "beta", "delta")  # repeats, so equal sort keys fall back to the id


def _doc(rng: random.Random, n: int) -> dict[str, Any]:
    st = SimpleNamespace(st_size=rng.choice((10, 20, 30)), st_mtime_ns=rng.choice((1, 2, 3)) * 10**18,
                         st_ctime_ns=rng.choice((1, 2)) * 10**18, st_ino=n)
    summary = {"name": rng.choice(NAMES), "trigger_words": [f"w{n % 7}"], "base_model": "SDXL 1.0"}
    return build_doc(rng.choice(FOLDERS), 0, f"d{n % 5}/m{n:04d}.safetensors", st, summary, None, None)


def _pages(index: StoreIndex) -> list[tuple[bytes, int]]:
    return [index.listing_json(folder=folder, q=q, sort=sort, order=order, limit=1000)
            for folder in (None, *FOLDERS) for sort in SORTS for order in ("asc", "desc") for q in (None, "w3")]


def _paged(settings: Settings, redis: Any, rng: random.Random) -> tuple[StoreIndex, StoreIndex, dict[int, Any]]:
    """A writer, the documents of 300 models it wrote, and a reader process that has paged every order."""
    writer, reader = StoreIndex(redis, settings), StoreIndex(redis, settings)
    docs = {n: _doc(rng, n) for n in range(300)}
    writer.put_docs(docs.values())
    _pages(reader)
    return writer, reader, docs


def test_a_paging_process_catches_up_from_the_change_log(settings: Settings, redis: Any) -> None:
    # Given an index of 300 models and a process that has paged every order of it
    rng = random.Random(3)
    writer, reader, docs = _paged(settings, redis, rng)
    reloads = reader.full_reloads
    # When another process adds, changes, renames and removes models, a few at a time
    for step in range(30):
        op = step % 4
        picked = rng.sample(sorted(docs), 3)
        if op == 0:
            new = {len(docs) + 1000 + i: _doc(rng, len(docs) + 1000 + i) for i in range(3)}
            docs.update(new)
            writer.put_docs(new.values())
        elif op in (1, 2):
            for n in picked:
                docs[n]["size"] = rng.choice((10, 20, 30, 40))
                docs[n]["title"] = rng.choice(NAMES) if op == 2 else docs[n]["title"]
            writer.put_docs(docs[n] for n in picked)
        else:
            writer.remove_ids([f"{d['folder']}/0/{d['relpath']}" for d in (docs.pop(n) for n in picked)],
                              edit_dirs=False)
        # Then every page of every order, filter and search equals a fresh process's
        assert _pages(reader) == _pages(StoreIndex(redis, settings)), step
    # And none of that needed a full re-read
    assert reader.full_reloads == reloads
    # When gen moves without a log entry (a writer the log does not know), the process re-reads everything
    redis.incr(GEN)
    assert _pages(reader) == _pages(StoreIndex(redis, settings))
    assert reader.full_reloads == reloads + 1


def test_a_process_far_behind_a_scan_that_only_recorded_hashes_catches_up_without_reading_all(
        settings: Settings, redis: Any) -> None:
    # Given a process that has paged every order of 300 models
    writer, reader, docs = _paged(settings, redis, random.Random(4))
    reloads = reader.full_reloads
    # When a scan records the hashes of every model, 100 at a time (their search rows do not change), and one
    # model is renamed
    for start in range(0, 300, 100):
        for n in range(start, start + 100):
            docs[n]["hashes"], docs[n]["hashed"] = {"SHA256": f"{n:064X}"}, True
        writer.put_docs(docs[n] for n in range(start, start + 100))
    docs[7]["title"] = "renamed"
    writer.put_docs([docs[7]])
    # Then the process catches up from the log (300 ids named, one row moved) and pages as a fresh one does
    assert _pages(reader) == _pages(StoreIndex(redis, settings))
    assert reader.full_reloads == reloads
