"""Celery tasks of the training_files app: thin adapters over services, safe to run twice.

The build runs on the ``default`` queue: the project's dedicated queues are generation, validation and training,
and none fits. A build is streamed (flat memory) and bounded by the time limits below; if builds grow long
enough to delay short default-queue tasks, route ``training_files.tasks.*`` to a queue of its own in
``CELERY_TASK_ROUTES``.
"""

from __future__ import annotations

from celery import Task, shared_task

from training_files.models import Export, TrainingFileVersion
from training_files.services import (
    export_fail,
    export_render,
    exports_expire,
    training_file_build,
    training_file_builds_sweep,
)


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


@shared_task(name="training_files.tasks.training_file_builds_sweep_task", ignore_result=True)
def training_file_builds_sweep_task() -> dict[str, int]:
    """Every minute: re-enqueue builds whose worker was lost; fail those out of attempts (``build_lost``)."""
    result = training_file_builds_sweep()
    return {"requeued": result.requeued, "failed": result.failed}


class _ExportRenderTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        """A render killed outside the service's own handling (time limit, lost worker) still ends failed."""
        if args:
            export_fail(export_id=args[0], error=f"{type(exc).__name__}: {exc}")


@shared_task(
    base=_ExportRenderTask,
    name="training_files.tasks.export_render_task",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=3600,
    time_limit=3700,
)
def export_render_task(export_id: str) -> str | None:
    """Render one export. An export that is gone or no longer queued is left alone."""
    export = Export.objects.filter(pk=export_id).first()
    if export is None or export.status != Export.Status.QUEUED:
        return None
    return export_render(export=export).status


@shared_task(name="training_files.tasks.exports_expire_task", ignore_result=True)
def exports_expire_task() -> int:
    """Daily: expire completed exports past their expiry and delete their stored objects."""
    return exports_expire()
