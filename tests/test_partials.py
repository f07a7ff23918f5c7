"""The partial-file name and the download lease key are written by the downloader and read by the hygiene job
from one module: a partial written by any attempt, on a host whose name has dots, parses back to its task and
target, and the lease the downloader holds is the one the cleanup tries."""
from __future__ import annotations

from pathlib import Path

import pytest

from shared.downloads.publish import TargetLease
from shared.partials import PARTIAL_RE, candidate_targets, download_lock_name, is_partial_name, partial_for


@pytest.mark.parametrize("host", ["gpu1", "gpu.rack-2.example", "a"])
@pytest.mark.parametrize("name", ["x.safetensors", "v1.5 model.ckpt", "ü.gguf", "a.b.c.sft"])
def test_a_partial_parses_back_to_its_task_and_target(tmp_path: Path, host: str, name: str) -> None:
    target = tmp_path / "loras" / name
    part = partial_for(target, host, "01J0ABCDEF", 12)
    assert is_partial_name(part.name) and PARTIAL_RE.match(part.name)
    task_id, targets = candidate_targets(part)
    assert task_id == "01J0ABCDEF"
    assert target in targets
    assert download_lock_name(target) in {download_lock_name(t) for t in targets}


def test_the_downloaders_lease_is_the_key_the_cleanup_takes(redis, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "loras" / "x.safetensors"
    lease = TargetLease(redis, target, settings)
    assert lease.lock.name == download_lock_name(target)
