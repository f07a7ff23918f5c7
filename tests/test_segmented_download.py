"""Downloads over several connections against the fake upstream over real loopback HTTP and real Redis: byte-exact
with every hash computed inline, one stream when the server ignores Range or the file changes mid-way, a stalled
segment and a 429 on one segment retried, the per-origin ceiling held, and pause resuming only the missing
ranges. ``run_download`` is called directly (the worker wiring, SIGKILL and two processes: the tests below
the line)."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

from shared.downloads.job import run_download
from shared.downloads.segment_file import SegmentMap
from shared.errors import JobInterrupted
from shared.media.hashing import ALL, hash_file
from tests.download_support import job_context, safetensors_bytes
from tests.support import wait_for

MIB = 1024 * 1024
SIZE = 8 * MIB + 4321
PATH = "/files/big.safetensors"


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_STALL_S": "1", "DEPOT_CHUNK_BYTES": str(256 * 1024), "DEPOT_DOWNLOAD_CONNECTIONS": "4",
                         "DEPOT_SEGMENT_BYTES": str(MIB), "DEPOT_ALLOW_PRIVATE_URLS": "true"})
    return settings_env


def _download(settings: Any, url: str) -> tuple[dict[str, Any], list[str]]:
    """Run one download of ``url`` into ``loras``: its result and the lines it logged."""
    ctx, services = job_context(settings, {"url": url, "folder": "loras"})
    result = run_download(ctx, services)
    return result, _logs(services, ctx.task_id)


def _logs(services: Any, task_id: str) -> list[str]:
    return [str(e["task"].get("message")) for e in services.records.events(task_id) if e["type"] == "log"]


def _target(settings: Any) -> Path:
    return Path(settings.store) / "loras" / "big.safetensors"


def _capped(upstream: Any) -> None:
    """Every connection to the fake held to 32 MiB/s, as a CDN holds it (an uncapped loopback server is fetched
    over one connection: more would only add work)."""
    upstream.fault(PATH, "slow", bytes_per_s=32 * MIB, times=None)


def _exact(settings: Any, data: bytes, result: dict[str, Any]) -> None:
    target = _target(settings)
    assert target.read_bytes() == data
    assert result["hashes"] == hash_file(target, ALL)  # every inline hash is the whole file's
    assert result["hashes"]["SHA256"] == hashlib.sha256(data).hexdigest().upper()
    assert not [p.name for p in target.parent.iterdir() if p.name.endswith(".part")]


def test_a_segmented_download_is_byte_exact_with_every_hash(settings, upstream):
    data = safetensors_bytes(SIZE)
    url = upstream.add_direct(PATH, data)
    _capped(upstream)
    result, said = _download(settings, url)
    _exact(settings, data, result)
    # several connections, each fetching its own ranges: the bytes crossed the wire once
    assert upstream.requests(PATH) >= 4 and upstream.max_active() >= 2
    assert upstream.bytes_served(PATH) <= SIZE + 4 * MIB  # the first connection's body beyond segment 0 at most
    assert any("4 connections, 9 segments" in m for m in said)


def test_a_server_that_is_not_capped_gets_one_stream(settings, upstream):
    data = safetensors_bytes(SIZE)
    url = upstream.add_direct(PATH, data)
    result, said = _download(settings, url)
    _exact(settings, data, result)
    assert upstream.max_active() == 1 and upstream.bytes_served(PATH) == len(data)
    assert any(m.startswith("one connection:") and "faster than" in m for m in said)


def test_a_server_that_ignores_range_gets_one_stream(settings, upstream):
    data = safetensors_bytes(SIZE)
    url = upstream.add_direct(PATH, data)
    upstream.fault(PATH, "ignore_range", times=None)
    result, said = _download(settings, url)
    _exact(settings, data, result)
    assert upstream.max_active() == 1 and upstream.bytes_served(PATH) == len(data)


def test_a_file_that_changes_mid_download_is_fetched_again_over_one_stream(settings, upstream):
    old, new = safetensors_bytes(SIZE, seed=1), safetensors_bytes(SIZE, seed=7)
    url = upstream.add_direct(PATH, old)
    upstream.fault(PATH, "slow", bytes_per_s=2 * MIB, times=None)
    ctx, services = job_context(settings, {"url": url, "folder": "loras"})
    out: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: out.update(result=run_download(ctx, services)))
    runner.start()
    wait_for(lambda: upstream.bytes_served(PATH) >= 2 * MIB, timeout=30, what="the first segments")
    upstream.add_direct(PATH, new)  # a new version: another ETag
    upstream.clear_faults()
    runner.join(60)
    _exact(settings, new, out["result"])
    assert any("one connection from here: the file changed" in m for m in _logs(services, ctx.task_id))


def test_a_stalled_segment_is_fetched_again(settings, upstream):
    data = safetensors_bytes(SIZE)
    url = upstream.add_direct(PATH, data)
    _capped(upstream)
    upstream.fault(PATH, "stall", seconds=4, after=100_000, skip=2)  # the third connection stops mid-segment
    result, said = _download(settings, url)
    _exact(settings, data, result)
    assert any(m.startswith("segment retry") for m in said)


def test_a_429_on_one_segment_backs_the_origin_off_and_retries(settings, upstream, redis):
    data = safetensors_bytes(SIZE)
    url = upstream.add_direct(PATH, data)
    _capped(upstream)
    upstream.fault(PATH, 429, retry_after=1, skip=1)  # the second connection is told to slow down
    paused: list[int] = []
    watcher = threading.Event()

    def watch() -> None:  # the shared pause is visible to every worker while it lasts
        while not watcher.is_set():
            paused.extend(redis.pttl(k) for k in redis.scan_iter("depot:origin:*:pause"))
            watcher.wait(0.05)
    t = threading.Thread(target=watch)
    t.start()
    try:
        ctx, services = job_context(settings, {"url": url, "folder": "loras"})
        result = run_download(ctx, services)
    finally:
        watcher.set()
        t.join()
    _exact(settings, data, result)
    assert any(m.startswith("segment retry") and "429" in m for m in _logs(services, ctx.task_id)), \
        _logs(services, ctx.task_id)
    assert any(ms > 0 for ms in paused)


def test_pause_saves_the_finished_ranges_and_the_next_attempt_fetches_only_the_rest(settings, upstream):
    data = safetensors_bytes(SIZE)
    url = upstream.add_direct(PATH, data)
    upstream.fault(PATH, "slow", bytes_per_s=MIB, times=None)
    ctx, services = job_context(settings, {"url": url, "folder": "loras"})
    records = services.records
    stopped: list[BaseException] = []

    def run() -> None:
        try:
            run_download(ctx, services)
        except JobInterrupted as exc:
            stopped.append(exc)
    runner = threading.Thread(target=run)
    runner.start()
    wait_for(lambda: (records.get(ctx.task_id)["progress"]["done"] or 0) >= SIZE // 3, timeout=30,
             what="a third of the file")
    records.control(ctx.task_id, "pause")
    runner.join(10)
    assert stopped and stopped[0].state == "paused"
    smap = SegmentMap.loads(records.segments(ctx.task_id))
    assert smap is not None and smap.total == len(data)
    have = sum(e - s for s, e in smap.done)
    assert have >= SIZE // 3
    # When the task runs again (attempt 2), Then only the missing ranges cross the wire
    upstream.clear_faults()
    upstream.reset_counts()
    records.finish(ctx.task_id, ctx.attempt, "paused")  # what the worker's adapter does with JobInterrupted
    records.control(ctx.task_id, "resume")
    from tests.download_support import claim
    ctx2 = claim(services, ctx.task_id, ctx.params, host="otherhost")
    result = run_download(ctx2, services)
    _exact(settings, data, result)
    assert upstream.bytes_served(PATH) <= SIZE - have + 4 * MIB, (upstream.bytes_served(PATH), SIZE - have)
    said = _logs(services, ctx.task_id)
    assert any("bytes are here" in m for m in said)
    # the hashes read the finished ranges back once, and nothing more than that
    back = [m for m in said if "read back from the file" in m][-1]
    assert float(back.split("; ", 1)[1].split(" MiB")[0]) * MIB <= have + MIB, back


def test_a_slow_connection_s_segment_is_split_between_the_others(settings, upstream):
    data = safetensors_bytes(SIZE)
    url = upstream.add_direct(PATH, data)
    _capped(upstream)
    # the second connection crawls (the first's opening MiB, which tells a capped server, is left alone)
    upstream.fault(PATH, "slow", bytes_per_s=256 * 1024, times=1, skip=1)
    result, said = _download(settings, url)
    _exact(settings, data, result)  # every byte hashed once, in order, though written by several connections
    assert any("split between connections" in m for m in said), said


def test_one_connection_is_one_stream(settings, upstream):
    data = safetensors_bytes(SIZE)
    url = upstream.add_direct(PATH, data)
    ctx, services = job_context(settings.replace(download_connections=1), {"url": url, "folder": "loras"})
    result = run_download(ctx, services)
    _exact(settings, data, result)
    assert upstream.max_active() == 1 and upstream.bytes_served(PATH) == len(data)
    assert services.records.segments(ctx.task_id) is None
    assert not any("connections" in m for m in _logs(services, ctx.task_id))
