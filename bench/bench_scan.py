"""Scan and listing speed on a generated tree of 100,000 files (40 % tiny ``.safetensors`` models, 60 % ``.png``
/ ``.md`` / ``.json`` sidecars) in 1,000 folders, against a bare recursive ``os.scandir`` + ``entry.stat()`` walk
measured in the same run. Rows: the first quick scan (hashing excluded: ``lazy_hash_bytes=0``; target ≤ 2× the
walk) with its scan processes and, for comparison, with none (``scan_processes=1``), a no-change rescan (target
≤ 1.3× with zero hashes), paging the whole listing through the API with the Flask test client (target ≤ 1× the
rescan), and the first page after one model changed (caught up from the change log) and after a change the log
cannot account for (every row re-read). The scans are the real job (``run_scan`` with a task record) on a
private redis-server. Usage: ``python -m bench scan [--files N] [--rounds R]``."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._stack import Stack


def build_tree(root: Path, files: int) -> int:
    """``orgNN/modelNNN/`` leaf folders of 100 files; returns the number of models."""
    models = 0
    per_leaf = 100
    leaves = max(1, files // per_leaf)
    md = "---\nbaseModel: SDXL 1.0\nwebsite: Civitai\n---\n\n# Trigger Words\n\nword{n}, style\n"
    for leaf in range(leaves):
        d = root / f"org{leaf // 100:02d}" / f"model{leaf % 100:03d}"
        d.mkdir(parents=True)
        for i in range(40):
            (d / f"part{i:02d}.safetensors").write_bytes(b"\x08" + b"\x00" * (7 + i % 57))
            if i < 20:
                (d / f"part{i:02d}.png").write_bytes(b"\x89PNG" + b"\x00" * (i * 50))
                (d / f"part{i:02d}.md").write_text(md.format(n=i))
            else:
                (d / f"part{i:02d}.json").write_text(json.dumps({"activation text": f"w{i}", "sd version": "SDXL"}))
        models += 40
    return models


def bare_walk(root: str) -> int:
    n, stack = 0, [root]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir():
                    stack.append(entry.path)
                else:
                    entry.stat()
                    n += 1
    return n


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="bench scan")
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    stack = Stack({"DEPOT_LAZY_HASH_BYTES": "0", "DEPOT_PROGRESS_INTERVAL_S": "1"})
    try:
        _run(stack, args)
    finally:
        stack.close()


def _scan_once(stack: Stack, **overrides: Any) -> dict[str, Any]:
    from shared.jobs import JobContext
    from shared.scan import run_scan, submit_params
    from shared.services import Services
    settings = stack.settings()
    services = Services.build(settings.replace(**overrides) if overrides else settings)
    params = submit_params("quick", "loras")
    task, _ = services.records.create("scan", params, queue="scan")
    claim = services.records.claim(task["id"], host="bench", worker="bench")
    ctx = JobContext(services.records, task["id"], claim.attempt, params, "bench")
    return run_scan(ctx, services)


def _wipe_index(stack: Stack) -> None:
    keys = list(stack.redis.scan_iter("depot:store:*"))
    if keys:
        stack.redis.delete(*keys)


def _page_all(client: Any, limit: int = 1000) -> int:
    seen, offset = 0, 0
    while True:
        body = client.get(f"/api/v1/models?folder=loras&sort=name&limit={limit}&offset={offset}").get_json()
        seen += len(body["items"])
        offset += limit
        if offset >= body["total"]:
            return seen


def _run(stack: Stack, args: argparse.Namespace) -> None:
    from shared.store.layout import StoreLayout
    from web import create_app
    settings = stack.settings()
    StoreLayout.from_settings(settings)
    root = settings.store / "loras"
    t_build, models = _timed(lambda: build_tree(root, args.files))
    os.sync()  # measure the tree at rest, not the kernel writing it back
    bare_walk(str(root))  # warm the dentry/inode cache
    walks = [_timed(lambda: bare_walk(str(root)))[0] for _ in range(args.rounds)]
    walk = statistics.median(walks)
    firsts, alones = [], []
    for _ in range(args.rounds):  # each first scan starts from an empty index
        _wipe_index(stack)
        t_alone, alone = _timed(lambda: _scan_once(stack, scan_processes=1))
        assert alone["added"] == models and alone["processes"] == 0, alone
        alones.append(t_alone)
        _wipe_index(stack)
        t, first = _timed(lambda: _scan_once(stack))
        assert first["added"] == models and first["hashed"] == 0 and first["processes"] > 1, first
        firsts.append(t)
    t_first, t_alone = statistics.median(firsts), statistics.median(alones)
    rescans = []
    for _ in range(args.rounds):
        t, res = _timed(lambda: _scan_once(stack))
        assert res["hashed"] == 0 and res["added"] == res["changed"] == res["removed"] == 0, res
        rescans.append(t)
    rescan = statistics.median(rescans)
    client = create_app(settings).test_client()
    _page_all(client)  # first request builds per-process state
    pages = []
    for _ in range(args.rounds):
        t, seen = _timed(lambda: _page_all(client))
        assert seen == models, seen
        pages.append(t)
    listing = statistics.median(pages)
    from shared.store.index import StoreIndex
    writer = StoreIndex(stack.redis, settings)
    first_page = "/api/v1/models?folder=loras&sort=name&limit=100"  # the order the listing above built
    catch_ups, rebuilds = [], []
    for i in range(args.rounds):
        doc = writer.lookup("loras", 0, "org00/model000/part00.safetensors")
        doc["title"] = f"renamed {i}"
        writer.put_docs([doc])  # one model changed, as a download or a rename does: the page catches up
        catch_ups.append(_timed(lambda: client.get(first_page))[0])
    for _ in range(args.rounds):
        stack.redis.incr("depot:store:gen")  # a change the log cannot account for: every row is re-read
        rebuilds.append(_timed(lambda: client.get(first_page))[0])
    catch_up, rebuild = statistics.median(catch_ups), statistics.median(rebuilds)
    files = bare_walk(str(root))
    print(f"scan: {files} files ({models} models) in {files // 100} folders, built in {t_build:.1f} s; "
          f"median of {args.rounds}")
    print(f"  bare os.scandir + entry.stat()   {walk:7.3f} s   1.00x")
    print(f"  first quick scan (no hashing)    {t_first:7.3f} s   {t_first / walk:5.2f}x walk   target <= 2.00x "
          f"{'OK' if t_first <= 2 * walk else 'MISSED'}  ({first['processes']} scan processes)")
    print(f"  same, one process                {t_alone:7.3f} s   {t_alone / walk:5.2f}x walk")
    print(f"  no-change rescan (0 hashes)      {rescan:7.3f} s   {rescan / walk:5.2f}x walk   target <= 1.30x "
          f"{'OK' if rescan <= 1.3 * walk else 'MISSED'}")
    print(f"  list all {models} via API (1000/page) {listing:7.3f} s   {listing / rescan:5.2f}x rescan target <= 1.00x "
          f"{'OK' if listing <= rescan else 'MISSED'}")
    print(f"  first page after one model changed {catch_up:7.3f} s   (caught up from the change log)")
    print(f"  first page after an unlogged change {rebuild:7.3f} s   (re-reads the {models} sort rows)")


if __name__ == "__main__":
    main()
