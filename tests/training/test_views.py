"""Training pages: configure + live estimate, create, job list, monitor + live block, cancel, models, costs."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from tests.factories import (
    CostRecordFactory,
    DatasetFactory,
    ModelArtifactFactory,
    TrainingJobFactory,
)
from training.models import BaseModel, GpuType, HyperparameterPreset, MetricPoint, TrainingEvent, TrainingJob
from training.services import catalogue_seed, hyperparameters_resolve, training_estimate
from training.services.quality import quality_summary
from training.templatetags.training_format import duration

pytestmark = pytest.mark.django_db

CONFIGURE = reverse("training:configure")
ESTIMATE = reverse("training:estimate")
JOBS = reverse("training:job_list")
MODELS = reverse("training:model_list")
COSTS = reverse("training:costs")
COSTS_CSV = reverse("training:costs_csv")
QWEN_SMALL = "Qwen/Qwen2.5-0.5B-Instruct"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def _pk(model, **lookup) -> str:
    return str(model.objects.get(**lookup).pk)


def _statistics(train_tokens: int = 43800, validation_tokens: int = 4410) -> dict:
    """The validator's statistics of a small, realistic chat dataset (what the estimate reads)."""
    return {
        "examples": 12,
        "trainable_pairs": 30,
        "estimated_tokens": {"estimator": "utf8_chars_div_4", "total": train_tokens + validation_tokens},
        "split": {
            "validation_percent": 10,
            "train": {"examples": 11, "trainable_pairs": 27, "tokens": train_tokens, "assistant_tokens": 18200},
            "validation": {"examples": 1, "trainable_pairs": 3, "tokens": validation_tokens, "assistant_tokens": 1913},
        },
    }


def _dataset(owner, *, examples: int = 12, **fields):
    return DatasetFactory(owner=owner, statistics=_statistics(), example_count=examples, **fields)


@pytest.fixture
def catalogue(db):
    catalogue_seed()


def _form(dataset, /, **overrides) -> dict:
    """The configure form as a browser posts it: Qwen 0.5B, conservative, 1 × H100, local."""
    data = {
        "name": "",
        "dataset": str(dataset.pk),
        "base_model": str(BaseModel.objects.get(hf_id=QWEN_SMALL).pk),
        "preset": str(HyperparameterPreset.objects.get(key="conservative").pk),
        "gpu_type": str(GpuType.objects.get(key="H100-80GB").pk),
        "gpu_count": "1",
        "backend": "local",
        "max_seq_length": "2048",
        "seed": "42",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def _expected(dataset, *, preset="conservative", base_model=QWEN_SMALL, gpu="H100-80GB", count=1, **overrides):
    hyperparameters = hyperparameters_resolve(preset=HyperparameterPreset.objects.get(key=preset), overrides=overrides)
    return training_estimate(
        dataset=dataset,
        base_model=BaseModel.objects.get(hf_id=base_model),
        hyperparameters=hyperparameters,
        gpu_type=GpuType.objects.get(key=gpu),
        gpu_count=count,
    )


def _running(owner, *, started_ago=timedelta(hours=1), **fields) -> TrainingJob:
    return TrainingJobFactory(
        owner=owner,
        status="running",
        stage="Training",
        started_at=timezone.now() - started_ago,
        **fields,
    )


# --- configure ---------------------------------------------------------------------------------


def test_configure_shows_presets_suggestion_remote_note_and_estimate(settings, catalogue, owner_user, web_client_for):
    settings.TRAINING_REMOTE_ENDPOINT = ""
    small = _dataset(owner_user, name="Small set", examples=12)
    _dataset(owner_user, name="Mid set", examples=200)  # newest: the default without ?dataset=
    DatasetFactory(owner=owner_user, name="Still validating", status="validating")
    client = web_client_for(owner_user)

    response = client.get(CONFIGURE, {"dataset": small.pk})
    assert response.status_code == 200
    body = response.content.decode()
    assert f'<option value="{small.pk}" selected>Small set — 12 conversations</option>' in body
    assert "Still validating" not in body
    for name in ("Conservative", "Balanced", "Aggressive"):
        assert name in body
    conservative = HyperparameterPreset.objects.get(key="conservative")
    assert f'name="preset" value="{conservative.pk}" checked' in body
    assert f'id="preset-badge-{conservative.pk}" class="chip suggested">suggested' in body
    balanced = HyperparameterPreset.objects.get(key="balanced")
    assert f'id="preset-badge-{balanced.pk}" class="chip suggested" hidden' in body
    assert "Suggested for this dataset’s size: <strong>Conservative</strong>" in body
    # remote is not configured: disabled with a note
    assert 'value="remote" disabled' in body and "Remote training is not configured" in body
    # the advanced fields show the preset's values; sliders have no name (the number input is submitted)
    assert 'name="rank" value="8"' in body and 'name="learning_rate" value="0.0001"' in body
    assert 'type="range" class="hp-slider" id="slider_rank"' in body and body.count('name="rank"') == 1
    # live estimate wiring and the no-JavaScript fallback
    assert f'hx-get="{ESTIMATE}"' in body and "input delay:300ms" in body and "Recalculate estimate" in body
    default_model = BaseModel.objects.active().filter(is_test_model=False).first()  # Qwen2.5 0.5B
    expected = _expected(small, base_model=default_model.hf_id, gpu=GpuType.objects.active().first().key)
    assert expected["cost_usd"] == "0.00"  # 87,600 tokens on a 0.5B model take seconds
    assert "87,600" in body and "<strong>&lt; $0.01</strong>" in body

    page = client.get(CONFIGURE).content.decode()  # newest dataset, 200 conversations → balanced
    assert "Suggested for this dataset’s size: <strong>Balanced</strong>" in page
    assert f'name="preset" value="{balanced.pk}" checked' in page

    settings.TRAINING_REMOTE_ENDPOINT = "http://127.0.0.1:9/v2/endpoint"
    page = client.get(CONFIGURE).content.decode()
    assert 'value="remote" disabled' not in page and "Remote training is not configured" not in page


def test_configure_ignores_another_users_dataset_and_explains_empty_states(
    catalogue, owner_user, other_user, web_client_for
):
    theirs = _dataset(other_user, name="Their set")
    client = web_client_for(owner_user)
    body = client.get(CONFIGURE, {"dataset": theirs.pk}).content.decode()
    assert "Training needs a ready dataset" in body and "Their set" not in body

    mine = _dataset(owner_user, name="My set")
    body = client.get(CONFIGURE, {"dataset": theirs.pk}).content.decode()
    assert "Their set" not in body and f'<option value="{mine.pk}" selected>' in body


def test_configure_without_catalogue_explains(owner_user, web_client_for):
    _dataset(owner_user)
    body = web_client_for(owner_user).get(CONFIGURE).content.decode()
    assert "manage.py seed_training" in body


def test_estimate_fragment_renders_numbers(catalogue, owner_user, web_client_for):
    dataset = _dataset(owner_user)
    client = web_client_for(owner_user)
    response = client.get(ESTIMATE, _form(dataset, base_model=_pk(BaseModel, hf_id=LLAMA)), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = response.content.decode()
    assert "<html" not in body
    expected = _expected(dataset, base_model=LLAMA)
    assert "<strong>87,600</strong>" in body and "43,800 per epoch × 2" in body and "4,410 validation" in body
    assert f"{round(expected['throughput_tokens_per_second']):,} tokens/s" in body
    assert f"${expected['cost_usd']}</strong>" in body
    assert f"{expected['gpu_hours']:.2f}" in body and "1 × H100-80GB at $4.20/h" in body
    seconds = expected["time_seconds"]
    assert f"<strong>{duration(seconds['total'])}</strong>" in body and f"load {duration(seconds['load'])}" in body
    assert (
        f"train {duration(seconds['train'])}" in body
        and f"evaluation {escape(duration(seconds['evaluation']))}" in body
    )
    assert "load 16 s" in body  # 8B parameters × 2 bytes at 1 GB/s
    assert "Weights (bf16)" in body and "Activations" in body and "Optimizer state" in body
    assert 'class="status status-completed">fits' in body
    # out-of-band: the suggestion, the badges and (not customising) the preset's values in the fields
    assert 'id="preset-suggestion" hx-swap-oob="true"' in body and 'id="hp-fields" class="hp-grid" hx-swap-oob' in body
    assert 'name="rank" value="8"' in body and "lr 1e-04" in body

    customised = client.get(
        ESTIMATE, _form(dataset, customise="1", rank="64", learning_rate="0.0005", epochs="3", target_modules="q")
    ).content.decode()
    assert "r 64" in customised and "lr 5e-04" in customised and "131,400" in customised  # 43,800 × 3
    assert 'id="hp-fields"' not in customised  # the user's typing is never replaced


def test_estimate_fragment_reports_memory_that_does_not_fit(catalogue, owner_user, web_client_for):
    dataset = _dataset(owner_user)
    data = _form(
        dataset,
        base_model=_pk(BaseModel, hf_id=LLAMA),
        gpu_type=_pk(GpuType, key="A100-40GB"),
        customise="1",
        batch_size="16",
        max_seq_length="8192",
        target_modules=["q", "k", "v", "o"],
    )
    body = web_client_for(owner_user).get(ESTIMATE, data).content.decode()
    assert 'class="status status-failed">does not fit' in body
    assert "Use fewer tokens per batch" in body and "4-bit" in body and "larger GPU" in body


def test_estimate_fragment_explains_bad_input_without_failing(catalogue, owner_user, other_user, web_client_for):
    dataset = _dataset(owner_user)
    client = web_client_for(owner_user)
    response = client.get(ESTIMATE, _form(dataset, customise="1", learning_rate="1", target_modules="q"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Some hyperparameters are out of range: learning_rate." in body
    assert "Learning rate: Must be between 1e-05 and 0.001." in body

    body = client.get(ESTIMATE, _form(dataset, gpu_count="abc", rank="x")).content.decode()
    assert "Fix the fields below" in body and "GPU count: Enter a whole number." in body

    theirs = _dataset(other_user)
    body = client.get(ESTIMATE, _form(theirs)).content.decode()
    assert "Dataset: Select a valid choice." in body and "87,600" not in body

    body = client.get(ESTIMATE, _form(dataset, gpu_count="9")).content.decode()
    assert "GPU count must be between 1 and 8" in body
    assert client.get(ESTIMATE).status_code == 200


# --- create ----------------------------------------------------------------------------------


def test_create_redirects_to_the_monitor_and_dispatches(
    catalogue, owner_user, web_client_for, django_capture_on_commit_callbacks
):
    dataset = _dataset(owner_user)
    client = web_client_for(owner_user)
    data = _form(dataset, name="Planner voice", customise="1", learning_rate="0.0005", target_modules=["q", "v"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(CONFIGURE, {**data, "action": "create"})
    job = TrainingJob.objects.get(owner=owner_user)
    assert response.status_code == 302 and response.url == reverse("training:job_detail", kwargs={"pk": job.pk})
    assert job.status == "queued" and job.name == "Planner voice" and job.backend == "local"
    assert job.preset.key == "conservative" and job.dataset == dataset
    assert job.hyperparameters["learning_rate"] == 0.0005 and job.hyperparameters["target_modules"] == ["q", "v"]
    assert job.hyperparameters["rank"] == 8  # the rest from the preset
    assert job.estimated_cost == Decimal(job.estimate["cost_usd"])
    assert len(callbacks) == 1  # the run task, after commit
    page = client.get(response.url).content.decode()
    assert "Training job “Planner voice” is queued." in page and 'hx-trigger="every 2s"' in page


def test_create_without_customising_uses_the_preset(
    catalogue, owner_user, web_client_for, django_capture_on_commit_callbacks
):
    dataset = _dataset(owner_user)
    # stale values in the advanced fields are ignored while "customise" is off; seed and length always apply
    data = _form(dataset, rank="64", learning_rate="0.0009", seed="7", max_seq_length="1024")
    with django_capture_on_commit_callbacks(execute=False):
        response = web_client_for(owner_user).post(CONFIGURE, data)
    assert response.status_code == 302
    job = TrainingJob.objects.get(owner=owner_user)
    assert job.hyperparameters["rank"] == 8 and job.hyperparameters["learning_rate"] == 1e-4
    assert job.hyperparameters["seed"] == 7 and job.hyperparameters["max_seq_length"] == 1024


def test_recalculate_without_javascript_keeps_the_values(catalogue, owner_user, web_client_for):
    dataset = _dataset(owner_user)
    data = _form(dataset, customise="1", rank="32", epochs="4", target_modules=["q", "k"], action="estimate")
    response = web_client_for(owner_user).post(CONFIGURE, data)
    assert response.status_code == 200 and not TrainingJob.objects.exists()
    body = response.content.decode()
    assert 'name="rank" value="32"' in body and 'name="customise" value="1" checked' in body
    assert 'value="q" checked' in body and 'value="gate" checked' not in body
    assert "175,200" in body  # 43,800 × 4 epochs


@pytest.mark.parametrize(
    ("overrides", "messages"),
    [
        (
            {"customise": "1", "learning_rate": "1", "target_modules": None},
            ["Some hyperparameters are out of range", "Must be between 1e-05 and 0.001.", "Choose at least one"],
        ),
        ({"backend": "remote"}, ["Remote training is not configured"]),
        ({"gpu_count": "9"}, ["GPU count must be between 1 and 8"]),
        ({"dataset": "not-a-uuid"}, ["Dataset: “not-a-uuid” is not a valid UUID."]),
    ],
)
def test_create_with_bad_input_is_a_400_with_the_reason(
    settings, catalogue, owner_user, web_client_for, overrides, messages
):
    settings.TRAINING_REMOTE_ENDPOINT = ""
    dataset = _dataset(owner_user)
    response = web_client_for(owner_user).post(CONFIGURE, _form(dataset, **overrides))
    assert response.status_code == 400
    body = response.content.decode()
    for message in messages:
        assert message in body
    assert not TrainingJob.objects.exists()


def test_create_on_another_users_dataset_is_refused(catalogue, owner_user, other_user, web_client_for):
    theirs = _dataset(other_user)
    response = web_client_for(owner_user).post(CONFIGURE, _form(theirs))
    assert response.status_code == 400 and "Select a valid choice." in response.content.decode()
    assert not TrainingJob.objects.exists()


# --- job list ----------------------------------------------------------------------------------


def test_job_list_filters_paginates_and_keeps_queries_flat(
    owner_user, other_user, web_client_for, django_assert_max_num_queries
):
    queued = TrainingJobFactory(owner=owner_user, name="First run", estimated_cost="1.25")
    running = _running(owner_user, name="Second run", progress=42.0)
    done = TrainingJobFactory(owner=owner_user, name="Third run", status="completed", actual_cost="3.5", progress=100)
    TrainingJobFactory(owner=other_user, name="Someone else's run")
    client = web_client_for(owner_user)
    with django_assert_max_num_queries(7):  # session, user, 2 × permissions (nav), bell, count, page
        body = client.get(JOBS).content.decode()
    for job in (queued, running, done):
        assert reverse("training:job_detail", kwargs={"pk": job.pk}) in body
    assert "Someone else" not in body
    assert "≈ $1.25 est." in body and "$3.50" in body and 'value="42"' in body
    assert 'class="status status-running"' in body and running.dataset.name in body

    response = client.get(JOBS, {"status": "running"}, HTTP_HX_REQUEST="true")
    fragment = response.content.decode()
    assert "<html" not in fragment and "HX-Request" in response["Vary"]
    assert "Second run" in fragment and "First run" not in fragment and "Third run" not in fragment
    assert "Second run" in client.get(JOBS, {"status": "bogus"}).content.decode()  # unknown filter: all

    for n in range(25):
        TrainingJobFactory(owner=owner_user, dataset=queued.dataset, name=f"Bulk {n}")
    page = client.get(JOBS).content.decode()
    assert "Page 1 of 2" in page and "?page=2" in page


# --- monitor -----------------------------------------------------------------------------------


def _metrics(job, steps: int, *, every_validation: int = 5) -> None:
    MetricPoint.objects.bulk_create(
        MetricPoint(
            owner=job.owner,
            job=job,
            step=step,
            epoch=step / steps * 2,
            training_loss=3.0 - step * 2.0 / steps,
            learning_rate=2e-4 * (1 - step / (steps + 1)),
            validation_loss=(3.1 - step * 1.5 / steps) if step % every_validation == 0 else None,
        )
        for step in range(1, steps + 1)
    )


def test_monitor_of_a_running_job_shows_progress_charts_events_and_cost(owner_user, web_client_for):
    job = _running(
        owner_user,
        name="Voice run",
        gpu_count=2,
        progress=50.0,
        current_step=10,
        total_steps=20,
        current_epoch=1.0,
        latest_metrics={"training_loss": 1.2345, "learning_rate": 0.00015, "tokens_per_second": 1234.5},
        estimated_cost="9.99",
        estimate={"time_seconds": {"total": 5400}, "throughput_tokens_per_second": 2000.0},
    )
    _metrics(job, 10)
    TrainingEvent.objects.create(owner=owner_user, job=job, kind="started", message="Training on cpu.")
    body = web_client_for(owner_user).get(reverse("training:job_detail", kwargs={"pk": job.pk})).content.decode()
    assert "Voice run" in body and "Training" in body
    assert "step 10 of 20" in body and "epoch 1 of 2" in body and 'value="50.0"' in body
    assert body.count('<svg viewBox="0 0 640 220"') == 2
    assert '<polyline class="series-train"' in body and '<polyline class="series-val"' in body
    assert '<polyline class="series-lr"' in body
    assert "1.2345" in body and "1.5e-04" in body and "1,235" in body  # latest metrics
    assert "Training on cpu." in body
    assert f'hx-get="{reverse("training:job_live", kwargs={"pk": job.pk})}" hx-trigger="every 2s"' in body
    assert reverse("training:job_cancel", kwargs={"pk": job.pk}) in body
    # cost so far: 1 h × 2 GPUs × $4.20; the estimate beside it
    assert "$8.40 so far" in body and "$9.99" in body and "1 h 30 min" in body


def test_monitor_downsamples_long_runs(owner_user, web_client_for):
    job = _running(owner_user, total_steps=1500, current_step=1500)
    _metrics(job, 1500, every_validation=100)
    body = web_client_for(owner_user).get(reverse("training:job_detail", kwargs={"pk": job.pk})).content.decode()
    lines = dict(re.findall(r'<polyline class="(series-[a-z]+)" fill="none" points="([^"]*)"', body))
    assert set(lines) == {"series-train", "series-val", "series-lr"}
    assert 2 <= len(lines["series-train"].split()) <= 500
    assert len(lines["series-val"].split()) == 15  # every evaluation kept
    assert "over 1 point" not in body


def test_monitor_of_a_failed_job_shows_the_error_and_hint(owner_user, web_client_for):
    job = TrainingJobFactory(
        owner=owner_user,
        status="failed",
        error_code="out_of_memory",
        error_message="CUDA out of memory while allocating 2.1 GiB.",
        error_hint="Reduce the batch size, the max sequence length or the LoRA rank.",
        finished_at=timezone.now(),
    )
    body = web_client_for(owner_user).get(reverse("training:job_detail", kwargs={"pk": job.pk})).content.decode()
    assert "<code>out_of_memory</code>" in body and "CUDA out of memory" in body
    assert "Reduce the batch size, the max sequence length or the LoRA rank." in body
    assert 'hx-trigger="every 2s"' not in body and reverse("training:job_cancel", kwargs={"pk": job.pk}) not in body
    assert f"{CONFIGURE}?dataset={job.dataset_id}" in body
    assert "Training and validation loss: no points yet." in body


def test_monitor_of_a_completed_job_links_the_model(owner_user, web_client_for):
    artifact = ModelArtifactFactory(job__owner=owner_user, job__actual_cost="2.5", job__finished_at=timezone.now())
    body = web_client_for(owner_user).get(reverse("training:job_detail", kwargs={"pk": artifact.job.pk})).content
    assert reverse("training:model_detail", kwargs={"pk": artifact.pk}) in body.decode()
    assert "$2.50" in body.decode()


def test_live_fragment_polls_until_terminal(owner_user, web_client_for):
    job = _running(owner_user, progress=10.0)
    client = web_client_for(owner_user)
    url = reverse("training:job_live", kwargs={"pk": job.pk})
    response = client.get(url, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and 'id="job-live"' in body
    assert "HX-Refresh" not in response and response["Cache-Control"] == "no-store"
    assert 'hx-trigger="every 2s"' in body

    TrainingJob.objects.filter(pk=job.pk).update(status="completed", progress=100, finished_at=timezone.now())
    response = client.get(url, HTTP_HX_REQUEST="true")
    assert response["HX-Refresh"] == "true" and 'hx-trigger="every 2s"' not in response.content.decode()


def test_cancel_queued_running_and_finished_jobs(owner_user, web_client_for):
    client = web_client_for(owner_user)
    queued = TrainingJobFactory(owner=owner_user)
    response = client.post(reverse("training:job_cancel", kwargs={"pk": queued.pk}), follow=True)
    queued.refresh_from_db()
    assert queued.status == "cancelled" and "The job was cancelled." in response.content.decode()

    running = _running(owner_user)
    response = client.post(reverse("training:job_cancel", kwargs={"pk": running.pk}), follow=True)
    running.refresh_from_db()
    assert running.status == "running" and running.cancel_requested_at is not None
    body = response.content.decode()
    assert "Cancellation requested; the job stops at its next step." in body and "cancel requested" in body

    done = TrainingJobFactory(owner=owner_user, status="completed")
    response = client.post(reverse("training:job_cancel", kwargs={"pk": done.pk}), follow=True)
    done.refresh_from_db()
    assert done.status == "completed" and "The job is already completed." in response.content.decode()
    assert client.get(reverse("training:job_cancel", kwargs={"pk": done.pk})).status_code == 405


# --- models ------------------------------------------------------------------------------------


def _quality() -> dict:
    points = [
        {"step": 1, "training_loss": 2.0},
        {"step": 10, "training_loss": 0.9, "validation_loss": 1.1},
    ]
    return quality_summary(points=points)


def test_model_list_and_detail_with_and_without_quality(owner_user, web_client_for):
    scored = ModelArtifactFactory(job__owner=owner_user, job__name="Scored run", quality=_quality())
    unscored = ModelArtifactFactory(job__owner=owner_user, job__name="Pointless run", quality=None)
    client = web_client_for(owner_user)
    body = client.get(MODELS).content.decode()
    assert "5/5 excellent" in body and "not enough data" in body
    assert reverse("training:model_detail", kwargs={"pk": unscored.pk}) in body

    body = client.get(reverse("training:model_detail", kwargs={"pk": scored.pk})).content.decode()
    assert "55.0%" in body and "2.0000 → 0.9000" in body and "1.1000" in body
    assert "3.00" in body  # perplexity = exp(1.1)
    assert "<dt>Overfitting</dt><dd>no</dd>" in body
    for entry in scored.files:
        assert entry["sha256"] in body
        assert reverse("training:model_file_download", kwargs={"pk": scored.pk, "name": entry["name"]}) in body
    assert reverse("datasets:detail", kwargs={"pk": scored.dataset_id}) in body
    assert reverse("training:job_detail", kwargs={"pk": scored.job_id}) in body
    assert f"AutoModelForCausalLM.from_pretrained(&quot;{scored.base_model.hf_id}&quot;" in body
    assert "PeftModel.from_pretrained(base, &quot;scored-run&quot;)" in body
    assert "<code>rank</code>" in body and "uploaded dataset (no training file)" in body

    body = client.get(reverse("training:model_detail", kwargs={"pk": unscored.pk})).content.decode()
    assert "Not enough data" in body and 'class="score' not in body and "Perplexity" not in body


def test_model_file_download_redirects_to_a_signed_url(local_storage, owner_user, web_client_for):
    artifact = ModelArtifactFactory(job__owner=owner_user)
    client = web_client_for(owner_user)
    url = reverse("training:model_file_download", kwargs={"pk": artifact.pk, "name": "adapter_config.json"})
    response = client.get(url)
    assert response.status_code == 302 and "/files/download/" in response["Location"]
    missing = reverse("training:model_file_download", kwargs={"pk": artifact.pk, "name": "secrets.txt"})
    assert client.get(missing).status_code == 404


# --- costs -------------------------------------------------------------------------------------


def test_costs_page_and_csv(owner_user, other_user, web_client_for):
    now = timezone.now()
    CostRecordFactory(owner=owner_user, kind="generation", amount_usd="1.50", incurred_at=now)
    CostRecordFactory(owner=owner_user, kind="judging", amount_usd="0.25", incurred_at=now)
    CostRecordFactory(owner=owner_user, kind="training", amount_usd="4.20", incurred_at=now - timedelta(days=3))
    CostRecordFactory(owner=owner_user, kind="training", amount_usd="10.00", incurred_at=now - timedelta(days=20))
    CostRecordFactory(owner=other_user, kind="training", amount_usd="777.00", incurred_at=now)
    ModelArtifactFactory(job__owner=owner_user)
    client = web_client_for(owner_user)

    body = client.get(COSTS).content.decode()
    assert "$15.95" in body and "777" not in body
    assert '<rect class="kind-generation"' in body and '<rect class="kind-training"' in body
    assert "$14.20" in body  # training over 30 days, per artifact too
    assert f'href="{COSTS_CSV}?days=30"' in body

    body = client.get(COSTS, {"days": "7"}).content.decode()
    assert "$5.95" in body and "$10.00" not in body and "Last 7 days</strong>" in body
    assert "Last 30 days</strong>" in client.get(COSTS, {"days": "nope"}).content.decode()

    response = client.get(COSTS_CSV, {"days": "7"})
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="brightrun-costs-7d.csv"' in response["Content-Disposition"]
    lines = response.content.decode("utf-8").splitlines()
    assert lines[0] == "day,kind,amount_usd" and len(lines) == 1 + 7 * 3
    today = timezone.localdate().isoformat()
    assert f"{today},generation,1.5000" in lines and f"{today},training,0.0000" in lines
    assert not any("777" in line for line in lines)


def test_empty_costs_page(owner_user, web_client_for):
    body = web_client_for(owner_user).get(COSTS, {"days": "90"}).content.decode()
    assert "Nothing was spent in the last 90 days." in body and 'role="img"' not in body


# --- access ------------------------------------------------------------------------------------


def test_other_users_jobs_and_models_are_404(owner_user, other_user, web_client_for):
    job = _running(owner_user)
    artifact = ModelArtifactFactory(job__owner=owner_user)
    client = web_client_for(other_user)
    for name, kwargs in [
        ("training:job_detail", {"pk": job.pk}),
        ("training:job_live", {"pk": job.pk}),
        ("training:model_detail", {"pk": artifact.pk}),
        ("training:model_file_download", {"pk": artifact.pk, "name": "adapter_config.json"}),
    ]:
        assert client.get(reverse(name, kwargs=kwargs)).status_code == 404
    assert client.post(reverse("training:job_cancel", kwargs={"pk": job.pk})).status_code == 404
    job.refresh_from_db()
    assert job.cancel_requested_at is None


@pytest.mark.parametrize("url", [CONFIGURE, ESTIMATE, JOBS, MODELS, COSTS, COSTS_CSV])
def test_anonymous_is_sent_to_login(url, web_client_for):
    response = web_client_for(None).get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_navigation_links_the_training_pages(owner_user, web_client_for):
    body = web_client_for(owner_user).get(JOBS).content.decode()
    assert f'href="{JOBS}" aria-current="page">Training<' in body
    assert f'href="{MODELS}"' in body and f'href="{COSTS}"' in body


def test_job_list_refreshes_itself_while_a_job_is_active(owner_user, web_client_for):
    job = _running(owner_user, name="Voice run", progress=40.0)
    client = web_client_for(owner_user)
    page = client.get(JOBS).content.decode()
    assert f'hx-get="{JOBS}" hx-trigger="every 3s" hx-swap="outerHTML"' in page
    assert 'aria-label="Progress of Voice run"' in page
    TrainingJob.objects.filter(pk=job.pk).update(status="completed")
    fragment = client.get(JOBS, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and "hx-trigger" not in fragment


def test_cancelling_a_job_asks_first(owner_user, web_client_for):
    job = _running(owner_user)
    page = web_client_for(owner_user).get(reverse("training:job_detail", kwargs={"pk": job.pk})).content.decode()
    form = page.split(f'action="{reverse("training:job_cancel", kwargs={"pk": job.pk})}"')[1]
    assert form.lstrip().startswith('data-confirm="Cancel this training job?')
