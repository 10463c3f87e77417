"""Periodic tasks, declared in code and upserted by name by ``setup_periodic_tasks``.

Each app contributes its schedules here as they are built (SPEC §12). An upsert keeps an
admin's enabled/disabled choice, and nothing that an admin added by hand is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask


@dataclass(frozen=True)
class Every:
    seconds: int


@dataclass(frozen=True)
class Cron:
    minute: str = "0"
    hour: str = "*"
    day_of_week: str = "*"


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    when: Every | Cron
    queue: str = "default"
    description: str = ""


SCHEDULES: list[Schedule] = [
    Schedule(
        "worker heartbeat",
        "brightrun.tasks.worker_heartbeat_task",
        Every(30),
        description="Proves a worker consumes the default queue; read by /healthz.",
    ),
    Schedule(
        "generation item reaper",
        "conversations.tasks.generation_reaper_task",
        Every(60),
        description="Requeues or fails generation items running without a heartbeat; re-dispatches.",
    ),
    Schedule(
        "message batches poller",
        "conversations.tasks.message_batches_poll_task",
        Every(60),
        description="Collects finished Anthropic Message Batches and completes their items once.",
    ),
    Schedule(
        "dataset validation sweeper",
        "datasets.tasks.datasets_sweep_task",
        Every(60),
        queue="validation",
        description="Re-enqueues datasets stuck in validating; expires uploads never confirmed (24 h).",
    ),
    Schedule(
        "training file build sweeper",
        "training_files.tasks.training_file_builds_sweep_task",
        Every(60),
        description="Re-enqueues training-file builds whose worker stopped heartbeating; fails them after "
        "TRAINING_FILE_BUILD_MAX_ATTEMPTS (build_lost).",
    ),
    Schedule(
        "remote training poller",
        "training.tasks.training_jobs_poll_remote_task",
        Every(30),
        description="Polls remote training jobs without a recent callback; fails jobs never submitted.",
    ),
    Schedule(
        "training job reaper",
        "training.tasks.training_jobs_reap_local_task",
        Every(300),
        description="Requeues local training jobs with no sign of life for TRAINING_STALE_SECONDS (30 min); "
        "fails them with worker_lost after TRAINING_MAX_ATTEMPTS.",
    ),
    Schedule(
        "generation log cleanup",
        "conversations.tasks.generation_log_cleanup_task",
        Cron(minute="30", hour="2"),
        description="Deletes generation logs older than GENERATION_LOG_RETENTION_DAYS (365).",
    ),
    Schedule(
        "notification cleanup",
        "brightrun.tasks.notification_cleanup_task",
        Cron(minute="0", hour="3"),
        description="Deletes read notifications older than NOTIFICATION_RETENTION_DAYS (90).",
    ),
    Schedule(
        "export and download cleanup",
        "training_files.tasks.exports_expire_task",
        Cron(minute="0", hour="2"),
        description="Expires completed exports past their expiry (7 days) and deletes their stored files.",
    ),
    Schedule(
        "dataset file cleanup",
        "datasets.tasks.datasets_cleanup_task",
        Cron(minute="15", hour="2"),
        queue="validation",
        description="Deletes stored files of datasets soft-deleted more than 30 days ago.",
    ),
]


@transaction.atomic
def periodic_tasks_upsert(schedules: list[Schedule] | None = None) -> list[tuple[str, bool]]:
    """Create or update each declared periodic task by name; returns (name, created) pairs."""
    results = []
    for item in schedules or SCHEDULES:
        defaults: dict = {"task": item.task, "queue": item.queue, "description": item.description}
        if isinstance(item.when, Every):
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=item.when.seconds, period=IntervalSchedule.SECONDS
            )
            defaults.update(interval=interval, crontab=None)
        else:
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=item.when.minute,
                hour=item.when.hour,
                day_of_week=item.when.day_of_week,
                day_of_month="*",
                month_of_year="*",
                timezone="UTC",
            )
            defaults.update(crontab=crontab, interval=None)
        _, created = PeriodicTask.objects.update_or_create(name=item.name, defaults=defaults)
        results.append((item.name, created))
    return results
