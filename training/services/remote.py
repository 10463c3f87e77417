"""The remote backend (SPEC §10.4): a RunPod-serverless-style HTTP API runs the trainer on rented GPUs.

Flow: ``training_job_dispatch`` enqueues ``training_job_submit_remote_task`` → :func:`training_job_submit_remote`
claims the job, signs dataset GET and artifact PUT URLs, and ``POST {endpoint}/run``s the payload; the worker
(``training.remote_handler`` → ``python -m training.trainer``) posts signed callbacks to
``/api/v1/training-jobs/{id}/callback/`` (:mod:`training.services.remote_callbacks`); the beat task
:func:`training_jobs_poll_remote` asks ``GET {endpoint}/status/{id}`` about jobs that went quiet; cancel is
``POST {endpoint}/cancel/{id}``. Every outcome goes through the same job services as the local backend.

Signed URLs are built here, handed to the worker and never stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx2
from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from brightrun import storage
from brightrun.errors import ApplicationError
from training.models import TrainingJob
from training.services.finish import artifact_key
from training.services.jobs import (
    training_job_claim,
    training_job_fail,
    training_job_mark_cancelled,
    training_job_stage,
)
from training.services.remote_callbacks import remote_failure, remote_output_finish
from training.trainer.artifacts import ARTIFACT_FILES

logger = logging.getLogger(__name__)

# Artifact uploads may be large (a rank-128 adapter of an 8B model is over a gigabyte in fp32).
ARTIFACT_MAX_BYTES = 8 * 1024**3
# A remote job claimed this long ago that still has no external id was never submitted (lost task).
SUBMIT_STALE_SECONDS = 3600

REMOTE_UNAVAILABLE_HINT = (
    "The remote GPU service did not answer. Start the job again in a few minutes; if it keeps failing, ask the "
    "operator to check TRAINING_REMOTE_ENDPOINT and the provider's status."
)
REMOTE_REJECTED_HINT = (
    "The remote GPU service refused the job. Ask the operator to check TRAINING_REMOTE_ENDPOINT and "
    "TRAINING_REMOTE_API_KEY."
)


class RemoteError(Exception):
    """The remote service answered with an error that retrying will not fix (4xx, malformed answer)."""

    def __init__(self, message: str, *, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class RemoteUnavailable(RemoteError):
    """A transient failure: no connection, a timeout, 429 or 5xx. Retried with backoff by the submit task."""


class RemoteNotFound(RemoteError):
    """The remote service does not know the job (expired from its history, or never existed)."""


@dataclass(frozen=True)
class RemoteClient:
    """A minimal client of a RunPod-serverless-style endpoint (``/run``, ``/status/{id}``, ``/cancel/{id}``)."""

    endpoint: str
    api_key: str
    timeout: float

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.endpoint.rstrip('/')}/{path}"
        try:
            response = httpx2.request(
                method,
                url,
                json=payload,
                headers={"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"},
                timeout=self.timeout,
            )
        except httpx2.TransportError as exc:
            raise RemoteUnavailable(f"{method} {path}: {exc.__class__.__name__}: {exc}") from exc
        code = response.status_code
        if code == 429 or code >= 500:
            raise RemoteUnavailable(f"{method} {path}: HTTP {code}", status_code=code)
        if code == 404:
            raise RemoteNotFound(f"{method} {path}: HTTP 404", status_code=code)
        if code >= 400:
            raise RemoteError(f"{method} {path}: HTTP {code}: {response.text[:300]}", status_code=code)
        try:
            body = response.json()
        except ValueError as exc:
            raise RemoteError(f"{method} {path}: the answer is not JSON", status_code=code) from exc
        if not isinstance(body, dict):
            raise RemoteError(f"{method} {path}: the answer is not a JSON object", status_code=code)
        return body

    def run(self, job_input: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "run", {"input": job_input})

    def status(self, external_id: str) -> dict[str, Any]:
        return self._request("GET", f"status/{external_id}")

    def cancel(self, external_id: str) -> dict[str, Any]:
        return self._request("POST", f"cancel/{external_id}")


def remote_configured() -> bool:
    """Whether the remote backend can take jobs (``training_job_create`` refuses ``remote`` otherwise)."""
    return bool(settings.TRAINING_REMOTE_ENDPOINT)


def remote_client() -> RemoteClient:
    return RemoteClient(
        endpoint=settings.TRAINING_REMOTE_ENDPOINT,
        api_key=settings.TRAINING_REMOTE_API_KEY,
        timeout=settings.TRAINING_REMOTE_TIMEOUT_SECONDS,
    )


def remote_input(*, job: TrainingJob) -> dict[str, Any]:
    """The ``input`` of ``POST /run`` for ``job``: fresh signed URLs, the callback and its secret.

    Writes the dataset's split files first (idempotent). Called by :func:`training_job_submit_remote` only.
    """
    from datasets.services import dataset_split_files

    ttl = settings.TRAINING_REMOTE_URL_TTL_SECONDS
    splits = dataset_split_files(dataset=job.dataset)
    owner_id = job.owner_id
    validation = splits.get("validation") or {}
    return {
        "job_id": str(job.pk),
        "base_model": {"hf_id": job.base_model.hf_id, "local_path": job.base_model.local_path},
        "hyperparameters": job.hyperparameters,
        "dataset_url": storage.download_url(owner_id=owner_id, key=splits["train"]["key"], ttl=ttl),
        "validation_url": (
            storage.download_url(owner_id=owner_id, key=validation["key"], ttl=ttl)
            if validation.get("key") and validation.get("examples")
            else None
        ),
        "artifact_uploads": {
            name: storage.upload_put_url(
                owner_id=owner_id, key=artifact_key(job, name), ttl=ttl, max_bytes=ARTIFACT_MAX_BYTES
            )
            for name in ARTIFACT_FILES
        },
        "callback_url": settings.SITE_URL + reverse("training-job-callback", args=[job.pk]),
        "callback_token": job.callback_secret,
    }


def _touch(job: TrainingJob, **fields: Any) -> int:
    """Record a sign of life (and ``fields``) on an active job; a terminal job is left alone."""
    return TrainingJob.objects.filter(pk=job.pk, status__in=TrainingJob.ACTIVE).update(
        heartbeat_at=timezone.now(), **fields
    )


def training_job_submit_remote(*, job_id: str, retry: bool = False) -> TrainingJob | None:
    """Submit a queued remote job to the remote service. Called by ``training_job_submit_remote_task``.

    Claims the job (queued → preparing); a job that is already preparing without an external id is a retry
    of an earlier attempt and is submitted again. Returns None when there is nothing to do (gone, local,
    already submitted, finished). Transient HTTP failures raise :class:`RemoteUnavailable` while ``retry``
    is true (the task retries with backoff) and fail the job with ``remote_unavailable`` otherwise. No
    transaction spans the HTTP call; every state change is a conditional update in the job services.
    """
    job = TrainingJob.objects.filter(pk=job_id, backend=TrainingJob.Backend.REMOTE).first()
    if job is None:
        return None
    if job.status == TrainingJob.Status.QUEUED:
        job = training_job_claim(job_id=job_id)
        if job is None:
            return None
    elif job.status != TrainingJob.Status.PREPARING or job.external_id:
        return None
    if job.cancel_requested_at is not None:
        training_job_mark_cancelled(job=job)
        return job
    if not remote_configured():
        training_job_fail(
            job=job,
            code="remote_not_configured",
            message="Remote training is not configured on this installation.",
            hint="Choose the local backend, or ask the operator to set TRAINING_REMOTE_ENDPOINT.",
        )
        return job
    _touch(job)
    try:
        job_input = remote_input(job=job)
    except ApplicationError as exc:
        failure = remote_failure(code="dataset_error", message=f"The dataset could not be prepared: {exc.message}")
        training_job_fail(job=job, **failure)
        return job
    try:
        answer = remote_client().run(job_input)
    except RemoteUnavailable as exc:
        _touch(job)
        if retry:
            raise
        training_job_fail(
            job=job,
            code="remote_unavailable",
            message=f"The remote training service could not be reached: {exc}",
            hint=REMOTE_UNAVAILABLE_HINT,
        )
        return job
    except RemoteError as exc:
        training_job_fail(job=job, code="remote_rejected", message=str(exc), hint=REMOTE_REJECTED_HINT)
        return job
    external_id = str(answer.get("id") or "")
    if not external_id:
        training_job_fail(
            job=job, code="remote_rejected", message="The remote service returned no job id.", hint=REMOTE_REJECTED_HINT
        )
        return job
    # Stored whatever the status: a job cancelled while /run was in flight still needs its remote cancel.
    TrainingJob.objects.filter(pk=job.pk).update(external_id=external_id[:200])
    _touch(job)
    job.refresh_from_db()
    if job.status in TrainingJob.ACTIVE:
        training_job_stage(job=job, stage="Submitted to remote worker")
    if job.cancel_requested_at is not None or job.status == TrainingJob.Status.CANCELLED:
        remote_cancel(job=job)  # cancelled while the submission was in flight
    return job


def training_job_submit_remote_failed(*, job_id: str, exc: BaseException) -> None:
    """The submit task died of an unexpected error: fail the job if it is still waiting to be submitted.

    Called by the submit task's ``on_failure`` (not for retries, which the task handles). No-op for a job
    that was submitted (external id set), finished, or is not remote.
    """
    job = TrainingJob.objects.filter(
        pk=job_id,
        backend=TrainingJob.Backend.REMOTE,
        status__in=(TrainingJob.Status.QUEUED, TrainingJob.Status.PREPARING),
        external_id="",
    ).first()
    if job is not None:
        training_job_fail(
            job=job,
            code="remote_unavailable",
            message=f"Submitting the job failed: {exc.__class__.__name__}: {exc}"[:2000],
            hint=REMOTE_UNAVAILABLE_HINT,
        )


def remote_cancel(*, job: TrainingJob) -> bool:
    """Ask the remote service to stop ``job``. Called by ``training_job_cancel`` for remote jobs.

    A job not yet submitted (no external id) is marked cancelled at once if it still is active (the submit
    service also checks ``cancel_requested_at`` before submitting). When the remote service confirms
    ``CANCELLED`` the job is marked cancelled; otherwise the worker stops at its next step through the
    callback answer (``"cancel": true``) or the poller sees the final status. Never raises for remote
    errors: the cancel request is recorded on the job either way. Returns whether the remote service
    confirmed the cancellation.
    """
    if not job.external_id:
        if job.status in TrainingJob.ACTIVE and job.status != TrainingJob.Status.QUEUED:
            training_job_mark_cancelled(job=job)
        return False
    try:
        answer = remote_client().cancel(job.external_id)
    except RemoteNotFound:
        training_job_mark_cancelled(job=job)
        return False
    except RemoteError as exc:
        logger.warning("remote cancel of training job %s (%s) failed: %s", job.pk, job.external_id, exc)
        return False
    if answer.get("status") == "CANCELLED":
        training_job_mark_cancelled(job=job)
        return True
    return False


def training_job_poll_remote(*, job: TrainingJob) -> str:
    """Ask the remote service about one job and apply the answer; returns what happened.

    ``alive`` (queued or in progress: heartbeat), ``completed`` / ``failed`` / ``cancelled`` (applied through
    the job services), ``error`` (the service could not be asked; tried again next time). COMPLETED whose
    ``output.status`` is ``failed`` is a failure (SPEC §14). Idempotent: terminal jobs are left alone.
    """
    if job.is_terminal or not job.external_id:
        return "skipped"
    try:
        answer = remote_client().status(job.external_id)
    except RemoteNotFound:
        training_job_fail(
            job=job,
            code="remote_lost",
            message="The remote service no longer knows this job.",
            hint=REMOTE_UNAVAILABLE_HINT,
        )
        return "failed"
    except RemoteError as exc:
        logger.warning("polling training job %s (%s) failed: %s", job.pk, job.external_id, exc)
        return "error"
    status = answer.get("status")
    output = answer.get("output")
    if status in ("IN_QUEUE", "IN_PROGRESS"):
        _touch(job)
        return "alive"
    if status == "COMPLETED":
        return remote_output_finish(job=job, output=output)
    if status == "FAILED":
        error = answer.get("error")
        if isinstance(output, dict) and output.get("error"):
            error = output["error"]
        training_job_fail(job=job, **remote_failure(error=error or "The remote worker failed."))
        return "failed"
    if status == "CANCELLED":
        training_job_mark_cancelled(job=job)
        return "cancelled"
    if status == "TIMED_OUT":
        training_job_fail(
            job=job,
            code="remote_timeout",
            message="The remote worker ran past the endpoint's execution timeout.",
            hint="Train on fewer tokens or a faster GPU, or ask the operator to raise the endpoint's timeout.",
        )
        return "failed"
    logger.warning("training job %s: unknown remote status %r", job.pk, status)
    return "error"


def training_jobs_poll_remote(*, now: datetime | None = None) -> dict[str, int]:
    """Poll remote jobs without a recent callback. Called every 30 s by ``training_jobs_poll_remote_task``.

    Jobs preparing or running whose last sign of life is older than ``TRAINING_REMOTE_POLL_AFTER_SECONDS``
    are asked about; jobs claimed over an hour ago that never got an external id (the submit task was lost)
    fail with ``remote_unavailable``. Safe to run concurrently: every change is a conditional update.
    """
    now = now or timezone.now()
    counts: dict[str, int] = {}
    quiet = now - timedelta(seconds=settings.TRAINING_REMOTE_POLL_AFTER_SECONDS)
    remote = TrainingJob.objects.filter(
        backend=TrainingJob.Backend.REMOTE, status__in=(TrainingJob.Status.PREPARING, TrainingJob.Status.RUNNING)
    )
    polled = remote.exclude(external_id="").filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=quiet))
    for job in polled.select_related("owner").order_by("heartbeat_at")[:200]:
        outcome = training_job_poll_remote(job=job)
        counts[outcome] = counts.get(outcome, 0) + 1
    stale = now - timedelta(seconds=SUBMIT_STALE_SECONDS)
    lost = remote.filter(external_id="", claimed_at__lt=stale).filter(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale)
    )
    for job in lost:
        training_job_fail(
            job=job,
            code="remote_unavailable",
            message="The job was never handed to the remote service.",
            hint=REMOTE_UNAVAILABLE_HINT,
        )
        counts["lost"] = counts.get("lost", 0) + 1
    return counts
