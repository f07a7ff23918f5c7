"""Stale partial downloads: removed when old and unleased and their task is not resumable; kept while a lease
holds the target, while young, or while their task can still adopt them. Runs as the beat job on a real worker."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from shared.downloads.publish import TargetLease
from shared.hygiene import clean_stale_partials
from shared.partials import partial_for
from shared.services import Services
from shared.states import TaskState
from workers.celery_app import make_celery

OLD = time.time() - 3 * 86400


def _partial(target: Path, host: str, task_id: str, *, old: bool = True) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = partial_for(target, host, task_id, 1)
    part.write_bytes(b"x" * 1024)
    if old:
        os.utime(part, (OLD, OLD))
    return part


@pytest.fixture
def services(settings) -> Services:
    return Services.build(settings)


def _finished_task(services: Services) -> str:
    task, _ = services.records.create("download", {"url": "u"}, queue="downloads")
    claim = services.records.claim(task["id"], host="h", worker="w@h")
    services.records.finish(task["id"], claim.attempt, TaskState.FAILED, error={"code": "x", "message": "x"})
    return task["id"]


def test_old_unleased_partial_of_a_finished_task_is_removed(services, settings):
    # Given an old partial of a failed task (its host died long ago), a model file and an unrelated dotfile
    loras = Path(settings.store) / "loras"
    target = loras / "style.safetensors"
    part = _partial(target, "gpu1", _finished_task(services))
    orphan = _partial(loras / "sub" / "other.safetensors", "gpu.rack2", "0123456789abcdef012345")
    model = loras / "kept.safetensors"
    model.write_bytes(b"model")
    dotfile = loras / ".notes.part.txt"
    dotfile.write_text("keep")
    # When the hygiene job runs
    removed = clean_stale_partials(services)
    # Then both stale partials (also one whose host name has dots, of an expired task) are gone, nothing else
    assert removed == 2 and not part.exists() and not orphan.exists()
    assert model.exists() and dotfile.exists()


def test_young_partial_is_kept(services, settings):
    part = _partial(Path(settings.store) / "vae" / "a.safetensors", "gpu1", _finished_task(services), old=False)
    assert clean_stale_partials(services) == 0
    assert part.exists()


def test_partial_under_a_held_lease_is_kept(services, settings):
    # Given an old partial whose target a download holds the lease on right now
    target = Path(settings.store) / "checkpoints" / "big.safetensors"
    part = _partial(target, "gpu2", _finished_task(services))
    with TargetLease(services.redis, target, settings):
        # When hygiene runs, Then the partial stays
        assert clean_stale_partials(services) == 0
        assert part.exists()
    # And once the lease is released it goes
    assert clean_stale_partials(services) == 1 and not part.exists()


@pytest.mark.parametrize("state", ["queued", "paused", "lost"])
def test_partial_of_a_resumable_task_is_kept(services, settings, state):
    task, _ = services.records.create("download", {"url": "u"}, queue="downloads")
    if state != "queued":
        claim = services.records.claim(task["id"], host="h", worker="w@h")
        if state == "paused":
            services.records.control(task["id"], "pause")
            services.records.finish(task["id"], claim.attempt, TaskState.PAUSED)
        else:
            services.records.expire_lease(task["id"])
            services.records.reap()
    assert services.records.get(task["id"])["state"] == state
    part = _partial(Path(settings.store) / "loras" / "r.safetensors", "gpu1", task["id"])
    assert clean_stale_partials(services) == 0 and part.exists()


def test_beat_job_runs_on_a_worker(services, settings, workers):
    # Given a worker on the maintenance queue and a stale partial
    workers(host="maint", queues=["maintenance"])
    part = _partial(Path(settings.store) / "loras" / "z.safetensors", "gpu3", _finished_task(services))
    # When beat's hygiene task is sent
    result = make_celery(settings).send_task("depot.maintenance.partials", queue="maintenance")
    # Then it removed the partial
    assert result.get(timeout=30) == 1
    assert not part.exists()
