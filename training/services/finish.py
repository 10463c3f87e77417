"""Terminal transitions of a training job: complete (artifact, quality, cost), fail, cancelled (SPEC §10.3).

Callers: the local runner, the remote callback handler and poller, ``training_job_cancel`` and the Celery
failure hook. Each service locks the job row, checks that the job is still active and moves it with a
conditional update, so a second call (a duplicate callback, a redelivered task, a cancel racing a finish) is a
no-op: a terminal job never changes again.

Cost (SPEC §10.3, §11): ``actual_cost`` = wall time from ``started_at`` (the trainer began stepping) to
``finished_at`` in hours × ``gpu_count`` × the GPU type's price per GPU-hour as quoted in the job's estimate
(the price the owner saw when creating the job; the catalogue's current price when the estimate lacks one). The
local backend is priced the same way: the measured wall time at the configured GPU type's price, i.e. what the
same run costs on that GPU, whatever the local machine actually is. A job that never started stepping cost
nothing (``actual_cost`` 0, no cost record); every job that did gets exactly one ``CostRecord`` of kind
training, whether it completed, failed or was cancelled.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from brightrun.errors import ApplicationError
from brightrun.models import CostRecord, Notification
from brightrun.services import cost_record_upsert, notification_create
from brightrun.storage import assert_owned_key, owned_key
from training.models import MetricPoint, ModelArtifact, TrainingEvent, TrainingJob
from training.services.common import clean_float, link_to, training_event_record, transition
from training.services.quality import quality_summary

Status = TrainingJob.Status
SOURCE_TYPE = "training.trainingjob"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HOUR = Decimal(3600)


def artifact_prefix(job: TrainingJob) -> str:
    """Where a job's artifact files live: ``users/<owner>/models/<job id>/``."""
    return owned_key(job.owner_id, "models", str(job.pk)) + "/"


def artifact_key(job: TrainingJob, name: str) -> str:
    """The storage key of one artifact file of ``job``."""
    return owned_key(job.owner_id, "models", str(job.pk), name)


def _price(job: TrainingJob) -> Decimal:
    quoted = (job.estimate or {}).get("price_per_hour")
    try:
        return Decimal(str(quoted)) if quoted is not None else job.gpu_type.price_per_hour
    except InvalidOperation:
        return job.gpu_type.price_per_hour


def training_job_cost(*, job: TrainingJob, finished_at: Any) -> Decimal:
    """GPU-hours × price of a job finishing at ``finished_at`` (module docstring); 0 when it never started."""
    if job.started_at is None:
        return Decimal("0")
    seconds = Decimal(str(max((finished_at - job.started_at).total_seconds(), 0.0)))
    cost = seconds / _HOUR * job.gpu_count * _price(job)
    return cost.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def _lock(job: TrainingJob) -> TrainingJob:
    return TrainingJob.objects.select_for_update(of=("self",)).select_related("gpu_type", "owner").get(pk=job.pk)


def _record_cost(job: TrainingJob, cost: Decimal, finished_at: Any) -> None:
    if job.started_at is None:
        return
    cost_record_upsert(
        owner=job.owner,
        kind=CostRecord.Kind.TRAINING,
        amount_usd=cost,
        source_type=SOURCE_TYPE,
        source_id=job.pk,
        description=f"Training “{job.name}” ({job.gpu_count} × {job.gpu_type.key}, {job.status})",
        incurred_at=finished_at,
    )


def _check_files(job: TrainingJob, files: Any) -> list[dict[str, Any]]:
    prefix = artifact_prefix(job)
    if not isinstance(files, list) or not files:
        raise ApplicationError("A completed job needs its artifact files.", code="invalid_artifact_files")
    entries, names = [], set()
    for entry in files:
        name = entry.get("name") if isinstance(entry, dict) else None
        key = entry.get("key") if isinstance(entry, dict) else None
        size = entry.get("size") if isinstance(entry, dict) else None
        sha = entry.get("sha256") if isinstance(entry, dict) else None
        valid = (
            isinstance(name, str)
            and name
            and "/" not in name
            and name not in names
            and isinstance(key, str)
            and key == prefix + name
            and isinstance(size, int)
            and not isinstance(size, bool)
            and size >= 0
            and isinstance(sha, str)
            and _SHA256.match(sha)
        )
        if not valid:
            raise ApplicationError(
                f"Invalid artifact file entry {entry!r}: need name, key under {prefix}, size and sha256.",
                code="invalid_artifact_files",
            )
        assert_owned_key(job.owner_id, key)
        names.add(name)
        entries.append({"name": name, "key": key, "size": size, "sha256": sha})
    return entries


@transaction.atomic
def training_job_complete(
    *,
    job: TrainingJob,
    files: list[dict[str, Any]],
    tokens_per_second: float | None = None,
    summary: dict[str, Any] | None = None,
) -> ModelArtifact:
    """A running job finished training and its files are in storage: running → completed.

    ``files`` = ``[{name, key, size, sha256}]`` with every key ``users/<owner>/models/<job id>/<name>``.
    Creates the artifact with lineage (dataset, its training-file version, base model, hyperparameters, seed)
    and the quality summary of the job's metric points, records the measured throughput, the actual cost and
    its cost record, the ``completed`` event (``summary`` as its data) and the notifications
    training_completed and artifact_ready. Idempotent: a completed job returns its artifact. Codes
    ``job_not_running`` (the job is not running: cancelled, failed, still preparing), ``invalid_artifact_files``.
    """
    locked = _lock(job)
    if locked.status == Status.COMPLETED:
        return ModelArtifact.objects.get(job=locked)
    if locked.status != Status.RUNNING:
        raise ApplicationError(f"The job is {locked.status}; it cannot complete.", code="job_not_running")
    entries = _check_files(locked, files)
    now = timezone.now()
    cost = training_job_cost(job=locked, finished_at=now)
    points = MetricPoint.objects.filter(job=locked).values("step", "training_loss", "validation_loss")
    quality = quality_summary(points=points)
    throughput = clean_float(
        tokens_per_second if tokens_per_second is not None else (summary or {}).get("tokens_per_second")
    )
    transition(
        locked.pk,
        Status.COMPLETED,
        sources=(Status.RUNNING,),
        finished_at=now,
        heartbeat_at=now,
        progress=100.0,
        stage="Completed",
        actual_cost=cost,
        measured_tokens_per_second=throughput,
    )
    locked.refresh_from_db()
    total = sum(entry["size"] for entry in entries)
    artifact = ModelArtifact.objects.create(
        owner_id=locked.owner_id,
        job=locked,
        name=locked.name,
        base_model_id=locked.base_model_id,
        dataset_id=locked.dataset_id,
        training_file_version_id=locked.dataset.training_file_version_id,
        hyperparameters=locked.hyperparameters,
        seed=int(locked.hyperparameters.get("seed", 0)),
        files=entries,
        quality=quality,
        total_size=total,
    )
    data = {**(summary or {}), "artifact": str(artifact.pk), "files": len(entries), "total_size": total}
    training_event_record(job=locked, kind=TrainingEvent.Kind.COMPLETED, message="Training completed.", data=data)
    _record_cost(locked, cost, now)
    notification_create(
        owner=locked.owner,
        type=Notification.Type.TRAINING_COMPLETED,
        title=f"Training “{locked.name}” completed",
        message=_completed_message(quality, cost),
        link=link_to("training:job_detail", locked.pk),
    )
    notification_create(
        owner=locked.owner,
        type=Notification.Type.ARTIFACT_READY,
        title=f"Adapter “{artifact.name}” is ready",
        message=f"{len(entries)} files, {total:,} bytes, ready to download.",
        link=link_to("training:model_detail", artifact.pk),
        priority=Notification.Priority.LOW,
    )
    return artifact


def _completed_message(quality: dict[str, Any] | None, cost: Decimal) -> str:
    if quality is None:
        return f"No training loss was recorded, so there is no quality score. Cost ${cost:.2f}."
    text = (
        f"Training loss {quality['first_training_loss']:.3f} → {quality['final_training_loss']:.3f} "
        f"({quality['loss_reduction_percent']:.1f} % lower), quality {quality['score']}/5 ({quality['label']})"
    )
    if quality["overfit"]:
        text += ", overfit (validation loss well above training loss)"
    return f"{text}. Cost ${cost:.2f}."


@transaction.atomic
def training_job_fail(*, job: TrainingJob, code: str, message: str, hint: str = "") -> TrainingJob:
    """An active job failed: → failed with ``code``, ``message`` and ``hint`` for the owner, the ``failed``
    event, the cost of the time it ran and a training_failed notification. No-op on a terminal job."""
    locked = _lock(job)
    if locked.status not in TrainingJob.ACTIVE:
        return locked
    now = timezone.now()
    cost = training_job_cost(job=locked, finished_at=now)
    code = (code or "trainer_error")[:40]
    transition(
        locked.pk,
        Status.FAILED,
        sources=(locked.status,),
        finished_at=now,
        stage="Failed",
        error_code=code,
        error_message=message or "",
        error_hint=hint or "",
        actual_cost=cost,
    )
    locked.refresh_from_db()
    training_event_record(
        job=locked, kind=TrainingEvent.Kind.FAILED, message=message or code, data={"code": code, "hint": hint or ""}
    )
    _record_cost(locked, cost, now)
    notification_create(
        owner=locked.owner,
        type=Notification.Type.TRAINING_FAILED,
        title=f"Training “{locked.name}” failed",
        message=f"{message} {hint}".strip(),
        link=link_to("training:job_detail", locked.pk),
        priority=Notification.Priority.HIGH,
    )
    return locked


@transaction.atomic
def training_job_mark_cancelled(*, job: TrainingJob, sources: tuple[str, ...] | None = None) -> TrainingJob:
    """An active job stopped on request: → cancelled, the ``cancelled`` event, the cost of the time it ran and a
    training_cancelled notification. ``sources`` limits the statuses it may leave (``training_job_cancel`` uses
    queued only). No-op on a terminal job or one outside ``sources``; returns the job as it now is."""
    locked = _lock(job)
    allowed = sources or TrainingJob.ACTIVE
    if locked.status not in allowed or locked.status not in TrainingJob.ACTIVE:
        return locked
    now = timezone.now()
    cost = training_job_cost(job=locked, finished_at=now)
    transition(
        locked.pk, Status.CANCELLED, sources=(locked.status,), finished_at=now, stage="Cancelled", actual_cost=cost
    )
    locked.refresh_from_db()
    at = f" at step {locked.current_step} of {locked.total_steps}" if locked.started_at else " before it started"
    training_event_record(job=locked, kind=TrainingEvent.Kind.CANCELLED, message=f"Cancelled{at}.")
    _record_cost(locked, cost, now)
    notification_create(
        owner=locked.owner,
        type=Notification.Type.TRAINING_CANCELLED,
        title=f"Training “{locked.name}” cancelled",
        message=f"The job was cancelled{at}; no adapter was produced.",
        link=link_to("training:job_detail", locked.pk),
        priority=Notification.Priority.LOW,
    )
    return locked
