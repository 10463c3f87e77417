"""Project-wide periodic tasks: worker heartbeat and notification cleanup."""

from __future__ import annotations

import socket

from celery import shared_task
from celery.signals import worker_ready

from brightrun import services


@shared_task(name="brightrun.tasks.worker_heartbeat_task", ignore_result=True)
def worker_heartbeat_task() -> str:
    """Record that a worker is consuming the default queue. Idempotent (an upsert)."""
    hostname = socket.gethostname()
    services.worker_heartbeat_record(hostname=hostname)
    return hostname


@shared_task(name="brightrun.tasks.notification_cleanup_task", ignore_result=True)
def notification_cleanup_task() -> int:
    """Delete read notifications past the retention period. Safe to run twice."""
    return services.notification_cleanup()


@worker_ready.connect
def _heartbeat_on_start(sender=None, **_: object) -> None:
    """Send one heartbeat through the broker as soon as a worker starts (beat sends the rest)."""
    worker_heartbeat_task.apply_async(queue="default")
