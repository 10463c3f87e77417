"""The local backend (SPEC §10.4): the trainer runs inside a Celery worker on the ``training`` queue.

Called by ``training.tasks.training_job_run_task`` only. :func:`training_job_run_local` claims the job with a
conditional update (so a redelivered task never runs a job twice), writes the dataset's split files
(``datasets.services.dataset_split_files``), downloads them into ``TRAINING_WORK_DIR/<job id>/``, runs
``training.trainer.run_training`` in-process with :class:`DatabaseReporter` (metrics, events, progress and the
cancel check go through the job services, exactly as the remote backend's callbacks do), uploads the adapter
files under ``users/<owner>/models/<job id>/`` and completes, fails or cancels the job. The work folder is
always removed. No transaction spans the run: every write is a short service call.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from django.conf import settings
from django.core.files import File
from django.db import transaction

from brightrun.errors import ApplicationError
from brightrun.storage import file_storage, open_stream
from training.models import MetricPoint, TrainingEvent, TrainingJob
from training.services.common import transition
from training.services.finish import artifact_key, artifact_prefix
from training.services.jobs import (
    training_event_record,
    training_job_cancel_requested,
    training_job_claim,
    training_job_complete,
    training_job_dispatch,
    training_job_fail,
    training_job_is_stale,
    training_job_mark_cancelled,
    training_job_stage,
    training_job_start,
    training_metric_record,
)
from training.trainer.errors import DATASET_ERROR, UPLOAD_ERROR, TrainerError, classify_exception

logger = logging.getLogger(__name__)

TIME_LIMIT_HINT = (
    "The job ran past TRAINING_TIME_LIMIT_SECONDS. Train on fewer tokens (fewer epochs or a smaller dataset) or "
    "use the remote backend on a faster GPU."
)
WORKER_LOST_HINT = "The training worker stopped (restart, crash or out of memory). Start the job again."


class DatabaseReporter:
    """The trainer's ``Reporter`` for in-process runs: every report is a job service call.

    ``should_cancel`` costs one query per optimizer step; a metric one UPDATE and one INSERT.
    """

    def __init__(self, job: TrainingJob):
        self.job = job
        self.refused = False  # the job left ``preparing`` before training started (cancelled or failed)

    def stage(self, text: str, progress: float | None = None) -> None:
        training_job_stage(job=self.job, stage=text, progress=progress)

    def started(self, total_steps: int, device: str) -> None:
        started = training_job_start(job=self.job, total_steps=total_steps, device=device)
        if started is None:
            self.refused = True
        else:
            self.job = started

    def metric(self, step: int, epoch: float, **values: Any) -> None:
        training_metric_record(job=self.job, step=step, epoch=epoch, **values)

    def event(self, kind: str, message: str = "", data: dict[str, Any] | None = None) -> None:
        if kind not in TrainingEvent.Kind.values:
            logger.warning("training job %s: unknown event kind %r recorded as a stage event", self.job.pk, kind)
            kind = TrainingEvent.Kind.STAGE
        training_event_record(job=self.job, kind=kind, message=message, data=data)

    def should_cancel(self) -> bool:
        return self.refused or training_job_cancel_requested(job_id=self.job.pk)


def base_model_source(job: TrainingJob) -> dict[str, Any]:
    """``{"hf_id", "path"}`` for the trainer: ``local_path`` resolved against ``TRAINING_MODELS_DIR``, else None
    (the trainer then loads ``hf_id`` from the Hugging Face cache or hub)."""
    base = job.base_model
    path = None
    if base.local_path:
        local = Path(base.local_path)
        path = str(local if local.is_absolute() else Path(settings.TRAINING_MODELS_DIR) / local)
    return {"hf_id": base.hf_id, "path": path}


def _download(key: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    stream = open_stream(key)
    try:
        with target.open("wb") as handle:
            shutil.copyfileobj(stream, handle, 1 << 20)
    finally:
        stream.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _upload(job: TrainingJob, files: list[Any]) -> list[dict[str, Any]]:
    """Store each trainer file at its key; checks the key, size and SHA-256 the trainer reported."""
    storage = file_storage()
    entries = []
    for artifact in files:
        path = Path(artifact.path)
        key = artifact_key(job, artifact.name)
        sha = _sha256(path)
        size = path.stat().st_size
        if sha != artifact.sha256 or size != artifact.size:
            raise TrainerError(UPLOAD_ERROR, f"{artifact.name} changed on disk after the trainer wrote it.")
        try:
            if storage.exists(key):
                storage.delete(key)
            with path.open("rb") as handle:
                saved = storage.save(key, File(handle, name=artifact.name))
            if saved != key:
                storage.delete(saved)
                raise TrainerError(UPLOAD_ERROR, f"Storage kept {artifact.name} under another key ({saved}).")
            if storage.size(key) != size:
                raise TrainerError(UPLOAD_ERROR, f"Storage holds a different size for {artifact.name}.")
        except TrainerError:
            raise
        except Exception as exc:
            raise TrainerError(UPLOAD_ERROR, f"Uploading {artifact.name} failed: {type(exc).__name__}: {exc}") from exc
        entries.append({"name": artifact.name, "key": key, "size": size, "sha256": sha})
    return entries


def _discard(entries: list[dict[str, Any]]) -> None:
    storage = file_storage()
    for entry in entries:
        try:
            storage.delete(entry["key"])
        except Exception:  # best effort; the orphan sweep reports leftovers
            logger.warning("could not delete %s", entry["key"], exc_info=True)


def failure_of(exc: BaseException) -> tuple[str, str, str]:
    """(code, message, hint) for an exception that ended a local run; time limits and lost workers first."""
    cause = exc.__cause__ if isinstance(exc, TrainerError) else None
    if isinstance(exc, SoftTimeLimitExceeded | TimeLimitExceeded) or isinstance(
        cause, SoftTimeLimitExceeded | TimeLimitExceeded
    ):
        limit = settings.TRAINING_TIME_LIMIT_SECONDS
        return "time_limit", f"Training stopped at the time limit of {limit // 60} minutes.", TIME_LIMIT_HINT
    if isinstance(exc, WorkerLostError):
        return "worker_lost", "The worker running this job was lost.", WORKER_LOST_HINT
    if isinstance(exc, ApplicationError):
        error = TrainerError(DATASET_ERROR, exc.message)
    else:
        error = classify_exception(exc)
    return error.code, error.message, error.hint


def _prepare(job: TrainingJob, work: Path) -> dict[str, Any]:
    from datasets.services import dataset_split_files

    training_job_stage(job=job, stage="Preparing data", progress=0)
    splits = dataset_split_files(dataset=job.dataset)
    data = work / "data"
    train_path = data / "train.jsonl"
    _download(splits["train"]["key"], train_path)
    spec: dict[str, Any] = {
        "job_id": str(job.pk),
        "base_model": base_model_source(job),
        "hyperparameters": job.hyperparameters,
        "train_path": str(train_path),
        "output_dir": str(work / "output"),
    }
    if splits["validation"]["examples"]:
        validation_path = data / "validation.jsonl"
        _download(splits["validation"]["key"], validation_path)
        spec["validation_path"] = str(validation_path)
    return spec


def _run(job: TrainingJob, work: Path) -> None:
    from training.trainer import run_training

    spec = _prepare(job, work)
    if training_job_cancel_requested(job_id=job.pk):
        training_job_mark_cancelled(job=job)
        return
    reporter = DatabaseReporter(job)
    result = run_training(spec, reporter)
    if result.status == "cancelled":
        training_job_mark_cancelled(job=job)
        return
    training_job_stage(job=job, stage="Uploading the adapter", progress=98)
    entries = _upload(job, result.files)
    summary = {
        "steps": result.steps,
        "train_tokens": result.train_tokens,
        "final_training_loss": result.final_training_loss,
        "final_validation_loss": result.final_validation_loss,
        "device": result.device,
    }
    try:
        training_job_complete(job=job, files=entries, tokens_per_second=result.tokens_per_second, summary=summary)
    except ApplicationError:
        _discard(entries)  # the job ended some other way meanwhile (failed by the reaper): keep no orphans
        raise


def training_job_run_local(*, job_id: Any) -> TrainingJob | None:
    """Run a queued local job to its end; None when the job could not be claimed (not queued: already taken by
    another delivery of the task, cancelled, gone). Never raises for training failures: they fail the job with
    a classified code and hint (``training.trainer.errors``; ``time_limit`` at the soft time limit)."""
    job = training_job_claim(job_id=job_id)
    if job is None:
        return None
    work = Path(settings.TRAINING_WORK_DIR) / str(job.pk)
    shutil.rmtree(work, ignore_errors=True)  # a lost attempt's files, when it ran on this machine
    try:
        _run(job, work)
    except Exception as exc:
        code, message, hint = failure_of(exc)
        if not isinstance(exc, TrainerError | ApplicationError):
            logger.exception("training job %s failed", job.pk)
        training_job_fail(job=job, code=code, message=message, hint=hint)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    job.refresh_from_db()
    return job


def training_job_run_failed(*, job_id: Any, exc: BaseException) -> TrainingJob | None:
    """Fail a local job whose task died outside the runner's own handling (Celery's failure hook)."""
    job = TrainingJob.objects.filter(pk=job_id, backend=TrainingJob.Backend.LOCAL).first()
    if job is None or job.is_terminal:
        return job
    code, message, hint = failure_of(exc)
    return training_job_fail(job=job, code=code, message=message, hint=hint)


def _artifact_leftovers(job: TrainingJob) -> list[str]:
    """Keys a lost attempt may have uploaded under the job's artifact prefix (none when the folder is absent)."""
    storage = file_storage()
    prefix = artifact_prefix(job).rstrip("/")
    try:
        _, names = storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [f"{prefix}/{name}" for name in names]


def training_job_requeue_lost(*, job: TrainingJob, now: Any = None) -> str:
    """Restart or fail a local job whose worker was lost; the reaper's and the orphan check's one decision.

    Returns ``"done"`` (terminal, gone or remote), ``"queued"`` (waiting: nothing to do), ``"alive"`` (a sign of
    life within ``TRAINING_STALE_SECONDS``), ``"cancelled"`` (a cancel was pending: the lost run ends cancelled),
    ``"requeued"`` or ``"failed"``. A stale preparing/running job that has had fewer than
    ``TRAINING_MAX_ATTEMPTS`` runs goes back to ``queued`` from the beginning: the dead attempt's metric points
    and uploaded files are deleted, progress, steps, device, ``started_at`` (so the cost covers the attempt that
    finishes) and the claim are reset, a ``restarted`` event is recorded and the run task is enqueued after
    commit. Otherwise it fails with ``worker_lost``. Locks the job row; a second caller sees the new status
    and does nothing. Unscoped (beat and workers act for the owner).
    """
    with transaction.atomic():
        locked = TrainingJob.objects.select_for_update(of=("self",)).filter(pk=job.pk).first()
        if locked is None or locked.is_terminal or locked.backend != TrainingJob.Backend.LOCAL:
            return "done"
        if locked.status == TrainingJob.Status.QUEUED:
            return "queued"
        if not training_job_is_stale(job=locked, now=now):
            return "alive"
        if locked.cancel_requested_at is not None:
            training_job_mark_cancelled(job=locked)
            return "cancelled"
        if locked.attempts >= settings.TRAINING_MAX_ATTEMPTS:
            training_job_fail(
                job=locked,
                code="worker_lost",
                message=f"The worker running this job stopped without finishing it, {locked.attempts} times "
                "(no progress for a long time).",
                hint=WORKER_LOST_HINT,
            )
            return "failed"
        lost = {
            "attempt": locked.attempts,
            "status": locked.status,
            "step": locked.current_step,
            "total_steps": locked.total_steps,
            "last_sign_of_life": (locked.heartbeat_at or locked.claimed_at or locked.updated_at).isoformat(),
        }
        transition(
            locked.pk,
            TrainingJob.Status.QUEUED,
            sources=(locked.status,),
            stage="Queued (restarting after the worker was lost)",
            progress=0.0,
            current_step=0,
            current_epoch=0.0,
            total_steps=0,
            latest_metrics={},
            device="",
            started_at=None,
            claimed_at=None,
            heartbeat_at=None,
        )
        MetricPoint.objects.filter(job=locked).delete()
        leftovers = _artifact_leftovers(locked)
        _discard([{"key": key} for key in leftovers])
        training_event_record(
            job=locked,
            kind=TrainingEvent.Kind.RESTARTED,
            message=f"Restarted after the worker was lost (attempt {locked.attempts + 1} of "
            f"{settings.TRAINING_MAX_ATTEMPTS}).",
            data={**lost, "discarded_files": len(leftovers)},
        )
        training_job_dispatch(job=locked)
    logger.warning("training job %s: worker lost during attempt %s; restarted", locked.pk, locked.attempts)
    return "requeued"


def training_job_check_orphan(*, job_id: Any) -> str:
    """For a delivery of the run task that could not claim its job: is a worker still running it?

    ``"done"`` (finished, gone or remote), ``"queued"`` (not claimed: should not happen), ``"alive"`` (its
    heartbeat is recent: another worker runs it; leave it), else the job's worker died (e.g. the message came
    back after a lost worker) and :func:`training_job_requeue_lost` restarts it (``"requeued"``) or, after the
    last attempt, fails it with ``worker_lost`` (``"failed"``).
    """
    job = TrainingJob.objects.filter(pk=job_id).first()
    if job is None:
        return "done"
    return training_job_requeue_lost(job=job)


def training_jobs_reap_local(*, now: Any = None) -> int:
    """Beat (every 5 minutes): restart or fail local jobs whose worker vanished; returns how many it changed.

    A preparing or running local job with no sign of life (heartbeat, else claim) for ``TRAINING_STALE_SECONDS``
    is restarted while it has attempts left, else fails with ``worker_lost`` (:func:`training_job_requeue_lost`),
    so no job stays "running" forever when its message is gone for good (a redelivered message is handled by
    ``training_job_check_orphan``). Unscoped; each change is made under the job's row lock.
    """
    reaped = 0
    active = TrainingJob.objects.filter(
        backend=TrainingJob.Backend.LOCAL,
        status__in=(TrainingJob.Status.PREPARING, TrainingJob.Status.RUNNING),
    )
    for job in active:
        if training_job_is_stale(job=job, now=now):
            reaped += training_job_requeue_lost(job=job, now=now) in ("requeued", "failed", "cancelled")
    return reaped
