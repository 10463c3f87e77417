"""Celery tasks of the training_files app: thin adapters over services, safe to run twice.

The build runs on the ``default`` queue: the project's dedicated queues are generation, validation and training,
and none fits. A build is streamed (flat memory) and bounded by the time limits below; if builds grow long
enough to delay short default-queue tasks, route ``training_files.tasks.*`` to a queue of its own in
``CELERY_TASK_ROUTES``.
"""

from __future__ import annotations

from celery import shared_task

from training_files.models import TrainingFileVersion
from training_files.services import training_file_build


@shared_task(
    name="training_files.tasks.training_file_build_task",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=3600,
    time_limit=3700,
)
def training_file_build_task(version_id: str) -> str | None:
    """Build one training-file version. A version that is gone, ready or failed is left alone."""
    version = TrainingFileVersion.objects.filter(pk=version_id).first()
    if version is None or version.status != TrainingFileVersion.Status.BUILDING:
        return None
    return training_file_build(version=version).status
