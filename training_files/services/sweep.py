"""The training-file build sweeper (beat, every minute): builds whose worker was lost are built again.

A build task acknowledges late, so a killed worker's message goes back to Redis, but only after the broker's
visibility timeout (hours). Meanwhile the version would stay ``building``. The sweeper finds versions that
are building with no sign of life for ``TRAINING_FILE_BUILD_STALE_SECONDS``: claimed and not heartbeating
(``claimed_at`` is refreshed every third of that window while a build runs, so a live build is never
taken), or never claimed since they were enqueued (``updated_at``; the message was lost). It releases the
claim and enqueues the build again; after ``TRAINING_FILE_BUILD_MAX_ATTEMPTS`` started builds the version
fails with ``build_lost``. The re-run is idempotent: the build claims by conditional update and stores its
files at fixed keys (a dead attempt's leftovers are overwritten, never duplicated).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from training_files.models import TrainingFileVersion
from training_files.services import build as builder
from training_files.services.files import build_stale_after, training_file_build_enqueue

logger = logging.getLogger(__name__)
Status = TrainingFileVersion.Status
#: Prefix of the error a version fails with when every allowed build attempt lost its worker.
BUILD_LOST = "build_lost"


@dataclass(frozen=True)
class BuildSweepResult:
    requeued: int
    failed: int


def training_file_builds_sweep(*, now: datetime | None = None) -> BuildSweepResult:
    """Re-enqueue stale ``building`` versions; fail those that used up their attempts. Returns the counts.

    Unscoped (beat acts for every owner). Each change is a conditional update on the claim the sweeper saw
    (``claimed_at`` and ``updated_at``), so a build that heartbeats or finishes meanwhile is left alone, and
    two sweepers at once change a version at most once.
    """
    now = now or timezone.now()
    stale = now - build_stale_after()
    candidates = TrainingFileVersion.objects.filter(status=Status.BUILDING).filter(
        Q(claimed_at__lt=stale) | Q(claimed_at__isnull=True, updated_at__lt=stale)
    )
    requeued = failed = 0
    for version in candidates.select_related("training_file"):
        seen = TrainingFileVersion.objects.filter(
            pk=version.pk, status=Status.BUILDING, claimed_at=version.claimed_at, updated_at=version.updated_at
        )
        if version.claimed_at is not None and version.build_attempts >= settings.TRAINING_FILE_BUILD_MAX_ATTEMPTS:
            error = (
                f"{BUILD_LOST}: the build did not finish after {version.build_attempts} attempts (the worker "
                "stopped each time). Rebuild the version to try again."
            )
            if seen.update(status=Status.FAILED, error=error, files={}, claimed_at=None, updated_at=now):
                failed += 1
                builder.delete_stored([builder.storage_key(version, fmt) for fmt in builder.FORMATS])
            continue
        with transaction.atomic():
            if seen.update(claimed_at=None, updated_at=now):
                training_file_build_enqueue(version=version)
                requeued += 1
    if requeued or failed:
        logger.warning("training file build sweep: %s re-enqueued, %s failed (worker lost)", requeued, failed)
    return BuildSweepResult(requeued=requeued, failed=failed)
