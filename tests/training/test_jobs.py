"""Training job services (SPEC §10.3): create rules, claim, conditional transitions, cancel, metrics, events,
complete (artifact, quality, cost, notifications), fail, the orphan check and the quality summary."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.base import ContentFile
from django.utils import timezone

from brightrun.errors import ApplicationError
from brightrun.models import CostRecord, Notification
from tests.datasets.conftest import built_version  # noqa: F401 - fixture
from tests.factories import DatasetFactory, PresetFactory, TrainingJobFactory
from tests.training.helpers import catalogue, ready_dataset, running
from training.models import MetricPoint, ModelArtifact, TrainingEvent, TrainingJob
from training.services import (
    quality_summary,
    training_event_record,
    training_job_cancel,
    training_job_cancel_requested,
    training_job_claim,
    training_job_complete,
    training_job_create,
    training_job_fail,
    training_job_mark_cancelled,
    training_job_stage,
    training_job_start,
    training_metric_record,
)
from training.services.local import training_job_check_orphan, training_job_run_failed
from training.tasks import training_job_run_task
from training.trainer.errors import classify_exception

pytestmark = pytest.mark.django_db


def _kinds(job) -> list[str]:
    return list(TrainingEvent.objects.filter(job=job).values_list("kind", flat=True))


def _notes(owner) -> list[str]:
    return list(Notification.objects.filter(owner=owner).order_by("created_at").values_list("type", flat=True))


def _files(job, names=("adapter_model.safetensors", "adapter_config.json")) -> list[dict]:
    prefix = f"users/{job.owner_id}/models/{job.pk}/"
    return [{"name": n, "key": prefix + n, "size": 10 + i, "sha256": f"{i:x}" * 64} for i, n in enumerate(names)]


# --- create -----------------------------------------------------------------------------------


def test_create_stores_final_hyperparameters_and_estimate_and_enqueues_after_commit(
    local_storage, owner_user, django_capture_on_commit_callbacks
):
    dataset = ready_dataset(owner_user)
    base, gpu = catalogue()
    preset = PresetFactory(key="conservative")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = training_job_create(
            owner=owner_user,
            dataset=dataset,
            base_model=base,
            gpu_type=gpu,
            gpu_count=2,
            preset=preset,
            hyperparameters={"epochs": 3, "max_seq_length": 1024},
        )
    assert len(callbacks) == 1  # training_job_run_task.delay, after commit only
    assert job.status == "queued" and job.backend == "local"
    assert job.hyperparameters["rank"] == 8 and job.hyperparameters["epochs"] == 3
    assert job.hyperparameters["max_seq_length"] == 1024 and job.hyperparameters["seed"] == 42
    assert job.estimate["gpu_count"] == 2 and job.estimate["epochs"] == 3
    assert job.estimated_cost == Decimal(job.estimate["cost_usd"])
    assert job.name == f"{base.display_name} · {dataset.name}"
    assert _kinds(job) == ["queued"]
    assert len(job.callback_secret) >= 32


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"gpu_count": 0}, "invalid_gpu_count"),
        ({"gpu_count": 9}, "invalid_gpu_count"),
        ({"backend": "remote"}, "remote_not_configured"),
        ({"backend": "cluster"}, "invalid_backend"),
        ({"hyperparameters": {"learning_rate": 1.0}}, "invalid_hyperparameters"),
        ({"hyperparameters": {"rnak": 8}}, "invalid_hyperparameters"),
        ({"name": "x" * 201}, "invalid_name"),
    ],
)
def test_create_rules(changes, code, local_storage, owner_user, settings):
    settings.TRAINING_REMOTE_ENDPOINT = ""
    dataset = ready_dataset(owner_user)
    base, gpu = catalogue()
    kwargs = {"owner": owner_user, "dataset": dataset, "base_model": base, "gpu_type": gpu, **changes}
    with pytest.raises(ApplicationError) as caught:
        training_job_create(**kwargs)
    assert caught.value.code == code
    assert not TrainingJob.objects.exists()


def test_create_refuses_another_users_or_unready_dataset_and_inactive_rows(owner_user, other_user):
    base, gpu = catalogue()
    theirs = DatasetFactory(owner=other_user)
    with pytest.raises(ApplicationError) as caught:
        training_job_create(owner=owner_user, dataset=theirs, base_model=base, gpu_type=gpu)
    assert (caught.value.code, caught.value.status_code) == ("dataset_not_found", 404)
    validating = DatasetFactory(owner=owner_user, status="validating")
    with pytest.raises(ApplicationError) as caught:
        training_job_create(owner=owner_user, dataset=validating, base_model=base, gpu_type=gpu)
    assert caught.value.code == "dataset_not_ready"
    ready = DatasetFactory(owner=owner_user)
    base.is_active = False
    with pytest.raises(ApplicationError) as caught:
        training_job_create(owner=owner_user, dataset=ready, base_model=base, gpu_type=gpu)
    assert caught.value.code == "invalid_base_model"


def test_create_remote_dispatches_the_submit_task(owner_user, settings, django_capture_on_commit_callbacks):
    settings.TRAINING_REMOTE_ENDPOINT = "http://127.0.0.1:9/v2/endpoint"
    base, gpu = catalogue()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = training_job_create(
            owner=owner_user, dataset=DatasetFactory(owner=owner_user), base_model=base, gpu_type=gpu, backend="remote"
        )
    assert job.backend == "remote" and len(callbacks) == 1


# --- claim and transitions ----------------------------------------------------------------------


def test_claim_is_exclusive():
    job = TrainingJobFactory()
    claimed = training_job_claim(job_id=job.pk)
    assert claimed is not None and claimed.status == "preparing" and claimed.claimed_at is not None
    assert training_job_claim(job_id=job.pk) is None
    assert training_job_claim(job_id="00000000-0000-0000-0000-000000000000") is None


def test_second_run_task_on_a_claimed_job_does_not_run_it():
    job = TrainingJobFactory()
    claimed = training_job_claim(job_id=job.pk)
    assert training_job_run_task(str(job.pk)) is None  # not claimable, heartbeat fresh: left alone
    claimed.refresh_from_db()
    assert claimed.status == "preparing" and not claimed.error_code
    started = training_job_start(job=claimed, total_steps=4, device="cpu")
    assert training_job_run_task(str(job.pk)) is None
    started.refresh_from_db()
    assert started.status == "running" and started.current_step == 0
    assert MetricPoint.objects.count() == 0


def test_start_only_from_preparing_and_notifies_once():
    job = TrainingJobFactory()
    assert training_job_start(job=job, total_steps=5, device="cpu") is None  # still queued
    claimed = training_job_claim(job_id=job.pk)
    started = training_job_start(job=claimed, total_steps=5, device="cpu")
    assert started.status == "running" and started.total_steps == 5 and started.started_at is not None
    again = training_job_start(job=started, total_steps=5, device="cpu")  # a duplicate "started" callback
    assert again.status == "running"
    assert _kinds(job) == ["started"]
    assert _notes(job.owner) == ["training_started"]


def test_terminal_states_are_final():
    job = running(TrainingJobFactory())
    artifact = training_job_complete(job=job, files=_files(job))
    failed = training_job_fail(job=job, code="trainer_error", message="late")
    assert failed.status == "completed" and failed.error_code == ""
    assert training_job_mark_cancelled(job=job).status == "completed"
    assert training_job_complete(job=job, files=_files(job)) == artifact  # idempotent
    assert training_job_stage(job=job, stage="Zombie") is False
    assert training_metric_record(job=job, step=99, epoch=9, training_loss=0.1) is None
    with pytest.raises(ApplicationError) as caught:
        training_job_cancel(job=job, actor=job.owner)
    assert caught.value.code == "job_finished"
    job.refresh_from_db()
    assert job.status == "completed" and job.stage == "Completed"


def test_complete_needs_a_running_job():
    job = TrainingJobFactory()
    claimed = training_job_claim(job_id=job.pk)
    with pytest.raises(ApplicationError) as caught:
        training_job_complete(job=claimed, files=_files(job))
    assert caught.value.code == "job_not_running"
    assert not ModelArtifact.objects.exists()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda files: [{**files[0], "key": files[0]["key"].replace("/models/", "/datasets/")}],
        lambda files: [{**files[0], "key": "users/someone-else/models/x/adapter_model.safetensors"}],
        lambda files: [{**files[0], "sha256": "not-a-digest"}],
        lambda files: [{**files[0], "size": -1}],
        lambda files: [files[0], files[0]],
        lambda files: [],
    ],
)
def test_complete_checks_the_file_entries(mutate):
    job = running(TrainingJobFactory())
    with pytest.raises(ApplicationError) as caught:
        training_job_complete(job=job, files=mutate(_files(job)))
    assert caught.value.code == "invalid_artifact_files"
    job.refresh_from_db()
    assert job.status == "running"


# --- cancel -------------------------------------------------------------------------------------


def test_cancel_queued_is_immediate(owner_user):
    job = TrainingJobFactory(owner=owner_user)
    cancelled = training_job_cancel(job=job, actor=owner_user)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert cancelled.actual_cost == 0
    assert _kinds(job) == ["cancelled"]
    assert _notes(owner_user) == ["training_cancelled"]
    assert not CostRecord.objects.exists()  # it never ran
    assert training_job_cancel(job=job, actor=owner_user).status == "cancelled"  # idempotent
    assert training_job_claim(job_id=job.pk) is None


def test_cancel_running_is_a_request_honoured_by_the_runner(owner_user, other_user):
    job = running(TrainingJobFactory(owner=owner_user))
    assert training_job_cancel_requested(job_id=job.pk) is False
    with pytest.raises(ApplicationError) as caught:
        training_job_cancel(job=job, actor=other_user)
    assert caught.value.status_code == 404
    requested = training_job_cancel(job=job, actor=owner_user)
    assert requested.status == "running" and requested.cancel_requested_at is not None
    first = requested.cancel_requested_at
    assert training_job_cancel(job=job, actor=owner_user).cancel_requested_at == first
    assert training_job_cancel_requested(job_id=job.pk) is True
    cancelled = training_job_mark_cancelled(job=job)
    assert cancelled.status == "cancelled"
    assert CostRecord.objects.filter(source_id=job.pk, kind="training").count() == 1


def test_cancel_requested_is_true_for_a_job_that_is_no_longer_active():
    job = running(TrainingJobFactory())
    training_job_fail(job=job, code="trainer_error", message="boom")
    assert training_job_cancel_requested(job_id=job.pk) is True
    assert training_job_cancel_requested(job_id="00000000-0000-0000-0000-000000000000") is True


# --- metrics and events -------------------------------------------------------------------------


def test_metric_points_update_the_job_cheaply(django_assert_num_queries):
    job = running(TrainingJobFactory(), total_steps=10)
    with django_assert_num_queries(2):
        point = training_metric_record(
            job=job, step=5, epoch=0.5, training_loss=2.5, learning_rate=1e-4, grad_norm=float("nan")
        )
    assert point.owner_id == job.owner_id and point.grad_norm is None and point.validation_loss is None
    training_metric_record(job=job, step=5, epoch=0.5, validation_loss=2.7)
    job.refresh_from_db()
    assert job.current_step == 5 and job.current_epoch == 0.5
    assert job.progress == pytest.approx(50.0)  # 5 + 90 × 5/10
    assert job.latest_metrics == {
        "step": 5,
        "epoch": 0.5,
        "training_loss": 2.5,
        "learning_rate": 1e-4,
        "validation_loss": 2.7,
    }
    assert job.heartbeat_at is not None
    with pytest.raises(ApplicationError) as caught:
        training_metric_record(job=job, step=6, epoch=0.6, accuracy=0.9)
    assert caught.value.code == "invalid_metric"


def test_events_and_stages():
    job = TrainingJobFactory()
    claimed = training_job_claim(job_id=job.pk)
    assert training_job_stage(job=claimed, stage="Preparing data", progress=150) is True
    claimed.refresh_from_db()
    assert claimed.stage == "Preparing data" and claimed.progress == 100.0
    event = training_event_record(job=claimed, kind="epoch_end", message="Epoch 1", data={"epoch": 1.0})
    assert event.owner_id == job.owner_id and event.data == {"epoch": 1.0}
    with pytest.raises(ApplicationError) as caught:
        training_event_record(job=claimed, kind="exploded")
    assert caught.value.code == "invalid_event"
    assert _kinds(job) == ["stage", "epoch_end"]


# --- complete and fail ----------------------------------------------------------------------------


def test_complete_creates_artifact_quality_cost_and_notifications(local_storage, owner_user):
    dataset = ready_dataset(owner_user)
    base, gpu = catalogue()
    job = TrainingJobFactory(owner=owner_user, dataset=dataset, base_model=base, gpu_type=gpu, gpu_count=2)
    job.estimate = {"price_per_hour": "4.20"}
    job.save(update_fields=["estimate"])
    job = running(job, total_steps=4, started_ago=timedelta(hours=1))
    for step, loss in enumerate((2.0, 1.6, 1.2, 0.8), start=1):
        training_metric_record(job=job, step=step, epoch=step / 4, training_loss=loss)
    training_metric_record(job=job, step=4, epoch=1.0, validation_loss=1.0)

    artifact = training_job_complete(
        job=job, files=_files(job), tokens_per_second=1234.5, summary={"steps": 4, "device": "cpu"}
    )

    job.refresh_from_db()
    assert job.status == "completed" and job.progress == 100.0 and job.finished_at is not None
    assert job.measured_tokens_per_second == 1234.5
    assert Decimal("8.39") <= job.actual_cost <= Decimal("8.41")  # 1 h × 2 GPUs × $4.20
    assert artifact.owner_id == owner_user.pk and artifact.job_id == job.pk
    assert artifact.dataset_id == dataset.pk and artifact.base_model_id == base.pk
    assert artifact.hyperparameters == job.hyperparameters and artifact.seed == 42
    assert artifact.total_size == 21 and [f["name"] for f in artifact.files] == [f["name"] for f in _files(job)]
    assert artifact.quality["loss_reduction_percent"] == 60.0
    assert artifact.quality["score"] == 5 and artifact.quality["overfit"] is False
    assert artifact.quality["perplexity"] == pytest.approx(math.e, rel=1e-4)
    record = CostRecord.objects.get(source_type="training.trainingjob", source_id=job.pk)
    assert record.kind == "training" and record.amount_usd == job.actual_cost
    assert _notes(owner_user)[-2:] == ["training_completed", "artifact_ready"]
    assert "60.0 % lower" in Notification.objects.get(type="training_completed").message
    completed = TrainingEvent.objects.get(job=job, kind="completed")
    assert completed.data["artifact"] == str(artifact.pk) and completed.data["steps"] == 4


def test_artifact_lineage_names_the_training_file_version(built_version, owner_user):  # noqa: F811
    from datasets.services import dataset_import, dataset_validate

    dataset = dataset_import(owner=owner_user, training_file=built_version.training_file_id, version=1)
    dataset = dataset_validate(dataset_id=dataset.pk)
    base, gpu = catalogue()
    job = running(TrainingJobFactory(owner=owner_user, dataset=dataset, base_model=base, gpu_type=gpu))
    artifact = training_job_complete(job=job, files=_files(job))
    assert artifact.training_file_version_id == built_version.pk
    assert artifact.quality is None  # no metric points: no score, never a default


def test_fail_classifies_records_cost_and_notifies(owner_user):
    job = running(TrainingJobFactory(owner=owner_user), started_ago=timedelta(minutes=30))
    error = classify_exception(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    failed = training_job_fail(job=job, code=error.code, message=error.message, hint=error.hint)
    assert failed.status == "failed" and failed.error_code == "out_of_memory"
    assert "batch size" in failed.error_hint
    assert Decimal("2.09") <= failed.actual_cost <= Decimal("2.11")  # 0.5 h × $4.20
    assert CostRecord.objects.get(source_id=job.pk).amount_usd == failed.actual_cost
    note = Notification.objects.get(owner=owner_user, type="training_failed")
    assert note.priority == "high" and "batch size" in note.message
    assert TrainingEvent.objects.get(job=job, kind="failed").data["code"] == "out_of_memory"


def test_task_failure_hook_fails_the_job_with_the_time_limit_code():
    job = running(TrainingJobFactory())
    training_job_run_task.on_failure(SoftTimeLimitExceeded(), "task-id", (str(job.pk),), {}, None)
    job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "time_limit"
    assert training_job_run_failed(job_id=job.pk, exc=RuntimeError("late")).error_code == "time_limit"


def test_orphan_check_restarts_a_job_whose_worker_went_silent_then_fails_it(
    settings, django_capture_on_commit_callbacks
):
    settings.TRAINING_MAX_ATTEMPTS = 2
    job = running(TrainingJobFactory())
    assert training_job_check_orphan(job_id=job.pk) == "alive"
    TrainingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert training_job_check_orphan(job_id=job.pk) == "requeued"
    assert len(callbacks) == 1  # the run task, enqueued again
    job.refresh_from_db()
    assert job.status == "queued" and job.attempts == 1 and job.claimed_at is None
    assert training_job_check_orphan(job_id=job.pk) == "queued"

    job = running(job)  # the second attempt starts, then its worker is lost too
    assert job.attempts == 2
    TrainingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert training_job_check_orphan(job_id=job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "worker_lost" and "2 times" in job.error_message
    assert training_job_check_orphan(job_id=job.pk) == "done"


# --- quality summary (SPEC §10.3) -----------------------------------------------------------------


def _points(train: list[float], validation: float | None = None) -> list[dict]:
    points = [{"step": i + 1, "training_loss": loss} for i, loss in enumerate(train)]
    if validation is not None:
        points.append({"step": len(train), "validation_loss": validation})
    return points


def test_quality_none_without_training_points():
    assert quality_summary(points=[]) is None
    assert quality_summary(points=[{"step": 1, "validation_loss": 1.0}]) is None
    assert quality_summary(points=[{"step": 1, "training_loss": float("nan")}]) is None


@pytest.mark.parametrize(
    ("last", "score", "label"),
    [
        (0.9, 5, "excellent"),  # 55 %
        (1.0, 4, "good"),  # exactly 50 %: not above
        (1.3, 4, "good"),  # 35 %
        (1.6, 3, "fair"),  # 20 %
        (1.8, 2, "poor"),  # 10 %
        (1.9, 1, "minimal"),  # exactly 5 %
        (2.4, 1, "minimal"),  # the loss went up
    ],
)
def test_quality_score_bands(last, score, label):
    summary = quality_summary(points=_points([2.0, 1.7, last]))
    assert (summary["score"], summary["label"]) == (score, label)
    assert summary["loss_reduction_percent"] == pytest.approx((2.0 - last) / 2.0 * 100, abs=0.01)
    assert summary["perplexity"] is None and summary["overfit"] is False


def test_quality_overfit_lowers_the_score_but_not_below_two():
    summary = quality_summary(points=_points([2.0, 0.9], validation=1.5))  # gap 0.6
    assert summary["overfit"] is True and summary["score"] == 4 and summary["validation_gap"] == 0.6
    assert summary["perplexity"] == pytest.approx(math.exp(1.5), rel=1e-5)
    fair = quality_summary(points=_points([2.0, 1.6], validation=2.2))  # fair (3) → 2
    assert fair["overfit"] is True and fair["score"] == 2
    poor = quality_summary(points=_points([2.0, 1.8], validation=2.5))  # poor (2) stays 2
    assert poor["overfit"] is True and poor["score"] == 2
    minimal = quality_summary(points=_points([2.0, 2.0], validation=3.0))  # 1 is never raised
    assert minimal["overfit"] is True and minimal["score"] == 1
    close = quality_summary(points=_points([2.0, 0.9], validation=1.4))  # gap exactly 0.5: not overfit
    assert close["overfit"] is False and close["score"] == 5


def test_quality_uses_step_order_and_last_validation():
    points = [
        {"step": 3, "training_loss": 1.0},
        {"step": 1, "training_loss": 4.0},
        {"step": 2, "validation_loss": 9.0},
        {"step": 3, "validation_loss": 1.2},
    ]
    summary = quality_summary(points=points)
    assert summary["first_training_loss"] == 4.0 and summary["final_training_loss"] == 1.0
    assert summary["final_validation_loss"] == 1.2 and summary["validation_points"] == 2
    assert quality_summary(points=_points([0.0, 0.0]))["loss_reduction_percent"] == 0.0
    assert quality_summary(points=_points([2.0, 1.0], validation=1000.0))["perplexity"] is None


def test_reaper_restarts_local_jobs_whose_worker_vanished(settings, local_storage, django_capture_on_commit_callbacks):
    from brightrun.storage import file_storage
    from training.services.finish import artifact_key
    from training.services.local import training_jobs_reap_local

    settings.TRAINING_MAX_ATTEMPTS = 2
    settings.TRAINING_STALE_SECONDS = 600
    silent = running(TrainingJobFactory(), total_steps=10)
    alive = running(TrainingJobFactory())
    queued = TrainingJobFactory()
    for step in (1, 2, 3):
        training_metric_record(job=silent, step=step, epoch=0.1 * step, training_loss=2.0 - step / 10)
    leftover = artifact_key(silent, "adapter_config.json")
    file_storage().save(leftover, ContentFile(b"{}"))
    long_ago = timezone.now() - timedelta(minutes=11)
    TrainingJob.objects.filter(pk=silent.pk).update(heartbeat_at=long_ago, claimed_at=long_ago)
    notes_before = _notes(silent.owner)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert training_jobs_reap_local() == 1
    assert len(callbacks) == 1
    silent.refresh_from_db()
    alive.refresh_from_db()
    queued.refresh_from_db()
    assert silent.status == "queued" and silent.attempts == 1 and silent.stage.startswith("Queued")
    assert (silent.current_step, silent.total_steps, silent.progress, silent.latest_metrics) == (0, 0, 0.0, {})
    assert silent.started_at is None and silent.heartbeat_at is None and silent.device == ""
    assert not MetricPoint.objects.filter(job=silent).exists()  # the dead attempt's steps are not kept
    assert not file_storage().exists(leftover)
    restarted = TrainingEvent.objects.get(job=silent, kind="restarted")
    assert "worker was lost" in restarted.message and restarted.data["step"] == 3
    assert restarted.data["discarded_files"] == 1
    assert _notes(silent.owner) == notes_before  # a restart is not news; only a failure is
    assert alive.status == "running"
    assert queued.status == "queued"  # waiting in the queue is not a lost worker
    assert training_jobs_reap_local() == 0

    again = running(silent)  # the restarted attempt: no second "started" notification
    assert again.attempts == 2 and _notes(silent.owner) == notes_before
    TrainingJob.objects.filter(pk=silent.pk).update(heartbeat_at=long_ago)
    assert training_jobs_reap_local() == 1
    silent.refresh_from_db()
    assert silent.status == "failed" and silent.error_code == "worker_lost" and silent.error_hint
    assert CostRecord.objects.filter(source_id=silent.pk, kind="training").count() == 1


def test_reaper_ends_a_lost_job_with_a_pending_cancel_as_cancelled(settings):
    from training.services.local import training_jobs_reap_local

    job = running(TrainingJobFactory())
    TrainingJob.objects.filter(pk=job.pk).update(
        cancel_requested_at=timezone.now(), heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    assert training_jobs_reap_local() == 1
    job.refresh_from_db()
    assert job.status == "cancelled" and job.attempts == 1
