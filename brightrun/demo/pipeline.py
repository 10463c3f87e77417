"""The training side of the demo workspace: a training file of the approved demo conversations, a dataset
imported from its version and a finished LoRA job on the tiny test model, each made by the real services and
run synchronously.

The services enqueue their tasks after commit as always (``training_file_build_task``, ``dataset_validate_task``,
``training_job_run_task``); this module then runs the same work itself. Every piece of that work starts with a
claim (a conditional update), so whichever runs second — this loader or a worker of ``make run`` that picked
up the message — finds the work taken or done and returns without redoing it. When a worker got there first,
the loader waits for its result. Idempotent: each object is found again by owner and name (the dataset by its
training-file version) before anything is created.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

from brightrun.errors import ApplicationError
from datasets.models import Dataset
from datasets.services import dataset_import, dataset_validate
from training.models import BaseModel, GpuType, TrainingJob
from training.services import training_job_create, training_job_run_local
from training.services.catalogue import TINY_TEST_MODEL_HF_ID
from training_files.models import TrainingFile, TrainingFileVersion
from training_files.services import training_file_build, training_file_create

TRAINING_FILE_NAME = "Demo: approved conversations"
DATASET_NAME = "Demo: approved conversations v1"
JOB_NAME = "Demo: tiny adapter"
GPU_TYPE = "L40S-48GB"  # any active catalogue GPU: it prices the estimate and the cost record
#: Small enough to train on a CPU in seconds. max_seq_length is 2048 (the tiny model's context), not 512: the
#: tiny tokenizer's vocabulary is 512, so Elena's system prompt alone is about 1,000 tokens and a 512-token
#: window would hold no assistant token at all.
TINY_HYPERPARAMETERS: dict[str, Any] = {
    "epochs": 2,
    "batch_size": 2,
    "grad_accum": 1,
    "max_seq_length": 2048,
    "rank": 8,
    "learning_rate": 1e-3,
}
WAIT_SECONDS = {"build": 300, "validation": 300, "training": 1800}


def _wait(fetch: Callable[[], Any], done: Callable[[Any], bool], *, what: str, seconds: int) -> Any:
    """Poll ``fetch()`` until ``done(row)``: a worker claimed the work before the loader did."""
    deadline = time.monotonic() + seconds
    row = fetch()
    while not done(row):
        if time.monotonic() > deadline:
            raise ApplicationError(f"Gave up waiting for the worker to finish {what}.", code="demo_timeout")
        time.sleep(1)
        row = fetch()
    return row


def demo_training_file_load(*, owner, conversation_ids: list[Any], created: Counter) -> TrainingFileVersion:
    """The demo training file (made once from ``conversation_ids``) and its latest version, built and ready."""
    training_file = TrainingFile.objects.filter(owner=owner, name=TRAINING_FILE_NAME).first()
    if training_file is None:
        training_file, _ = training_file_create(
            owner=owner,
            name=TRAINING_FILE_NAME,
            description="The approved conversations of the demo set (manage.py load_demo).",
            conversation_ids=conversation_ids,
        )
        created["training_files"] += 1
    version = training_file.versions.order_by("-number").first()
    if version.status == TrainingFileVersion.Status.BUILDING:
        version = training_file_build(version=version)
        version = _wait(
            lambda: TrainingFileVersion.objects.get(pk=version.pk),
            lambda v: v.status != TrainingFileVersion.Status.BUILDING,
            what=f"building {TRAINING_FILE_NAME} v{version.number}",
            seconds=WAIT_SECONDS["build"],
        )
    if version.status != TrainingFileVersion.Status.READY:
        raise ApplicationError(f"The demo training file's build failed: {version.error}", code="demo_build_failed")
    return version


def demo_dataset_load(*, owner, version: TrainingFileVersion, created: Counter) -> Dataset:
    """The dataset imported from ``version`` (once), validated and ready."""
    dataset = (
        Dataset.objects.filter(owner=owner, training_file_version=version)
        .exclude(status=Dataset.Status.DELETED)
        .order_by("-created_at")
        .first()
    )
    if dataset is None:
        dataset = dataset_import(
            owner=owner, training_file=version.training_file_id, version=version.number, name=DATASET_NAME
        )
        created["datasets"] += 1
    if dataset.status == Dataset.Status.VALIDATING:
        dataset_validate(dataset_id=dataset.pk)
        dataset = _wait(
            lambda: Dataset.objects.get(pk=dataset.pk),
            lambda d: d.status != Dataset.Status.VALIDATING,
            what=f"validating {dataset.name}",
            seconds=WAIT_SECONDS["validation"],
        )
    if dataset.status != Dataset.Status.READY:
        raise ApplicationError(
            f"The demo dataset is {dataset.status}: {dataset.error or dataset.issue_counts}",
            code="demo_dataset_invalid",
        )
    return dataset


def demo_tiny_model(*, created: Counter) -> BaseModel:
    """The tiny test model's catalogue row, with its files built under ``TRAINING_MODELS_DIR`` when missing."""
    base = BaseModel.objects.filter(hf_id=TINY_TEST_MODEL_HF_ID).first()
    if base is None:
        raise ApplicationError(
            "The training catalogue is not seeded; run manage.py seed_training first.", code="catalogue_missing"
        )
    path = Path(base.local_path)
    path = path if path.is_absolute() else Path(settings.TRAINING_MODELS_DIR) / path
    if not (path / "config.json").exists():
        from training.trainer.tiny import build_tiny_model

        build_tiny_model(path)
        created["tiny_model"] += 1
    return base


def demo_training_job_load(*, owner, dataset: Dataset, created: Counter) -> TrainingJob:
    """The demo job on the tiny model (created once; again only if the last one failed), run to its end."""
    job = (
        TrainingJob.objects.filter(owner=owner, dataset=dataset, name=JOB_NAME)
        .exclude(status__in=[TrainingJob.Status.FAILED, TrainingJob.Status.CANCELLED])
        .order_by("-created_at")
        .first()
    )
    if job is None:
        base = demo_tiny_model(created=created)
        gpu = GpuType.objects.filter(key=GPU_TYPE).first() or GpuType.objects.filter(is_active=True).first()
        job = training_job_create(
            owner=owner,
            dataset=dataset,
            base_model=base,
            gpu_type=gpu,
            backend=TrainingJob.Backend.LOCAL,
            hyperparameters=TINY_HYPERPARAMETERS,
            name=JOB_NAME,
        )
        created["training_jobs"] += 1
    if job.status == TrainingJob.Status.QUEUED:
        demo_tiny_model(created=created)  # a job left queued by an interrupted run still needs the model
        training_job_run_local(job_id=job.pk)
    job = _wait(
        lambda: TrainingJob.objects.get(pk=job.pk),
        lambda j: j.is_terminal,
        what=f"training {JOB_NAME}",
        seconds=WAIT_SECONDS["training"],
    )
    if job.status != TrainingJob.Status.COMPLETED:
        raise ApplicationError(
            f"The demo training job ended {job.status}: {job.error_code} {job.error_message} {job.error_hint}".strip(),
            code="demo_training_failed",
        )
    return job
