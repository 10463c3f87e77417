"""API of training jobs (+metrics, events, cancel), trained models (+download) and the costs summary."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone

from brightrun.storage import file_storage
from tests.factories import (
    ConversationFactory,
    CostRecordFactory,
    DatasetFactory,
    ModelArtifactFactory,
    TrainingJobFactory,
)
from tests.training.helpers import running
from tests.training.test_estimate import statistics
from training.api_catalogue import TrainingEstimateView
from training.models import TrainingJob
from training.services import catalogue_seed, training_event_record, training_metric_record

pytestmark = pytest.mark.django_db
JOBS = "/api/v1/training-jobs/"


@pytest.fixture
def seeded(db):
    catalogue_seed()


@pytest.fixture
def dataset(owner_user):
    return DatasetFactory(owner=owner_user, example_count=120, statistics=statistics(50_000, 5_000, examples=120))


def _create_body(dataset, **changes) -> dict:
    return {
        "dataset": str(dataset.pk),
        "base_model": "Qwen/Qwen2.5-0.5B-Instruct",
        "gpu_type": "A100-80GB",
        **changes,
    }


# --- routes -----------------------------------------------------------------------------------


def test_estimate_and_callback_routes_are_not_captured_by_the_detail_route():
    assert resolve(f"{JOBS}estimate/").func.view_class is TrainingEstimateView
    assert resolve(f"{JOBS}7f0c2b1e-0a53-4c57-9d1e-2f7a4c1b9e01/").url_name == "training-job-detail"
    with pytest.raises(Resolver404):
        resolve(f"{JOBS}not-a-uuid/")


def test_estimate_still_answers_next_to_the_jobs_routes(seeded, dataset, owner_user, api_client_for):
    response = api_client_for(owner_user).post(f"{JOBS}estimate/", _create_body(dataset), format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["preset"] == "conservative"


# --- jobs -------------------------------------------------------------------------------------


def test_create_job(seeded, dataset, owner_user, api_client_for, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_client_for(owner_user).post(
            JOBS,
            _create_body(dataset, gpu_count=2, hyperparameters={"epochs": 1}, name="First adapter"),
            format="json",
        )
    assert response.status_code == 201, response.json()
    assert len(callbacks) == 1
    body = response.json()
    assert body["status"] == "queued" and body["name"] == "First adapter" and body["backend"] == "local"
    assert body["preset"] == "conservative"  # suggested by size, as in the estimate
    assert body["hyperparameters"]["epochs"] == 1 and body["hyperparameters"]["rank"] == 8
    assert body["dataset"] == {"id": str(dataset.pk), "name": dataset.name}
    assert body["base_model"]["hf_id"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert body["gpu_type"] == "A100-80GB" and body["gpu_count"] == 2
    assert body["estimate"]["tokens"] == 50_000 and Decimal(body["estimated_cost"]) >= 0
    assert body["artifact"] is None
    assert "callback_secret" not in body


def test_create_with_another_users_dataset_does_not_exist(seeded, dataset, other_user, api_client_for):
    response = api_client_for(other_user).post(JOBS, _create_body(dataset), format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "does_not_exist" and "dataset" in body["errors"]
    assert not TrainingJob.objects.exists()


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"hyperparameters": {"learning_rate": 0.5}}, "invalid_hyperparameters", "learning_rate"),
        ({"gpu_count": 12}, "invalid_gpu_count", "gpu_count"),
        ({"backend": "remote"}, "remote_not_configured", None),
        ({"backend": "mainframe"}, "invalid_choice", "backend"),
        ({"preset": "reckless"}, "does_not_exist", "preset"),
    ],
)
def test_create_rejects_bad_input(changes, code, field, seeded, dataset, owner_user, api_client_for, settings):
    settings.TRAINING_REMOTE_ENDPOINT = ""
    response = api_client_for(owner_user).post(JOBS, _create_body(dataset, **changes), format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == code
    if field:
        assert field in body["errors"]


def test_create_on_a_dataset_that_is_not_ready(seeded, owner_user, api_client_for):
    validating = DatasetFactory(owner=owner_user, status="validating")
    response = api_client_for(owner_user).post(JOBS, _create_body(validating), format="json")
    assert response.status_code == 400 and response.json()["code"] == "dataset_not_ready"


def test_list_and_retrieve_jobs(owner_user, other_user, api_client_for, django_assert_max_num_queries):
    jobs = [TrainingJobFactory(owner=owner_user) for _ in range(3)]
    ModelArtifactFactory(job=running(jobs[0]))
    TrainingJob.objects.filter(pk=jobs[0].pk).update(status="completed")
    TrainingJobFactory(owner=other_user)
    client = api_client_for(owner_user)
    with django_assert_max_num_queries(6):
        response = client.get(JOBS)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    by_id = {row["id"]: row for row in body["results"]}
    assert by_id[str(jobs[0].pk)]["artifact"] is not None and by_id[str(jobs[1].pk)]["artifact"] is None
    assert client.get(JOBS, {"status": ["completed"]}).json()["count"] == 1
    detail = client.get(reverse("training-job-detail", args=[jobs[1].pk]))
    assert detail.status_code == 200 and detail.json()["status"] == "queued"


def test_metrics_and_events(owner_user, api_client_for, django_assert_max_num_queries):
    job = running(TrainingJobFactory(owner=owner_user), total_steps=4)
    for step in range(1, 5):
        training_metric_record(job=job, step=step, epoch=step / 4, training_loss=3.0 - step / 2)
    training_metric_record(job=job, step=4, epoch=1.0, validation_loss=2.1)
    training_event_record(job=job, kind="epoch_end", message="Epoch 1 ended")
    client = api_client_for(owner_user)
    with django_assert_max_num_queries(6):
        metrics = client.get(reverse("training-job-metrics", args=[job.pk]))
    assert metrics.status_code == 200
    rows = metrics.json()["results"]
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 4]
    assert rows[0]["training_loss"] == 2.5 and rows[-1]["validation_loss"] == 2.1
    newer = client.get(reverse("training-job-metrics", args=[job.pk]), {"after_step": 3}).json()["results"]
    assert len(newer) == 2
    bad = client.get(reverse("training-job-metrics", args=[job.pk]), {"after_step": "x"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_after_step"
    with django_assert_max_num_queries(6):
        events = client.get(reverse("training-job-events", args=[job.pk]))
    assert [row["kind"] for row in events.json()["results"]] == ["started", "epoch_end"]


def test_cancel(owner_user, other_user, api_client_for):
    queued = TrainingJobFactory(owner=owner_user)
    client = api_client_for(owner_user)
    response = client.post(reverse("training-job-cancel", args=[queued.pk]))
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    job = running(TrainingJobFactory(owner=owner_user))
    response = client.post(reverse("training-job-cancel", args=[job.pk]))
    assert response.status_code == 200
    assert response.json()["status"] == "running" and response.json()["cancel_requested_at"]
    other = api_client_for(other_user).post(reverse("training-job-cancel", args=[job.pk]))
    assert other.status_code == 404
    TrainingJob.objects.filter(pk=job.pk).update(status="failed")
    finished = client.post(reverse("training-job-cancel", args=[job.pk]))
    assert finished.status_code == 400 and finished.json()["code"] == "job_finished"


# --- models -----------------------------------------------------------------------------------


def test_models_list_and_retrieve(owner_user, other_user, api_client_for, django_assert_max_num_queries):
    mine = [ModelArtifactFactory(job__owner=owner_user) for _ in range(3)]
    ModelArtifactFactory(job__owner=other_user)
    client = api_client_for(owner_user)
    with django_assert_max_num_queries(5):
        response = client.get(reverse("model-list"))
    assert response.status_code == 200 and response.json()["count"] == 3
    row = client.get(reverse("model-detail", args=[mine[0].pk])).json()
    assert row["job"] == str(mine[0].job_id) and row["quality"]["score"] == 4
    assert row["files"][0] == {"name": "adapter_model.safetensors", "size": 4, "sha256": "0" * 64}
    assert "key" not in row["files"][0]
    assert row["base_model"]["hf_id"] == mine[0].base_model.hf_id and row["training_file_version"] is None


def test_model_download_returns_working_signed_urls(local_storage, owner_user, api_client_for, client):
    artifact = ModelArtifactFactory(job__owner=owner_user)
    for entry in artifact.files:
        file_storage().save(entry["key"], ContentFile(b"x" * entry["size"]))
    response = api_client_for(owner_user).post(reverse("model-download", args=[artifact.pk]))
    assert response.status_code == 200
    files = response.json()
    assert [f["name"] for f in files] == ["adapter_model.safetensors", "adapter_config.json"]
    assert all(f["expires_at"] and f["sha256"] for f in files)
    fetched = client.get(urlsplit(files[0]["url"]).path)
    assert fetched.status_code == 200 and b"".join(fetched.streaming_content) == b"xxxx"
    assert "signature" not in str(artifact.files)  # URLs are never stored


# --- costs ------------------------------------------------------------------------------------


def test_costs_summary(owner_user, other_user, api_client_for):
    now = timezone.now()
    CostRecordFactory(owner=owner_user, kind="generation", amount_usd="3.000000", incurred_at=now)
    CostRecordFactory(owner=owner_user, kind="judging", amount_usd="1.000000", incurred_at=now - timedelta(days=1))
    CostRecordFactory(owner=owner_user, kind="training", amount_usd="8.400000", incurred_at=now)
    CostRecordFactory(owner=owner_user, kind="training", amount_usd="100.000000", incurred_at=now - timedelta(days=40))
    CostRecordFactory(owner=other_user, kind="generation", amount_usd="50.000000", incurred_at=now)
    for _ in range(2):
        ConversationFactory(owner=owner_user, status="approved", exchange_count=4)
    ConversationFactory(owner=owner_user, status="pending_review", exchange_count=4)
    ModelArtifactFactory(job__owner=owner_user)
    client = api_client_for(owner_user)

    body = client.get(reverse("cost-summary"), {"days": 7}).json()
    assert body["days"] == 7 and len(body["per_day"]) == 7
    assert body["per_day"][-1]["date"] == timezone.localdate().isoformat()
    assert body["totals"] == {"generation": "3.0000", "judging": "1.0000", "training": "8.4000", "total": "12.4000"}
    assert body["counts"] == {"approved_conversations": 2, "trainable_pairs": 8, "artifacts": 1}
    assert body["unit_costs"] == {
        "per_approved_conversation": "2.0000",
        "per_trainable_pair": "0.5000",
        "per_artifact": "8.4000",
    }
    assert sum(Decimal(day["total"]) for day in body["per_day"]) == Decimal("12.4")
    assert client.get(reverse("cost-summary"), {"days": 90}).json()["totals"]["training"] == "108.4000"
    assert client.get(reverse("cost-summary")).json()["days"] == 30
    bad = client.get(reverse("cost-summary"), {"days": 14})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_days"
    assert api_client_for(None).get(reverse("cost-summary")).status_code in (401, 403)
    empty = api_client_for(other_user).get(reverse("cost-summary"), {"days": 7}).json()
    assert empty["unit_costs"]["per_artifact"] is None
