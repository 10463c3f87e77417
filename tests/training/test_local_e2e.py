"""End to end on the CPU: training file version → dataset → ready → job on the tiny model → local run task →
artifact in storage → signed download → the reloaded adapter reproduces the verification logits. Also a
cancel in the middle of training, from another thread, as the owner would do while the worker runs."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from urllib.parse import urlsplit

import pytest
import torch
from django.db import connection
from django.test import Client

from brightrun.models import CostRecord, Notification
from brightrun.storage import file_storage
from datasets.services import dataset_import, dataset_validate
from tests.datasets.conftest import built_version  # noqa: F401 - fixture
from training.models import BaseModel, GpuType, MetricPoint, ModelArtifact, TrainingEvent, TrainingJob
from training.services import artifact_download, catalogue_seed, training_job_cancel, training_job_create
from training.services.catalogue import TINY_TEST_MODEL_HF_ID
from training.tasks import training_job_run_task

SMALL = {"epochs": 2, "batch_size": 2, "grad_accum": 1, "max_seq_length": 256, "learning_rate": 1e-3, "rank": 8}


@pytest.fixture
def tiny_setup(built_version, owner_user, tiny_model_path, settings, tmp_path):  # noqa: F811
    """A ready imported dataset of the owner and the seeded catalogue, with the tiny model under
    ``TRAINING_MODELS_DIR`` (its row keeps the relative ``local_path`` "tiny-test")."""
    settings.TRAINING_MODELS_DIR = tiny_model_path.parent
    settings.TRAINING_WORK_DIR = tmp_path / "work"
    assert tiny_model_path.name == "tiny-test"
    dataset = dataset_import(owner=owner_user, training_file=built_version.training_file_id, version=1)
    dataset = dataset_validate(dataset_id=dataset.pk)
    assert dataset.status == "ready", dataset.error
    split = dataset.statistics["split"]
    assert split["train"]["examples"] and split["validation"]["examples"], split  # fixed ids: both non-empty
    catalogue_seed()
    tiny = BaseModel.objects.get(hf_id=TINY_TEST_MODEL_HF_ID)
    assert tiny.local_path == "tiny-test"
    return dataset, tiny, GpuType.objects.get(key="L40S-48GB")


def _create(owner, dataset, tiny, gpu, capture, **overrides):
    with capture(execute=False):
        return training_job_create(
            owner=owner,
            dataset=dataset,
            base_model=tiny,
            gpu_type=gpu,
            hyperparameters={**SMALL, **overrides},
            name="Tiny adapter",
        )


@pytest.mark.django_db
def test_local_training_end_to_end(tiny_setup, owner_user, tmp_path, settings, django_capture_on_commit_callbacks):
    dataset, tiny, gpu = tiny_setup
    job = _create(owner_user, dataset, tiny, gpu, django_capture_on_commit_callbacks)

    assert training_job_run_task(str(job.pk)) == "completed"

    job.refresh_from_db()
    assert job.status == "completed", (job.error_code, job.error_message)
    assert job.progress == 100 and job.total_steps > 4
    assert job.device.startswith("cuda" if torch.cuda.is_available() else "cpu")
    assert job.current_step == job.total_steps
    assert job.measured_tokens_per_second and job.measured_tokens_per_second > 0
    assert job.actual_cost is not None and job.actual_cost >= 0
    points = list(MetricPoint.objects.filter(job=job).order_by("step", "created_at"))
    losses = [p.training_loss for p in points if p.training_loss is not None]
    assert len(losses) == job.total_steps
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2  # the training loss falls
    validation = [p.validation_loss for p in points if p.validation_loss is not None]
    assert len(validation) == 2  # one evaluation per epoch
    kinds = list(TrainingEvent.objects.filter(job=job).values_list("kind", flat=True))
    assert kinds[0] == "queued" and "started" in kinds and kinds.count("epoch_end") == 2 and kinds[-1] == "completed"
    types = set(Notification.objects.filter(owner=owner_user).values_list("type", flat=True))
    assert {"training_started", "training_completed", "artifact_ready"} <= types
    assert CostRecord.objects.get(source_id=job.pk, kind="training").amount_usd == job.actual_cost
    assert not (settings.TRAINING_WORK_DIR / str(job.pk)).exists()  # the work folder is always removed

    artifact = ModelArtifact.objects.get(job=job)
    assert artifact.training_file_version_id == dataset.training_file_version_id
    assert artifact.quality is not None and artifact.quality["training_points"] == job.total_steps
    assert artifact.quality["final_validation_loss"] == pytest.approx(validation[-1], abs=1e-6)
    storage = file_storage()
    for entry in artifact.files:
        assert entry["key"] == f"users/{owner_user.pk}/models/{job.pk}/{entry['name']}"
        with storage.open(entry["key"], "rb") as handle:
            content = handle.read()
        assert len(content) == entry["size"] and hashlib.sha256(content).hexdigest() == entry["sha256"]

    adapter = tmp_path / "downloaded"
    adapter.mkdir()
    client = Client()  # anonymous: the signed URL is the authorisation
    for entry in artifact_download(artifact=artifact):
        response = client.get(urlsplit(entry["url"]).path)
        assert response.status_code == 200
        (adapter / entry["name"]).write_bytes(b"".join(response.streaming_content))
        assert hashlib.sha256((adapter / entry["name"]).read_bytes()).hexdigest() == entry["sha256"]

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    verification = json.loads((adapter / "training_config.json").read_text())["verification"]
    base_path = settings.TRAINING_MODELS_DIR / tiny.local_path
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), adapter).eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([verification["input_ids"]])).logits[0, -1]
    indices = torch.tensor(verification["top_indices"])
    tolerance = 5e-2 if torch.cuda.is_available() else 1e-4  # trained in bf16 on a GPU, reloaded in fp32 on the CPU
    assert torch.allclose(logits[indices], torch.tensor(verification["top_logits"]), atol=tolerance)


@pytest.mark.django_db(transaction=True)
def test_cancel_in_the_middle_of_training(tiny_setup, owner_user, django_capture_on_commit_callbacks):
    dataset, tiny, gpu = tiny_setup
    job = _create(owner_user, dataset, tiny, gpu, django_capture_on_commit_callbacks, epochs=20, batch_size=1)
    errors: list[BaseException] = []

    def cancel_at_first_metric() -> None:
        try:
            deadline = time.monotonic() + 120
            while not MetricPoint.objects.filter(job_id=job.pk).exists():
                if time.monotonic() > deadline:
                    raise AssertionError("no metric point within 120 s")
                time.sleep(0.02)
            training_job_cancel(job=TrainingJob.objects.get(pk=job.pk), actor=owner_user)
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)
        finally:
            connection.close()

    canceller = threading.Thread(target=cancel_at_first_metric)
    canceller.start()
    status = training_job_run_task(str(job.pk))
    canceller.join(timeout=30)
    assert not errors, errors

    job.refresh_from_db()
    assert status == "cancelled" and job.status == "cancelled"
    assert 0 < job.current_step < job.total_steps
    assert not ModelArtifact.objects.filter(job=job).exists()
    assert not file_storage().exists(f"users/{owner_user.pk}/models/{job.pk}/adapter_model.safetensors")
    assert TrainingEvent.objects.filter(job=job, kind="cancelled").exists()
    assert Notification.objects.filter(owner=owner_user, type="training_cancelled").count() == 1
    assert CostRecord.objects.filter(source_id=job.pk, kind="training").count() == 1  # it ran for a while
    assert training_job_run_task(str(job.pk)) is None  # a redelivery finds nothing to do
