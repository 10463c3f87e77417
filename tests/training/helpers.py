"""Builders shared by the training job tests: ready datasets in storage, catalogue rows, running jobs."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.core.files.base import ContentFile
from django.utils import timezone

from brightrun.storage import file_storage
from datasets.services import dataset_validate
from tests.datasets.conftest import chat_jsonl
from tests.factories import BaseModelFactory, DatasetFactory, GpuTypeFactory
from training.models import TrainingJob
from training.services import training_job_claim, training_job_start


def ready_dataset(owner, examples: int = 40, name: str = "Planner set"):
    """A dataset of ``examples`` chat lines, stored and validated for real (needs a storage fixture)."""
    dataset = DatasetFactory(owner=owner, name=name, status="validating", format="", size=0, example_count=0)
    file_storage().save(dataset.storage_key, ContentFile(chat_jsonl(examples)))
    result = dataset_validate(dataset_id=dataset.pk)
    assert result is not None and result.status == "ready", result and result.error
    return result


def catalogue():
    """One base model and one GPU type ($4.20 per GPU-hour)."""
    return BaseModelFactory(hf_id="test/half-b"), GpuTypeFactory(key="H100-80GB", price_per_hour=Decimal("4.20"))


def running(job: TrainingJob, *, total_steps: int = 10, started_ago: timedelta | None = None) -> TrainingJob:
    """Claim and start ``job`` as a worker would; ``started_ago`` backdates the start (for costs)."""
    claimed = training_job_claim(job_id=job.pk)
    assert claimed is not None
    started = training_job_start(job=claimed, total_steps=total_steps, device="cpu")
    assert started is not None and started.status == "running"
    if started_ago is not None:
        TrainingJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - started_ago)
        started.refresh_from_db()
    return started
