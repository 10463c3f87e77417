"""Catalogue API, the estimate endpoint and the training admin."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import resolve, reverse

from tests.factories import DatasetFactory, UserFactory
from tests.training.test_estimate import statistics
from training.api_catalogue import TrainingEstimateView
from training.models import (
    BaseModel,
    GpuType,
    HyperparameterPreset,
    MetricPoint,
    ModelArtifact,
    TrainingEvent,
    TrainingJob,
)
from training.services import catalogue_seed

ESTIMATE_URL = "/api/v1/training-jobs/estimate/"


@pytest.fixture
def catalogue(db):
    catalogue_seed()


@pytest.fixture
def ready_dataset(owner_user):
    return DatasetFactory(owner=owner_user, example_count=200, statistics=statistics(400_000, 40_000, examples=200))


# --- catalogue lists ----------------------------------------------------------------------


def test_base_models_list_active_rows(catalogue, owner_user, api_client_for, django_assert_max_num_queries):
    BaseModel.objects.filter(hf_id="mistralai/Mistral-7B-Instruct-v0.3").update(is_active=False)
    client = api_client_for(owner_user)
    with django_assert_max_num_queries(6):
        response = client.get(reverse("base-model-list"))
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [r["hf_id"] for r in rows] == [
        "brightrun/tiny-test-llama",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "Qwen/Qwen2.5-7B-Instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
    ]
    tiny = rows[0]
    assert {
        "id",
        "hf_id",
        "display_name",
        "parameters_billions",
        "context_length",
        "has_chat_template",
        "license_note",
        "is_test_model",
    } <= set(tiny)
    assert "local_path" not in tiny
    assert tiny["is_test_model"] is True and tiny["context_length"] == 2048
    detail = client.get(reverse("base-model-detail", kwargs={"pk": rows[2]["id"]}))
    assert detail.json()["hidden_size"] == 3584


def test_presets_and_gpu_types(catalogue, owner_user, api_client_for, django_assert_max_num_queries):
    client = api_client_for(owner_user)
    with django_assert_max_num_queries(6):
        presets = client.get(reverse("preset-list")).json()["results"]
    assert [p["key"] for p in presets] == ["conservative", "balanced", "aggressive"]
    balanced = client.get(reverse("preset-detail", kwargs={"key": "balanced"})).json()
    assert balanced["target_modules"] == ["q", "k", "v", "o", "gate", "up", "down"]
    assert (balanced["suggested_min_conversations"], balanced["suggested_max_conversations"]) == (150, 300)
    assert balanced["is_default"] is True

    GpuType.objects.filter(key="A100-40GB").update(is_active=False)
    with django_assert_max_num_queries(6):
        gpus = client.get(reverse("gpu-type-list")).json()["results"]
    assert [g["key"] for g in gpus] == ["L40S-48GB", "A100-80GB", "H100-80GB", "H200-141GB"]
    h100 = client.get(reverse("gpu-type-detail", kwargs={"key": "H100-80GB"})).json()
    assert h100 == {
        "key": "H100-80GB",
        "name": "NVIDIA H100 80GB",
        "memory_gb": 80,
        "peak_tflops_bf16": 989,
        "price_per_hour": "4.20",
        "max_count": 8,
    }
    assert client.get(reverse("gpu-type-detail", kwargs={"key": "A100-40GB"})).status_code == 404


def test_catalogue_is_read_only_and_needs_login(catalogue, api_client_for):
    staff = UserFactory(username="staffer", is_staff=True)
    response = api_client_for(staff).post(reverse("gpu-type-list"), {"key": "X"}, format="json")
    assert response.status_code == 405
    for name in ("base-model-list", "preset-list", "gpu-type-list"):
        assert api_client_for(None).get(reverse(name)).status_code in (401, 403)


# --- estimate -----------------------------------------------------------------------------


def test_estimate_route_wins_over_the_router():
    assert resolve(ESTIMATE_URL).func.view_class is TrainingEstimateView
    assert reverse("training-job-estimate") == ESTIMATE_URL


def test_estimate_for_own_dataset(catalogue, ready_dataset, owner_user, api_client_for):
    response = api_client_for(owner_user).post(
        ESTIMATE_URL,
        {"dataset": str(ready_dataset.pk), "base_model": "Qwen/Qwen2.5-7B-Instruct", "gpu_type": "H100-80GB"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["preset"] == "balanced" and body["preset_suggested"] is True  # 200 conversations
    assert body["hyperparameters"]["rank"] == 16 and body["hyperparameters"]["max_seq_length"] == 2048
    assert body["gpu_count"] == 1 and body["base_model"] == "Qwen/Qwen2.5-7B-Instruct"
    assert body["tokens"] == 400_000 * 3
    assert body["validation_tokens"] == 40_000
    assert body["memory"]["fits"] is True
    assert set(body["time_seconds"]) == {"load", "train", "evaluation", "total"}
    assert Decimal(body["cost_usd"]) > 0


def test_estimate_with_preset_overrides_and_model_id(catalogue, ready_dataset, owner_user, api_client_for):
    model = BaseModel.objects.get(hf_id="Qwen/Qwen2.5-0.5B-Instruct")
    response = api_client_for(owner_user).post(
        ESTIMATE_URL,
        {
            "dataset": str(ready_dataset.pk),
            "base_model": str(model.pk),
            "preset": "aggressive",
            "hyperparameters": {"epochs": 1, "max_seq_length": 1024},
            "gpu_type": "L40S-48GB",
            "gpu_count": 2,
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["preset"] == "aggressive" and body["preset_suggested"] is False
    assert body["hyperparameters"]["rank"] == 32
    assert body["hyperparameters"]["epochs"] == 1
    assert body["tokens"] == 400_000
    assert body["memory"]["available_gb"] == 86.4  # 0.9 × 2 × 48


def test_estimate_refuses_another_users_dataset(catalogue, ready_dataset, other_user, api_client_for):
    response = api_client_for(other_user).post(
        ESTIMATE_URL,
        {"dataset": str(ready_dataset.pk), "base_model": "Qwen/Qwen2.5-7B-Instruct", "gpu_type": "H100-80GB"},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "does_not_exist"
    assert "does not exist" in body["errors"]["dataset"][0]


def test_estimate_refuses_a_deleted_or_malformed_dataset(catalogue, owner_user, api_client_for):
    deleted = DatasetFactory(owner=owner_user, status="deleted")
    client = api_client_for(owner_user)
    for value in (str(deleted.pk), "not-a-uuid"):
        response = client.post(
            ESTIMATE_URL,
            {"dataset": value, "base_model": "Qwen/Qwen2.5-7B-Instruct", "gpu_type": "H100-80GB"},
            format="json",
        )
        assert response.status_code == 400
        assert "dataset" in response.json()["errors"]


def test_estimate_refuses_a_dataset_that_is_not_ready(catalogue, owner_user, api_client_for):
    validating = DatasetFactory(owner=owner_user, status="validating")
    response = api_client_for(owner_user).post(
        ESTIMATE_URL,
        {"dataset": str(validating.pk), "base_model": "Qwen/Qwen2.5-7B-Instruct", "gpu_type": "H100-80GB"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "dataset_not_ready"


@pytest.mark.parametrize("count", [0, 9, -3])
def test_estimate_refuses_a_bad_gpu_count(count, catalogue, ready_dataset, owner_user, api_client_for):
    response = api_client_for(owner_user).post(
        ESTIMATE_URL,
        {
            "dataset": str(ready_dataset.pk),
            "base_model": "Qwen/Qwen2.5-7B-Instruct",
            "gpu_type": "H100-80GB",
            "gpu_count": count,
        },
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_gpu_count"
    assert "gpu_count" in body["errors"]


def test_estimate_reports_bad_hyperparameters_per_field(catalogue, ready_dataset, owner_user, api_client_for):
    response = api_client_for(owner_user).post(
        ESTIMATE_URL,
        {
            "dataset": str(ready_dataset.pk),
            "base_model": "Qwen/Qwen2.5-7B-Instruct",
            "gpu_type": "H100-80GB",
            "hyperparameters": {"learning_rate": 0.5, "target_modules": ["q", "zzz"]},
        },
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_hyperparameters"
    assert set(body["errors"]) == {"learning_rate", "target_modules"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base_model", "nope/missing"),
        ("base_model", "999999"),
        ("gpu_type", "TPU"),
        ("preset", "wild"),
        ("gpu_count", "x"),
    ],
)
def test_estimate_refuses_unknown_catalogue_rows(field, value, catalogue, ready_dataset, owner_user, api_client_for):
    data = {"dataset": str(ready_dataset.pk), "base_model": "Qwen/Qwen2.5-7B-Instruct", "gpu_type": "H100-80GB"}
    data[field] = value
    response = api_client_for(owner_user).post(ESTIMATE_URL, data, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_estimate_needs_login(catalogue, ready_dataset, api_client_for):
    response = api_client_for(None).post(ESTIMATE_URL, {"dataset": str(ready_dataset.pk)}, format="json")
    assert response.status_code in (401, 403)


# --- admin --------------------------------------------------------------------------------


@pytest.fixture
def admin_client(web_client_for):
    return web_client_for(UserFactory(username="root", is_staff=True, is_superuser=True))


@pytest.fixture
def job(catalogue, ready_dataset, owner_user):
    job = TrainingJob.objects.create(
        owner=owner_user,
        name="first run",
        dataset=ready_dataset,
        base_model=BaseModel.objects.get(hf_id="brightrun/tiny-test-llama"),
        preset=HyperparameterPreset.objects.get(key="balanced"),
        hyperparameters={"rank": 16},
        gpu_type=GpuType.objects.get(key="H100-80GB"),
    )
    TrainingEvent.objects.create(owner=owner_user, job=job, kind="queued", message="Queued.")
    MetricPoint.objects.create(owner=owner_user, job=job, step=1, epoch=0.1, training_loss=2.5)
    ModelArtifact.objects.create(
        owner=owner_user,
        job=job,
        name="first run adapter",
        base_model=job.base_model,
        dataset=job.dataset,
        hyperparameters=job.hyperparameters,
        seed=42,
    )
    return job


@pytest.mark.parametrize(
    "model", [BaseModel, HyperparameterPreset, GpuType, TrainingJob, TrainingEvent, MetricPoint, ModelArtifact]
)
def test_admin_changelists_and_change_pages_load(model, job, admin_client):
    opts = model._meta
    response = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert response.status_code == 200
    row = model.objects.first()
    change = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]))
    assert change.status_code == 200


def test_job_admin_shows_inlines_hides_the_secret_and_offers_cancel(job, admin_client):
    change = admin_client.get(reverse("admin:training_trainingjob_change", args=[job.pk]))
    body = change.content.decode()
    assert "Queued." in body and "first run adapter" in body
    assert job.callback_secret not in body
    changelist = admin_client.get(reverse("admin:training_trainingjob_changelist"))
    actions = dict(changelist.context["action_form"].fields["action"].choices)
    assert "cancel" in actions


def test_job_admin_cancel_action_calls_the_service(job, admin_client):
    import training.services

    if not hasattr(training.services, "training_job_cancel"):
        pytest.skip("training_job_cancel lands with the jobs services")
    response = admin_client.post(
        reverse("admin:training_trainingjob_changelist"),
        {"action": "cancel", "_selected_action": [str(job.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == ["first run: cancelled."]
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.CANCELLED


@pytest.mark.parametrize("bad", ["H100\x00", "x" * 300, 7, ["H100-80GB"]])
def test_estimate_refuses_keys_that_cannot_exist(catalogue, ready_dataset, owner_user, api_client_for, bad):
    """A NUL byte or a non-string key is "does not exist", never a database error."""
    response = api_client_for(owner_user).post(
        ESTIMATE_URL,
        {"dataset": str(ready_dataset.pk), "base_model": "Qwen/Qwen2.5-7B-Instruct", "gpu_type": bad, "preset": bad},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) >= {"gpu_type", "preset"}
