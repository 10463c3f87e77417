"""The training-file build sweeper: stale builds are re-enqueued, live ones left alone, lost ones fail.

The worker-kill end to end lives in tests/integration/test_worker_faults.py; these call the service directly.
"""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from brightrun.heartbeat import Heartbeat
from brightrun.schedules import SCHEDULES
from brightrun.storage import file_storage
from training_files.models import TrainingFileVersion
from training_files.services import build as builder
from training_files.services import (
    training_file_build,
    training_file_build_retry,
    training_file_builds_sweep,
    training_file_create,
)
from training_files.services.files import _BuildClaim, _claim
from training_files.tasks import training_file_build_task, training_file_builds_sweep_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def building(local_storage, owner_user, make_trainable, django_capture_on_commit_callbacks, settings):
    """Version 1 of a new file, enqueued but not built (its message captured, not run)."""
    settings.TRAINING_FILE_BUILD_STALE_SECONDS = 900
    settings.TRAINING_FILE_BUILD_MAX_ATTEMPTS = 2
    conversations = [make_trainable(owner_user, exchanges=n) for n in (2, 3)]
    with django_capture_on_commit_callbacks(execute=False):
        training_file, _ = training_file_create(
            owner=owner_user, name="Swept", conversation_ids=[c.pk for c in conversations]
        )
    return training_file.versions.get()


def _age(version: TrainingFileVersion, *, claimed: timedelta | None, updated: timedelta, attempts: int = 0) -> None:
    now = timezone.now()
    TrainingFileVersion.objects.filter(pk=version.pk).update(
        claimed_at=None if claimed is None else now - claimed, updated_at=now - updated, build_attempts=attempts
    )


def test_a_build_whose_worker_stopped_heartbeating_is_enqueued_again_and_builds_once(
    building, django_capture_on_commit_callbacks
):
    _age(building, claimed=timedelta(minutes=16), updated=timedelta(minutes=16), attempts=1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = training_file_builds_sweep()
    assert (result.requeued, result.failed) == (1, 0)
    assert len(callbacks) == 1
    building.refresh_from_db()
    assert building.status == "building" and building.claimed_at is None and building.build_attempts == 1

    with django_capture_on_commit_callbacks(execute=False) as again:
        assert training_file_builds_sweep().requeued == 0  # released and freshly touched: not stale
    assert not again

    assert training_file_build_task(str(building.pk)) == "ready"
    building.refresh_from_db()
    assert building.build_attempts == 2 and building.claimed_at is None
    assert building.training_file.current_version_id == building.pk
    assert training_file_build_task(str(building.pk)) is None  # a late redelivery of the dead message: no-op


def test_a_live_or_recent_build_is_left_alone(building, django_capture_on_commit_callbacks):
    _age(building, claimed=timedelta(minutes=14), updated=timedelta(minutes=30), attempts=1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert training_file_builds_sweep().requeued == 0
    assert not callbacks
    _age(building, claimed=None, updated=timedelta(minutes=14))
    assert training_file_builds_sweep().requeued == 0  # enqueued recently, waiting in the queue


def test_a_build_never_claimed_is_enqueued_again(building, django_capture_on_commit_callbacks):
    _age(building, claimed=None, updated=timedelta(minutes=20))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert training_file_builds_sweep().requeued == 1
    assert len(callbacks) == 1
    building.refresh_from_db()
    assert building.build_attempts == 0  # only a claim counts as an attempt


def test_the_last_lost_attempt_fails_the_version_and_removes_its_leftovers(
    building, django_capture_on_commit_callbacks
):
    storage = file_storage()
    leftover = builder.storage_key(building, builder.CHAT_JSONL)
    storage.save(leftover, io.BytesIO(b"partial"))
    _age(building, claimed=timedelta(hours=1), updated=timedelta(hours=1), attempts=2)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = training_file_builds_sweep()
    assert (result.requeued, result.failed) == (0, 1)
    assert not callbacks
    building.refresh_from_db()
    assert building.status == "failed" and building.error.startswith("build_lost:")
    assert not storage.exists(leftover)
    assert training_file_builds_sweep() == type(result)(requeued=0, failed=0)

    with django_capture_on_commit_callbacks(execute=False):
        retried = training_file_build_retry(version=building, actor=building.owner)
    assert retried.status == "building" and retried.build_attempts == 0
    assert training_file_build(version=retried).status == "ready"


def test_the_heartbeat_keeps_the_claim_and_stops_once_the_sweeper_took_it(building):
    token = _claim(building)
    assert token is not None and _claim(building) is None  # one claimant
    claim = _BuildClaim(building.pk, token)
    assert claim.beat() is True
    building.refresh_from_db()
    assert building.claimed_at == claim.token and claim.token > token

    TrainingFileVersion.objects.filter(pk=building.pk).update(claimed_at=None)  # what the sweeper does
    assert claim.beat() is False
    assert claim.mine().update(status="ready") == 0  # a run that lost its claim cannot finish the version


def test_heartbeat_calls_beat_until_stopped_or_lost():
    beats: list[int] = []

    def beat() -> bool:
        beats.append(1)
        return len(beats) < 3

    with Heartbeat(beat, 0.05) as heartbeat:
        deadline = time.monotonic() + 10
        while not heartbeat.lost and time.monotonic() < deadline:
            time.sleep(0.02)
    assert heartbeat.lost and len(beats) == 3


def test_sweeper_task_and_schedule(building):
    _age(building, claimed=None, updated=timedelta(hours=1))
    assert training_file_builds_sweep_task() == {"requeued": 1, "failed": 0}
    schedule = next(s for s in SCHEDULES if s.task == "training_files.tasks.training_file_builds_sweep_task")
    assert schedule.when.seconds == 60
