"""Celery tasks of the training app: thin adapters over ``training.services``, safe to run twice.

``training_job_run*`` route to the ``training`` queue (``CELERY_TASK_ROUTES``), whose workers run with
prefetch 1 (``CELERY_WORKER_PREFETCH_MULTIPLIER``). The run task acknowledges late and is rejected back to the
queue when its worker is lost, which is safe only because a second delivery cannot run the job again: the
claim is a conditional update (queued → preparing), and a delivery that finds the job already claimed only
checks that a worker is still alive (``training_job_check_orphan``).
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.conf import settings

from training.services.local import (
    training_job_check_orphan,
    training_job_run_failed,
    training_job_run_local,
    training_jobs_reap_local,
)
from training.services.remote import (
    RemoteUnavailable,
    remote_configured,
    training_job_submit_remote,
    training_job_submit_remote_failed,
    training_jobs_poll_remote,
)

#: Re-checks of a job claimed by another delivery, one every ``TRAINING_STALE_SECONDS``: enough to outlive the time
#: limit.
ORPHAN_CHECKS = int(settings.TRAINING_TIME_LIMIT_SECONDS // settings.TRAINING_STALE_SECONDS) + 2


class TrainingRunTask(Task):
    """Fails the job through the service when the task itself dies (an exception the runner did not handle)."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        job_id = args[0] if args else kwargs.get("job_id")
        if job_id is not None:
            training_job_run_failed(job_id=job_id, exc=exc)


@shared_task(
    bind=True,
    base=TrainingRunTask,
    name="training.tasks.training_job_run_task",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=settings.TRAINING_TIME_LIMIT_SECONDS,
    time_limit=settings.TRAINING_TIME_LIMIT_SECONDS + 300,
)
def training_job_run_task(self: Task, job_id: str) -> str | None:
    """Run one local training job (``training_job_run_local``); returns its final status.

    A delivery that cannot claim the job (a redelivery after a lost worker, a duplicate) never runs it: when
    another worker is still alive on it, the check is retried later; a job without a sign of life for
    ``TRAINING_STALE_SECONDS`` is restarted (``training_job_requeue_lost``), or fails with ``worker_lost`` after
    ``TRAINING_MAX_ATTEMPTS``. Called directly (tests, the shell) it only checks once.
    """
    job = training_job_run_local(job_id=job_id)
    if job is not None:
        return job.status
    outcome = training_job_check_orphan(job_id=job_id)
    if outcome == "alive" and not self.request.called_directly and self.request.retries < ORPHAN_CHECKS:
        raise self.retry(countdown=settings.TRAINING_STALE_SECONDS, max_retries=ORPHAN_CHECKS)
    return None


# --- remote backend (training.services.remote) -------------------------------------------------


class RemoteSubmitTask(Task):
    """Fails the job through the service when submitting dies of an error that is not retried."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        job_id = args[0] if args else kwargs.get("job_id")
        if job_id is not None:
            training_job_submit_remote_failed(job_id=job_id, exc=exc)


@shared_task(
    bind=True,
    base=RemoteSubmitTask,
    name="training.tasks.training_job_submit_remote_task",
    autoretry_for=(RemoteUnavailable,),
    retry_backoff=15,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
    acks_late=True,
    ignore_result=True,
)
def training_job_submit_remote_task(self: Task, job_id: str) -> str | None:
    """Submit one remote job to the remote service (``training_job_submit_remote``); returns its status.

    A transient failure (no connection, timeout, 429, 5xx) is retried with exponential backoff (15 s … 5 min,
    5 retries); the last attempt, or a direct call, fails the job with ``remote_unavailable`` instead. Safe to
    run twice: a job already submitted (external id set) or no longer queued/preparing is left alone.
    """
    retry = not self.request.called_directly and self.request.retries < (self.max_retries or 0)
    job = training_job_submit_remote(job_id=job_id, retry=retry)
    return job.status if job is not None else None


@shared_task(name="training.tasks.training_jobs_poll_remote_task", ignore_result=True)
def training_jobs_poll_remote_task() -> dict[str, int]:
    """Every 30 s: ask the remote service about remote jobs without a recent callback."""
    if not remote_configured():
        return {}
    return training_jobs_poll_remote()


@shared_task(name="training.tasks.training_jobs_reap_local_task", ignore_result=True)
def training_jobs_reap_local_task() -> int:
    """Every 5 minutes: restart local jobs whose worker vanished; fail them after the last attempt (``worker_lost``)."""
    return training_jobs_reap_local()
