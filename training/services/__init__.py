"""Services of the training app (re-exported here; see the modules of this package)."""

from training.services.catalogue import catalogue_seed
from training.services.estimate import lora_parameter_count, training_estimate
from training.services.hyperparameters import RANGES, TARGET_MODULES, hyperparameters_resolve, preset_suggest

__all__ = [
    "RANGES",
    "TARGET_MODULES",
    "catalogue_seed",
    "hyperparameters_resolve",
    "lora_parameter_count",
    "preset_suggest",
    "training_estimate",
]

# --- jobs, local backend, artifacts, quality, costs (helper CORE) ---------------------------
from training.services.artifacts import artifact_download
from training.services.costs import costs_summary
from training.services.finish import training_job_cost
from training.services.jobs import (
    training_event_record,
    training_job_cancel,
    training_job_cancel_requested,
    training_job_claim,
    training_job_complete,
    training_job_create,
    training_job_dispatch,
    training_job_fail,
    training_job_mark_cancelled,
    training_job_progress,
    training_job_stage,
    training_job_start,
    training_metric_record,
)
from training.services.local import training_job_run_local
from training.services.quality import quality_summary

# --- remote backend (helper REMOTE) -----------------------------------------------------------
from training.services.remote import (
    remote_cancel,
    remote_configured,
    training_job_poll_remote,
    training_job_submit_remote,
    training_jobs_poll_remote,
)
from training.services.remote_callbacks import training_job_callback

__all__ += [
    "artifact_download",
    "costs_summary",
    "quality_summary",
    "training_event_record",
    "training_job_cancel",
    "training_job_cancel_requested",
    "training_job_claim",
    "training_job_complete",
    "training_job_cost",
    "training_job_create",
    "training_job_dispatch",
    "training_job_fail",
    "training_job_mark_cancelled",
    "training_job_progress",
    "training_job_run_local",
    "training_job_stage",
    "training_job_start",
    "training_metric_record",
]

__all__ += [
    "remote_cancel",
    "remote_configured",
    "training_job_callback",
    "training_job_poll_remote",
    "training_job_submit_remote",
    "training_jobs_poll_remote",
]
