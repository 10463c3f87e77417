"""Scheduled dataset maintenance (SPEC §9.1, §12): the validation sweeper and the deleted-file cleanup.

Both are unscoped (beat acts for every owner) and idempotent: running them twice, or on two machines at
once, changes each row at most once because every change is a conditional update.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from brightrun.storage import file_storage
from datasets.models import Dataset, DatasetValidation
from datasets.services.lifecycle import dataset_validation_enqueue
from datasets.services.runs import dataset_validation_gave_up

logger = logging.getLogger(__name__)
Status = Dataset.Status


@dataclass(frozen=True)
class SweepResult:
    requeued: int
    expired: int


def datasets_sweep(*, now: datetime | None = None) -> SweepResult:
    """Re-enqueue datasets stuck in ``validating``; delete uploads never confirmed in time.

    Stuck means: enqueued but never claimed for longer than ``DATASET_VALIDATION_STUCK_MINUTES`` (a lost
    message), claimed and silent that long (a killed worker: a live run touches ``updated_at`` every third of
    that window, see ``runs.dataset_validate``, so a long validation is never run twice), or released after a
    failed attempt. Expired uploads are soft-deleted and their (partial) object removed at once: nothing refers
    to a file that was never confirmed.
    """
    now = now or timezone.now()
    stale = now - timedelta(minutes=settings.DATASET_VALIDATION_STUCK_MINUTES)
    stuck = Dataset.objects.filter(status=Status.VALIDATING).filter(
        Q(validation_started_at__lt=stale, updated_at__lt=stale)
        | Q(validation_started_at=None, validation_enqueued_at__lt=stale)
        | Q(validation_started_at=None, validation_enqueued_at=None)
    )
    requeued = 0
    fields = ("pk", "validation_started_at", "validation_enqueued_at", "validation_attempts", "updated_at")
    for dataset in stuck.only(*fields):
        current = Dataset.objects.filter(
            pk=dataset.pk,
            status=Status.VALIDATING,
            validation_started_at=dataset.validation_started_at,
            validation_enqueued_at=dataset.validation_enqueued_at,
            updated_at=dataset.updated_at,  # a heartbeat since the select: the run is alive after all
        )
        if dataset.validation_attempts >= settings.DATASET_VALIDATION_MAX_ATTEMPTS:
            if current.update(
                status=Status.INVALID,
                error=f"Validation did not finish after {dataset.validation_attempts} attempts.",
                validated_at=now,
                updated_at=now,
            ):
                _end_lost_runs(dataset, now)
                dataset_validation_gave_up(dataset=Dataset.objects.get(pk=dataset.pk))
            continue
        if current.update(validation_started_at=None, updated_at=now):
            _end_lost_runs(dataset, now)
            dataset_validation_enqueue(dataset=dataset)
            requeued += 1
    expired = 0
    storage = file_storage()
    for dataset in Dataset.objects.filter(status=Status.UPLOADING, upload_expires_at__lt=now).only("pk", "storage_key"):
        changed = Dataset.objects.filter(pk=dataset.pk, status=Status.UPLOADING).update(
            status=Status.DELETED,
            deleted_at=now,
            error="The upload was never confirmed and expired.",
            updated_at=now,
        )
        if changed:
            expired += 1
            if storage.exists(dataset.storage_key):
                storage.delete(dataset.storage_key)
            Dataset.objects.filter(pk=dataset.pk).update(file_removed_at=now)
    return SweepResult(requeued=requeued, expired=expired)


def _end_lost_runs(dataset: Dataset, now: datetime) -> None:
    """A run still ``running`` when its dataset is swept lost its worker: it ends ``failed`` (history, no result)."""
    DatasetValidation.objects.filter(dataset_id=dataset.pk, status=DatasetValidation.Status.RUNNING).update(
        status=DatasetValidation.Status.FAILED,
        error="The worker running this validation stopped; it was run again.",
        finished_at=now,
    )


def datasets_cleanup_deleted(*, now: datetime | None = None) -> int:
    """Remove the stored files of datasets deleted more than ``DATASET_DELETED_RETENTION_DAYS`` ago."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.DATASET_DELETED_RETENTION_DAYS)
    storage = file_storage()
    removed = 0
    due = Dataset.objects.filter(status=Status.DELETED, deleted_at__lt=cutoff, file_removed_at=None)
    for dataset in due.only("pk", "storage_key"):
        try:
            if storage.exists(dataset.storage_key):
                storage.delete(dataset.storage_key)
        except Exception:  # one unreachable object must not stop the others; the next run retries it
            logger.exception("dataset %s: could not delete %s", dataset.pk, dataset.storage_key)
            continue
        removed += Dataset.objects.filter(pk=dataset.pk, file_removed_at=None).update(file_removed_at=now)
    return removed
