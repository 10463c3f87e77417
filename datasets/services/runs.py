"""Running the validator on a stored dataset and recording the result (SPEC §9.2).

Called by ``datasets.tasks.dataset_validate_task`` only. A run claims the dataset with a conditional update,
reads the object from storage by byte ranges through :func:`datasets.validation.validate_ranges` (several cores,
memory independent of size; :func:`~datasets.validation.validate_stream` when the size is unknown) and finishes
with a conditional update, so a duplicate delivery of the task, a re-enqueue by the sweeper or a delete in the
meantime never produces two results.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from brightrun.heartbeat import Heartbeat
from brightrun.models import Notification
from brightrun.services import notification_create
from brightrun.storage import open_range, open_stream
from datasets.models import Dataset, DatasetValidation
from datasets.validation import ValidationReport, validate_ranges, validate_stream

logger = logging.getLogger(__name__)
Status = Dataset.Status


def _claim(dataset_id: Any) -> Dataset | None:
    """Mark the run started (one claimant wins); ``None`` when the dataset is not waiting for validation."""
    now = timezone.now()
    claimed = Dataset.objects.filter(pk=dataset_id, status=Status.VALIDATING, validation_started_at=None).update(
        validation_started_at=now, validation_attempts=F("validation_attempts") + 1, updated_at=now
    )
    if not claimed:
        return None
    return Dataset.objects.get(pk=dataset_id)


def dataset_validation_gave_up(*, dataset: Dataset) -> None:
    """Tell the owner that a dataset the sweeper marked ``invalid`` (attempts used up) could not be checked."""
    _notify(dataset)


def _notify(dataset: Dataset) -> None:
    link = reverse("datasets:detail", args=[dataset.pk])
    if dataset.status == Status.READY:
        notification_create(
            owner=dataset.owner,
            type=Notification.Type.DATASET_READY,
            title=f"Dataset “{dataset.name}” is ready",
            message=f"{dataset.example_count:,} examples, {dataset.trainable_pairs:,} trainable pairs, "
            f"{dataset.warning_count:,} warnings.",
            link=link,
            priority=Notification.Priority.LOW,
        )
    else:
        reason = dataset.error or f"{dataset.error_count:,} errors; the report lists them by line."
        notification_create(
            owner=dataset.owner,
            type=Notification.Type.DATASET_INVALID,
            title=f"Dataset “{dataset.name}” is invalid",
            message=reason,
            link=link,
            priority=Notification.Priority.HIGH,
        )


@transaction.atomic
def _finish(dataset: Dataset, run: DatasetValidation, report: ValidationReport) -> Dataset | None:
    data = report.as_dict()
    now = timezone.now()
    DatasetValidation.objects.filter(pk=run.pk).update(
        status=DatasetValidation.Status.COMPLETED,
        result=data["status"],
        format=data["format"] or "",
        counts=data["counts"],
        error_count=data["error_count"],
        warning_count=data["warning_count"],
        issues=data["issues"],
        issues_truncated=data["issues_truncated"],
        statistics=data["statistics"],
        settings=data["settings"],
        bytes_read=data["bytes"],
        lines=data["lines"],
        duration_seconds=data["duration_seconds"],
        finished_at=now,
    )
    statistics = data["statistics"]
    finished = Dataset.objects.filter(
        pk=dataset.pk, status=Status.VALIDATING, validation_started_at=dataset.validation_started_at
    ).update(
        status=Status.READY if report.is_valid else Status.INVALID,
        format=data["format"] or "",
        example_count=statistics.get("examples") or 0,
        trainable_pairs=statistics.get("trainable_pairs") or 0,
        error_count=data["error_count"],
        warning_count=data["warning_count"],
        issue_counts=data["counts"],
        statistics=statistics,
        validated_at=now,
        error="",
        updated_at=now,
    )
    if not finished:  # deleted or re-claimed meanwhile: the run stays as history, the dataset is untouched
        return None
    dataset.refresh_from_db()
    _notify(dataset)
    return dataset


@transaction.atomic
def _fail(dataset: Dataset, run: DatasetValidation, error: str) -> Dataset | None:
    """Record a run that could not complete; the last allowed attempt makes the dataset ``invalid``."""
    now = timezone.now()
    DatasetValidation.objects.filter(pk=run.pk).update(
        status=DatasetValidation.Status.FAILED, error=error[:2000], finished_at=now
    )
    base = Dataset.objects.filter(
        pk=dataset.pk, status=Status.VALIDATING, validation_started_at=dataset.validation_started_at
    )
    if dataset.validation_attempts < settings.DATASET_VALIDATION_MAX_ATTEMPTS:
        # Released with no enqueue time: the sweeper's next pass enqueues it again.
        base.update(validation_started_at=None, validation_enqueued_at=None, error=error[:2000], updated_at=now)
        return None
    if base.update(status=Status.INVALID, error=error[:2000], validated_at=now, updated_at=now):
        dataset.refresh_from_db()
        _notify(dataset)
        return dataset
    return None


def dataset_validate(*, dataset_id: Any) -> Dataset | None:
    """Validate a dataset in ``validating`` state; returns it when this run decided its status.

    Safe to call twice: only the claimant runs. While the validator runs, a heartbeat touches ``updated_at``
    every third of ``DATASET_VALIDATION_STUCK_MINUTES`` so the sweeper never re-runs a live validation (a
    killed worker's stops, and the sweeper re-enqueues it). Storage errors are recorded on the run; the sweeper
    re-enqueues the dataset until ``DATASET_VALIDATION_MAX_ATTEMPTS``, after which it is ``invalid`` with the
    error. Unscoped by design (a worker acts for the owner).
    """
    dataset = _claim(dataset_id)
    if dataset is None:
        return None
    run = DatasetValidation.objects.create(owner_id=dataset.owner_id, dataset=dataset)
    options = {
        "format": dataset.requested_format,
        "context_tokens": dataset.context_tokens,
        "max_bytes": settings.DATASET_MAX_BYTES,
    }
    key = dataset.storage_key
    heartbeat = Heartbeat(
        _beat(dataset), settings.DATASET_VALIDATION_STUCK_MINUTES * 60 / 3, name=f"validate-{dataset.pk}"
    )
    try:
        with heartbeat:
            report = _run_validator(key, dataset.size, options)
    except (OSError, BotoCoreError, ClientError) as exc:  # missing object, storage down: retried by the sweeper
        logger.warning("dataset %s: cannot read %s: %s", dataset.pk, key, exc)
        return _fail(dataset, run, f"The dataset file could not be read from storage ({type(exc).__name__}).")
    except Exception as exc:
        logger.exception("dataset %s: validation failed", dataset.pk)
        return _fail(dataset, run, f"Validation stopped: {type(exc).__name__}: {exc}")
    return _finish(dataset, run, report)


def _beat(dataset: Dataset) -> Callable[[], bool]:
    """The run's sign of life for the sweeper: touch ``updated_at`` while this claim still holds."""

    def beat() -> bool:
        return bool(
            Dataset.objects.filter(
                pk=dataset.pk, status=Status.VALIDATING, validation_started_at=dataset.validation_started_at
            ).update(updated_at=timezone.now())
        )

    return beat


def _run_validator(key: str, size: int, options: dict[str, Any]) -> ValidationReport:
    if size:
        # Byte ranges of the object, validated on several cores (the same report as one sequential pass).
        return validate_ranges(lambda start, end: open_range(key, start, end), size, **options)
    stream = open_stream(key)  # size unknown: one sequential stream
    try:
        return validate_stream(stream, **options)
    finally:
        stream.close()
