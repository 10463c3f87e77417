"""Training job lifecycle: create, dispatch, claim, start, progress, metrics, events and cancel (SPEC §10.3).

Callers: the API and the web views (create, cancel), the local runner (``training.services.local``) and the
remote backend's callback/poller (``training.services.remote``). Every status change is a conditional update
along ``TrainingJob.TRANSITIONS`` (compare-and-set on the current status), so two workers, a late callback or a
cancel racing a finish can never move a job twice; terminal states are final. The terminal transitions
(complete, fail, mark cancelled) live in ``training.services.finish`` and are re-exported here.

Services handed a job by a user re-check ownership (they are also called from tasks, the admin and the shell);
worker-side services (claim, start, metrics) act for the owner and are unscoped by design.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from brightrun.errors import ApplicationError
from brightrun.models import Notification
from brightrun.services import notification_create
from datasets.models import Dataset
from training.models import BaseModel, GpuType, HyperparameterPreset, MetricPoint, TrainingEvent, TrainingJob
from training.services.common import clean_float, link_to, training_event_record, transition
from training.services.estimate import training_estimate
from training.services.finish import training_job_complete, training_job_fail, training_job_mark_cancelled
from training.services.hyperparameters import hyperparameters_resolve

__all__ = [
    "METRIC_FIELDS",
    "training_event_record",
    "training_job_cancel",
    "training_job_cancel_requested",
    "training_job_claim",
    "training_job_complete",
    "training_job_create",
    "training_job_dispatch",
    "training_job_fail",
    "training_job_is_stale",
    "training_job_mark_cancelled",
    "training_job_progress",
    "training_job_stage",
    "training_job_start",
    "training_metric_record",
    "training_stale_after",
]

Status = TrainingJob.Status
METRIC_FIELDS = ("training_loss", "validation_loss", "learning_rate", "grad_norm", "tokens_per_second")
#: Overall progress (%) at the first and the last optimizer step.
TRAINING_PROGRESS = (5.0, 95.0)


def _check_owner(job: TrainingJob, actor: Any, *, staff_may: bool = False) -> None:
    if staff_may and getattr(actor, "is_staff", False):
        return
    if job.owner_id != getattr(actor, "pk", None):
        raise ApplicationError("Training job not found.", code="not_found", status_code=404)


# --- create, dispatch, cancel -----------------------------------------------------------------


@transaction.atomic
def training_job_create(
    *,
    owner: Any,
    dataset: Dataset,
    base_model: BaseModel,
    gpu_type: GpuType,
    gpu_count: int = 1,
    backend: str = TrainingJob.Backend.LOCAL,
    preset: HyperparameterPreset | None = None,
    hyperparameters: dict[str, Any] | None = None,
    name: str = "",
) -> TrainingJob:
    """Create a queued job of ``owner`` and enqueue it after commit.

    ``hyperparameters`` are overrides on ``preset`` (or on the SPEC default row without one), resolved and
    checked by ``hyperparameters_resolve``; the final dict and the estimate at this moment are stored on the job.
    Codes: ``dataset_not_found`` (404, not the owner's), ``dataset_not_ready``, ``invalid_base_model``,
    ``invalid_gpu_type``, ``invalid_preset``, ``invalid_gpu_count``, ``invalid_backend``,
    ``remote_not_configured``, ``invalid_hyperparameters`` (with ``errors``), ``invalid_name``.
    """
    if dataset is None or dataset.owner_id != getattr(owner, "pk", None):
        raise ApplicationError("Dataset not found.", code="dataset_not_found", status_code=404)
    if dataset.status != Dataset.Status.READY:
        raise ApplicationError(
            f"The dataset is {dataset.status}; only a ready dataset can be trained on.", code="dataset_not_ready"
        )
    if base_model is None or not base_model.is_active:
        raise ApplicationError("Choose an active base model.", code="invalid_base_model")
    if gpu_type is None or not gpu_type.is_active:
        raise ApplicationError("Choose an active GPU type.", code="invalid_gpu_type")
    if preset is not None and not preset.is_active:
        raise ApplicationError("That preset is not available.", code="invalid_preset")
    if backend not in TrainingJob.Backend.values:
        raise ApplicationError(
            f"Unknown backend {backend!r}; use one of {', '.join(TrainingJob.Backend.values)}.", code="invalid_backend"
        )
    if backend == TrainingJob.Backend.REMOTE and not settings.TRAINING_REMOTE_ENDPOINT:
        raise ApplicationError(
            "Remote training is not configured on this installation (TRAINING_REMOTE_ENDPOINT).",
            code="remote_not_configured",
        )
    name = (name or "").strip() or f"{base_model.display_name} · {dataset.name}"
    if len(name) > 200:
        raise ApplicationError("The name is longer than 200 characters.", code="invalid_name")
    final = hyperparameters_resolve(preset=preset, overrides=hyperparameters)
    estimate = training_estimate(
        dataset=dataset, base_model=base_model, hyperparameters=final, gpu_type=gpu_type, gpu_count=gpu_count
    )
    job = TrainingJob.objects.create(
        owner=owner,
        name=name[:200],
        dataset=dataset,
        base_model=base_model,
        preset=preset,
        hyperparameters=final,
        gpu_type=gpu_type,
        gpu_count=gpu_count,
        backend=backend,
        status=Status.QUEUED,
        stage="Queued",
        estimate=estimate,
        estimated_cost=Decimal(estimate["cost_usd"]),
    )
    training_event_record(job=job, kind=TrainingEvent.Kind.QUEUED, message=f"Queued on the {backend} backend.")
    training_job_dispatch(job=job)
    return job


def training_job_dispatch(*, job: TrainingJob) -> None:
    """Enqueue the job's first task once the current transaction commits (local run or remote submit)."""
    from training import tasks

    job_id = str(job.pk)
    if job.backend == TrainingJob.Backend.LOCAL:
        transaction.on_commit(lambda: tasks.training_job_run_task.delay(job_id))
    else:
        transaction.on_commit(lambda: tasks.training_job_submit_remote_task.delay(job_id))


@transaction.atomic
def training_job_cancel(*, job: TrainingJob, actor: Any) -> TrainingJob:
    """Cancel ``actor``'s job (staff may cancel any job, from the admin). Idempotent once cancelled or pending.

    A queued job is cancelled at once. A preparing or running job gets ``cancel_requested_at``: the local runner
    stops at its next optimizer step and marks it cancelled; a remote job is also cancelled at the provider
    after commit (``training.services.remote``). Code ``job_finished`` for a completed or failed job.
    """
    _check_owner(job, actor, staff_may=True)
    job.refresh_from_db()
    if job.status == Status.CANCELLED:
        return job
    if job.status in (Status.COMPLETED, Status.FAILED):
        raise ApplicationError(f"The job is already {job.status}.", code="job_finished")
    remote = job.backend == TrainingJob.Backend.REMOTE
    if job.status == Status.QUEUED:
        marked = training_job_mark_cancelled(job=job, sources=(Status.QUEUED,))
        if marked.status == Status.CANCELLED:
            if remote and marked.external_id:
                _remote_cancel_after_commit(marked)
            return marked
    now = timezone.now()
    TrainingJob.objects.filter(pk=job.pk, status__in=TrainingJob.ACTIVE, cancel_requested_at=None).update(
        cancel_requested_at=now, updated_at=now
    )
    job.refresh_from_db()
    if remote and job.status in TrainingJob.ACTIVE:
        _remote_cancel_after_commit(job)
    return job


def _remote_cancel_after_commit(job: TrainingJob) -> None:
    from training.services.remote import remote_cancel

    job_id = job.pk
    transaction.on_commit(lambda: remote_cancel(job=TrainingJob.objects.get(pk=job_id)))


# --- worker side: claim, start, stage, progress, metrics, events ------------------------------


def training_job_claim(*, job_id: Any) -> TrainingJob | None:
    """Take a queued job for running (queued → preparing), counting one attempt; None when it is not queued
    (already taken, cancelled, gone). The conditional update makes the claim exclusive: of two workers handed
    the same job, one wins."""
    now = timezone.now()
    claimed = transition(
        job_id, Status.PREPARING, sources=(Status.QUEUED,), claimed_at=now, heartbeat_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    return TrainingJob.objects.select_related("dataset", "base_model", "gpu_type", "owner").get(pk=job_id)


def training_job_start(*, job: TrainingJob, total_steps: int, device: str) -> TrainingJob | None:
    """The trainer loaded the model and starts stepping (preparing → running): event ``started`` and a
    notification. Returns the job, or None when it is no longer preparing (cancelled or failed meanwhile).
    A repeated call on a running job (a duplicate remote callback) returns it without a second notification, and
    so does the start of a restarted attempt (``attempts`` > 1)."""
    now = timezone.now()
    moved = transition(
        job.pk,
        Status.RUNNING,
        sources=(Status.PREPARING,),
        started_at=now,
        heartbeat_at=now,
        total_steps=max(int(total_steps or 0), 0),
        device=(device or "")[:100],
        stage="Training",
    )
    job.refresh_from_db()
    if not moved:
        return job if job.status == Status.RUNNING else None
    training_event_record(
        job=job,
        kind=TrainingEvent.Kind.STARTED,
        message=f"Training started on {job.device or 'an unknown device'}: {job.total_steps} steps.",
        data={"total_steps": job.total_steps, "device": job.device, "attempt": job.attempts},
    )
    if job.attempts > 1:  # a restart after a lost worker: the owner was told when the first attempt started
        return job
    notification_create(
        owner=job.owner,
        type=Notification.Type.TRAINING_STARTED,
        title=f"Training “{job.name}” started",
        message=f"{job.total_steps} steps on {job.device or 'the worker'}.",
        link=link_to("training:job_detail", job.pk),
        priority=Notification.Priority.LOW,
    )
    return job


def training_job_stage(*, job: TrainingJob, stage: str, progress: float | None = None) -> bool:
    """Record what an active job is doing now (stage text, optional progress 0–100) and a ``stage`` event.
    False (nothing written) when the job is no longer active."""
    stage = (stage or "")[:200]
    now = timezone.now()
    fields: dict[str, Any] = {"stage": stage, "heartbeat_at": now, "updated_at": now}
    value = clean_float(progress)
    if value is not None:
        fields["progress"] = min(max(value, 0.0), 100.0)
    if not TrainingJob.objects.filter(pk=job.pk, status__in=TrainingJob.ACTIVE).update(**fields):
        return False
    job.stage = stage
    training_event_record(job=job, kind=TrainingEvent.Kind.STAGE, message=stage)
    return True


def training_job_progress(*, job: TrainingJob, step: int, epoch: float, progress: float | None = None) -> bool:
    """Record the current step and epoch of a running job (also its heartbeat). Progress defaults to
    the step's share of ``TRAINING_PROGRESS`` (100 only once the job completes). False when the job is not running."""
    fields = _progress_fields(job, step, epoch, progress)
    return bool(TrainingJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(**fields))


def _progress_fields(job: TrainingJob, step: int, epoch: float, progress: float | None) -> dict[str, Any]:
    now = timezone.now()
    value = clean_float(progress)
    if value is None and job.total_steps:
        # The trainer's stages use 0–5 for preparation and 96–98 for saving and uploading.
        value = TRAINING_PROGRESS[0] + min(step / job.total_steps, 1.0) * (TRAINING_PROGRESS[1] - TRAINING_PROGRESS[0])
    fields: dict[str, Any] = {
        "current_step": max(int(step), 0),
        "current_epoch": clean_float(epoch) or 0.0,
        "heartbeat_at": now,
        "updated_at": now,
    }
    if value is not None:
        fields["progress"] = min(max(value, 0.0), 100.0)
    return fields


def training_metric_record(*, job: TrainingJob, step: int, epoch: float, **values: Any) -> MetricPoint | None:
    """Store one metric point of a running job and fold it into ``latest_metrics``, step, epoch, progress and
    heartbeat: one UPDATE and one INSERT, so it is cheap enough for every step.

    ``values`` are any of ``METRIC_FIELDS``; NaN/inf are stored as null. Returns None (nothing stored) when the
    job is not running, e.g. a late point after a cancel. ``job.latest_metrics`` is updated in place, so a
    runner that keeps its job object merges without re-reading.
    """
    unknown = set(values) - set(METRIC_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown metric(s): {', '.join(sorted(unknown))}.", code="invalid_metric")
    clean = {name: clean_float(values.get(name)) for name in METRIC_FIELDS}
    latest = {**(job.latest_metrics or {}), **{k: v for k, v in clean.items() if v is not None}}
    latest.update(step=int(step), epoch=clean_float(epoch) or 0.0)
    fields = _progress_fields(job, step, epoch, None)
    if not TrainingJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(latest_metrics=latest, **fields):
        return None
    job.latest_metrics = latest
    job.current_step = fields["current_step"]
    job.current_epoch = fields["current_epoch"]
    return MetricPoint.objects.create(
        owner_id=job.owner_id, job_id=job.pk, step=max(int(step), 0), epoch=fields["current_epoch"], **clean
    )


def training_job_cancel_requested(*, job_id: Any) -> bool:
    """Whether the runner should stop: a cancel was requested, or the job is no longer active (one query)."""
    row = TrainingJob.objects.filter(pk=job_id).values_list("cancel_requested_at", "status").first()
    return row is None or row[0] is not None or row[1] not in TrainingJob.ACTIVE


def training_stale_after() -> timedelta:
    """How long a local job may show no sign of life (stage, step, metric) before its worker is presumed lost:
    ``TRAINING_STALE_SECONDS``."""
    return timedelta(seconds=settings.TRAINING_STALE_SECONDS)


def training_job_is_stale(*, job: TrainingJob, now: Any = None) -> bool:
    """Whether an active job has shown no sign of life (heartbeat, else claim) for ``training_stale_after()``."""
    last = job.heartbeat_at or job.claimed_at or job.updated_at
    return (
        job.status in TrainingJob.ACTIVE
        and last is not None
        and (now or timezone.now()) - last > training_stale_after()
    )
