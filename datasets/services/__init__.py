"""Services of the datasets app (re-exported here; see ``lifecycle``, ``runs`` and ``maintenance``)."""

from datasets.services.lifecycle import (
    PendingUpload,
    dataset_confirm,
    dataset_create,
    dataset_delete,
    dataset_download,
    dataset_import,
    dataset_revalidate,
    dataset_validation_enqueue,
    upload_for,
)
from datasets.services.maintenance import SweepResult, datasets_cleanup_deleted, datasets_sweep
from datasets.services.runs import dataset_validate, dataset_validation_gave_up
from datasets.services.splits import dataset_split_files

__all__ = [
    "PendingUpload",
    "SweepResult",
    "dataset_confirm",
    "dataset_create",
    "dataset_delete",
    "dataset_download",
    "dataset_import",
    "dataset_revalidate",
    "dataset_split_files",
    "dataset_validate",
    "dataset_validation_enqueue",
    "dataset_validation_gave_up",
    "datasets_cleanup_deleted",
    "datasets_sweep",
    "upload_for",
]
