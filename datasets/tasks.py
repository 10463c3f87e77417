"""Celery tasks of the datasets app: thin adapters over services, safe to run twice.

All route to the ``validation`` queue (``CELERY_TASK_ROUTES``): a long validation never delays generation or
the default queue's short tasks.
"""

from __future__ import annotations

from celery import shared_task

from datasets.services import dataset_validate, datasets_cleanup_deleted, datasets_sweep


@shared_task(
    name="datasets.tasks.dataset_validate_task",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=1800,
    time_limit=1900,
)
def dataset_validate_task(dataset_id: str) -> str | None:
    """Validate one dataset; a dataset that is gone or not waiting for validation is left alone."""
    dataset = dataset_validate(dataset_id=dataset_id)
    return dataset.status if dataset else None


@shared_task(name="datasets.tasks.datasets_sweep_task", ignore_result=True)
def datasets_sweep_task() -> dict[str, int]:
    """Every minute: re-enqueue stuck validations, expire uploads never confirmed."""
    result = datasets_sweep()
    return {"requeued": result.requeued, "expired": result.expired}


@shared_task(name="datasets.tasks.datasets_cleanup_task", ignore_result=True)
def datasets_cleanup_task() -> int:
    """Daily: remove stored files of datasets soft-deleted more than 30 days ago."""
    return datasets_cleanup_deleted()
