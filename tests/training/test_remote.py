"""The remote backend end to end: a fake RunPod-serverless endpoint, a live Django server for callbacks and
signed URLs, and (once) the real trainer running as the remote worker (SPEC §10.4)."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
import requests
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from brightrun import storage
from tests.factories import DatasetFactory
from tests.training.fake_serverless import OOM_TEXT, Behaviour, FakeServerless, sign
from training.models import MetricPoint, ModelArtifact, TrainingEvent, TrainingJob
from training.services import remote
from training.services.catalogue import TINY_TEST_MODEL_HF_ID, catalogue_seed
from training.services.jobs import training_job_cancel
from training.trainer.artifacts import ARTIFACT_FILES
from training.trainer.errors import HINTS

TINY_HP = {
    "rank": 4,
    "alpha": 8,
    "dropout": 0.0,
    "learning_rate": 1e-3,
    "epochs": 1,
    "batch_size": 2,
    "grad_accum": 1,
    "warmup_ratio": 0.0,
    "target_modules": ["q", "v"],
    "max_seq_length": 256,
    "seed": 42,
}
CHAT_LINE = (
    '{"messages": [{"role": "system", "content": "You are a careful financial planner."}, '
    '{"role": "user", "content": "Question %d: should I pay off my card or save first?"}, '
    '{"role": "assistant", "content": "Answer %d: pay the 24%% card first, then build a buffer."}]}\n'
)


def _remote_job(owner, **fields) -> TrainingJob:
    """A queued remote job on the tiny test model, over a ready dataset of 24 chat examples in storage."""
    from training.models import BaseModel, GpuType

    catalogue_seed()
    dataset = DatasetFactory(owner=owner, statistics={"split": {"validation_percent": 20}}, validated_at=timezone.now())
    storage.file_storage().save(dataset.storage_key, ContentFile("".join(CHAT_LINE % (n, n) for n in range(24))))
    return TrainingJob.objects.create(
        owner=owner,
        name="Remote tiny",
        dataset=dataset,
        base_model=BaseModel.objects.get(hf_id=TINY_TEST_MODEL_HF_ID),
        gpu_type=GpuType.objects.order_by("price_per_hour").first(),
        hyperparameters=TINY_HP,
        backend=TrainingJob.Backend.REMOTE,
        **fields,
    )


@pytest.fixture
def fake_remote(settings, tmp_path):
    server = FakeServerless(work_dir=tmp_path / "worker", trainer_input={"max_steps": 3}).start()
    settings.TRAINING_REMOTE_ENDPOINT = server.endpoint
    settings.TRAINING_REMOTE_API_KEY = server.api_key
    settings.TRAINING_REMOTE_TIMEOUT_SECONDS = 10
    yield server
    server.stop()
    assert not server.errors, server.errors


@pytest.fixture
def live(live_server, settings, monkeypatch):
    """The live server as SITE_URL (callbacks, local signed URLs); call after a storage fixture."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.SITE_URL = live_server.url
    return live_server


def _submit(job: TrainingJob, fake: FakeServerless, *behaviours) -> str:
    fake.enqueue(*behaviours)
    remote.training_job_submit_remote(job_id=str(job.pk))
    job.refresh_from_db()
    assert job.external_id, (job.status, job.error_code, job.error_message)
    return job.external_id


def _wait_for(job: TrainingJob, *statuses: str, timeout: float = 60.0) -> TrainingJob:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in statuses:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job still {job.status} ({job.stage}) after {timeout}s")


def _post_callback(client, job: TrainingJob, body: dict, *, secret: str | None = None, signature: str | None = None):
    raw = json.dumps({"job_id": str(job.pk), **body}).encode()
    headers = {}
    if signature is not None or secret is not None:
        headers["HTTP_X_BRIGHTRUN_SIGNATURE"] = signature or sign(secret, raw)
    url = reverse("training-job-callback", args=[job.pk])
    return client.post(url, raw, content_type="application/json", **headers)


# --- (1) the real trainer as the remote worker ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_real_trainer_runs_remotely_and_completes(
    local_storage, live, owner_user, tiny_model_path, tmp_path, monkeypatch
):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    fake = FakeServerless(
        work_dir=tmp_path / "worker", models_dir=tiny_model_path.parent, trainer_input={"max_steps": 3}
    ).start()
    try:
        from django.conf import settings

        settings.TRAINING_REMOTE_ENDPOINT = fake.endpoint
        settings.TRAINING_REMOTE_API_KEY = fake.api_key
        job = _remote_job(owner_user)
        external_id = _submit(job, fake, "trainer")
        payload = fake.jobs[external_id].input
        assert set(payload["artifact_uploads"]) == set(ARTIFACT_FILES)
        assert payload["callback_url"] == f"{live.url}/api/v1/training-jobs/{job.pk}/callback/"
        assert payload["callback_token"] == job.callback_secret
        assert payload["base_model"]["hf_id"] == TINY_TEST_MODEL_HF_ID

        finished = fake.wait(external_id, timeout=240)
        assert finished.output["status"] == "completed", finished.output
        job = _wait_for(job, "completed", "failed", timeout=30)
    finally:
        fake.stop()
    assert job.status == "completed", (job.error_code, job.error_message)
    assert job.device and job.total_steps == 3 and job.progress == 100.0
    assert MetricPoint.objects.filter(job=job, training_loss__isnull=False).count() >= 3
    kinds = set(job.events.values_list("kind", flat=True))
    assert {"started", "stage", "completed"} <= kinds
    artifact = ModelArtifact.objects.get(job=job)
    assert {f["name"] for f in artifact.files} == set(ARTIFACT_FILES)
    backend = storage.file_storage()
    worker_files = {f["name"]: f for f in finished.output["files"]}
    for entry in artifact.files:
        assert entry["key"] == f"users/{owner_user.pk}/models/{job.pk}/{entry['name']}"
        assert backend.size(entry["key"]) == entry["size"] == worker_files[entry["name"]]["size"]
        with backend.open(entry["key"], "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == entry["sha256"]


# --- scripted workers ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_scripted_worker_completes_through_s3_presigned_urls(s3_storage, live, fake_remote, owner_user):
    job = _remote_job(owner_user)
    external_id = _submit(job, fake_remote, "complete")
    assert "X-Amz-Signature" in fake_remote.jobs[external_id].input["artifact_uploads"]["adapter_model.safetensors"]
    fake_remote.wait(external_id)
    job = _wait_for(job, "completed", "failed")
    assert job.status == "completed", job.error_message
    assert job.measured_tokens_per_second == 1234.5
    assert job.metrics.count() == 2 and job.latest_metrics["training_loss"] == 1.0
    assert all(answer == {"ok": True, "cancel": False} for answer in fake_remote.jobs[external_id].callback_responses)
    assert len(job.artifact.files) == len(ARTIFACT_FILES)


@pytest.mark.django_db
def test_completed_with_failed_output_is_a_failure(local_storage, fake_remote, owner_user):
    """(2) SPEC §14: a worker COMPLETED whose output says failed must not become a completed job."""
    job = _remote_job(owner_user)
    external_id = _submit(job, fake_remote, "completed_with_failed_output")
    fake_remote.wait(external_id)
    assert remote.training_jobs_poll_remote() == {}  # heard from it just now: not polled yet
    TrainingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert remote.training_jobs_poll_remote() == {"failed": 1}
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error_code == "out_of_memory" and job.error_hint == HINTS["out_of_memory"]
    assert not ModelArtifact.objects.filter(job=job).exists()
    assert ("GET", f"/v2/fake-endpoint/status/{external_id}") in fake_remote.requests


@pytest.mark.django_db
def test_poller_completes_a_job_whose_callbacks_never_arrived(local_storage, fake_remote, owner_user, settings):
    settings.SITE_URL = "http://127.0.0.1:9"  # callbacks go nowhere; uploads go to storage directly
    job = _remote_job(owner_user)
    external_id = _submit(job, fake_remote, Behaviour("complete", callbacks=False, upload=False))
    job_row = fake_remote.jobs[external_id]
    for name in ARTIFACT_FILES:  # what the worker's PUTs would have stored (its output lists no files)
        storage.file_storage().save(f"users/{owner_user.pk}/models/{job.pk}/{name}", ContentFile(f"{name}\n"))
    fake_remote.wait(external_id)
    assert job_row.status == "COMPLETED"
    TrainingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert remote.training_jobs_poll_remote() == {"completed": 1}
    job.refresh_from_db()
    assert job.status == "completed" and job.artifact.total_size > 0


@pytest.mark.django_db
def test_poller_fails_completed_job_without_files(local_storage, fake_remote, owner_user, settings):
    settings.SITE_URL = "http://127.0.0.1:9"
    job = _remote_job(owner_user)
    external_id = _submit(job, fake_remote, Behaviour("complete", callbacks=False, upload=False))
    fake_remote.wait(external_id)
    TrainingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert remote.training_jobs_poll_remote() == {"failed": 1}
    job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "artifacts_missing"


@pytest.mark.django_db(transaction=True)
def test_worker_reported_oom_is_classified(local_storage, live, fake_remote, owner_user):
    """(3) The worker's failed callback carries only the message; the control plane classifies it."""
    job = _remote_job(owner_user)
    external_id = _submit(job, fake_remote, "fail")
    fake_remote.wait(external_id)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error_code == "out_of_memory"
    assert job.error_message == OOM_TEXT
    assert job.error_hint == HINTS["out_of_memory"]
    assert "batch size" in job.error_hint


@pytest.mark.django_db
def test_poller_classifies_a_failed_status(local_storage, fake_remote, owner_user, settings):
    settings.SITE_URL = "http://127.0.0.1:9"
    job = _remote_job(owner_user)
    external_id = _submit(job, fake_remote, Behaviour("fail", callbacks=False, error="loss is nan at step 3"))
    fake_remote.wait(external_id)
    TrainingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert remote.training_jobs_poll_remote() == {"failed": 1}
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "nan_loss")


@pytest.mark.django_db(transaction=True)
def test_cancel_a_hanging_job_cancels_it_remotely(local_storage, live, fake_remote, owner_user):
    """(4) Cancel reaches the provider (POST /cancel/{id}) and the job ends cancelled."""
    job = _remote_job(owner_user)
    external_id = _submit(job, fake_remote, "hang")
    _wait_for(job, "running")
    assert remote.training_jobs_poll_remote(now=timezone.now() + timedelta(minutes=5)) == {"alive": 1}
    training_job_cancel(job=job, actor=owner_user)
    job.refresh_from_db()
    assert ("POST", f"/v2/fake-endpoint/cancel/{external_id}") in fake_remote.requests
    assert fake_remote.jobs[external_id].status == "CANCELLED"
    assert job.status == "cancelled" and job.cancel_requested_at is not None
    assert job.events.filter(kind=TrainingEvent.Kind.CANCELLED).count() == 1


# --- the callback endpoint ------------------------------------------------------------------------------


@pytest.fixture
def running_job(local_storage, owner_user):
    job = _remote_job(owner_user, status="running", external_id="fake-x", total_steps=10)
    return job


def _snapshot(job: TrainingJob) -> tuple:
    job.refresh_from_db()
    return (job.status, job.stage, job.current_step, job.heartbeat_at, job.events.count(), job.metrics.count())


@pytest.mark.django_db
def test_bad_missing_or_unknown_signature_is_403_and_changes_nothing(running_job, client):
    """(5)"""
    before = _snapshot(running_job)
    metric = {"type": "metric", "step": 1, "epoch": 0.1, "training_loss": 2.0}
    answers = [
        _post_callback(client, running_job, metric, secret="not-the-secret"),
        _post_callback(client, running_job, metric, signature="sha256=" + "0" * 64),
        _post_callback(client, running_job, metric),  # no signature at all
    ]
    unknown = running_job.__class__(pk="0b5c0b55-7d3a-4c1e-9d7a-5a2f0f6b1c11", owner=running_job.owner)
    answers.append(_post_callback(client, unknown, metric, secret=running_job.callback_secret))
    bad_id = client.post("/api/v1/training-jobs/not-a-uuid/callback/", b"{}", content_type="application/json")
    answers.append(bad_id)
    get = client.get(reverse("training-job-callback", args=[running_job.pk]))
    assert get.status_code == 405 and get.json()["code"] == "method_not_allowed"
    for response in answers:
        assert response.status_code == 403, response.content
        assert response.json() == {"detail": "The callback signature is not valid.", "code": "invalid_signature"}
    assert _snapshot(running_job) == before


@pytest.mark.django_db
def test_signed_callbacks_drive_the_job_and_answer_cancel(running_job, client):
    secret = running_job.callback_secret
    response = _post_callback(client, running_job, {"type": "stage", "text": "Training", "progress": 7}, secret=secret)
    assert response.status_code == 200 and response.json() == {"ok": True, "cancel": False}
    body = {"type": "metric", "step": 2, "epoch": 0.2, "training_loss": 2.5, "grad_norm": None}
    assert _post_callback(client, running_job, body, secret=secret).status_code == 200
    event = {"type": "event", "kind": "epoch_end", "message": "Epoch 1", "data": {"epoch": 1}}
    assert _post_callback(client, running_job, event, secret=secret).status_code == 200
    running_job.refresh_from_db()
    assert running_job.current_step == 2 and running_job.heartbeat_at is not None
    assert running_job.events.filter(kind="epoch_end").count() == 1
    TrainingJob.objects.filter(pk=running_job.pk).update(cancel_requested_at=timezone.now())
    answer = _post_callback(client, running_job, {"type": "stage", "text": "Still going"}, secret=secret)
    assert answer.json() == {"ok": True, "cancel": True}
    bad = _post_callback(client, running_job, {"type": "metric", "epoch": 1.0}, secret=secret)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_callback"
    other = _post_callback(client, running_job, {"type": "teleport"}, secret=secret)
    assert other.status_code == 400


@pytest.mark.django_db
def test_callback_for_a_terminal_job_changes_nothing(running_job, client):
    """(6)"""
    secret = running_job.callback_secret
    failed = {"type": "failed", "code": "nan_loss", "message": "Loss became NaN at step 4."}
    assert _post_callback(client, running_job, failed, secret=secret).json() == {"ok": True, "cancel": False}
    running_job.refresh_from_db()
    assert (running_job.status, running_job.error_code) == ("failed", "nan_loss")
    before = _snapshot(running_job)
    for body in (
        {"type": "metric", "step": 5, "epoch": 0.5, "training_loss": 1.0},
        {"type": "completed", "files": []},
        {"type": "cancelled"},
    ):
        response = _post_callback(client, running_job, body, secret=secret)
        assert response.status_code == 200 and response.json() == {"ok": True, "cancel": False}
    assert _snapshot(running_job) == before
    assert running_job.error_code == "nan_loss"


@pytest.mark.django_db
def test_completed_callback_with_missing_files_fails_the_job(running_job, client):
    files = [{"name": "adapter_model.safetensors", "size": 10, "sha256": "a" * 64}]
    response = _post_callback(
        client, running_job, {"type": "completed", "files": files}, secret=running_job.callback_secret
    )
    assert response.status_code == 200
    running_job.refresh_from_db()
    assert running_job.status == "failed" and running_job.error_code == "artifacts_missing"


# --- submission failures ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_submit_when_the_service_is_down_retries_then_fails(local_storage, fake_remote, owner_user, monkeypatch):
    """(7) Transient errors are retried by the task (finite), then the job fails with remote_unavailable."""
    from training import tasks

    monkeypatch.setattr(tasks.training_job_submit_remote_task, "max_retries", 2)
    job = _remote_job(owner_user)
    fake_remote.enqueue("unavailable", "unavailable", "unavailable")
    tasks.training_job_submit_remote_task.apply(args=[str(job.pk)])
    job.refresh_from_db()
    assert [r for r in fake_remote.requests if r[1].endswith("/run")] == [("POST", "/v2/fake-endpoint/run")] * 3
    assert (job.status, job.error_code) == ("failed", "remote_unavailable")
    assert "TRAINING_REMOTE_ENDPOINT" in job.error_hint


@pytest.mark.django_db
def test_an_unexpected_submit_error_fails_the_job(local_storage, fake_remote, owner_user, monkeypatch):
    from training import tasks

    def broken(*, job):
        raise RuntimeError("storage exploded")

    monkeypatch.setattr(remote, "remote_input", broken)
    job = _remote_job(owner_user)
    result = tasks.training_job_submit_remote_task.apply(args=[str(job.pk)])
    assert isinstance(result.result, RuntimeError)
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "remote_unavailable")
    assert "storage exploded" in job.error_message


@pytest.mark.django_db
def test_submit_to_a_closed_port(local_storage, owner_user, settings):
    settings.TRAINING_REMOTE_ENDPOINT = "http://127.0.0.1:9/v2/nothing"
    settings.TRAINING_REMOTE_TIMEOUT_SECONDS = 2
    job = _remote_job(owner_user)
    with pytest.raises(remote.RemoteUnavailable):
        remote.training_job_submit_remote(job_id=str(job.pk), retry=True)
    job.refresh_from_db()
    assert job.status == "preparing" and not job.external_id  # a retry submits again
    remote.training_job_submit_remote(job_id=str(job.pk), retry=False)
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "remote_unavailable")


@pytest.mark.django_db
def test_wrong_api_key_is_rejected_without_retry(local_storage, fake_remote, owner_user, settings):
    settings.TRAINING_REMOTE_API_KEY = "wrong"
    job = _remote_job(owner_user)
    remote.training_job_submit_remote(job_id=str(job.pk), retry=True)
    job.refresh_from_db()
    assert (job.status, job.error_code) == ("failed", "remote_rejected")


@pytest.mark.django_db
def test_submit_is_safe_to_run_twice(local_storage, fake_remote, owner_user):
    job = _remote_job(owner_user)
    _submit(job, fake_remote, Behaviour("hang", callbacks=False))
    assert remote.training_job_submit_remote(job_id=str(job.pk)) is None
    assert len([r for r in fake_remote.requests if r[1].endswith("/run")]) == 1


@pytest.mark.django_db
def test_remote_jobs_are_dispatched_to_the_submit_task(
    settings, owner_user, local_storage, monkeypatch, django_capture_on_commit_callbacks
):
    from training import tasks
    from training.models import BaseModel, GpuType
    from training.services.jobs import training_job_create

    settings.TRAINING_REMOTE_ENDPOINT = ""
    assert remote.remote_configured() is False
    settings.TRAINING_REMOTE_ENDPOINT = "http://127.0.0.1:9/v2/x"
    assert remote.remote_configured() is True
    catalogue_seed()
    sent = []
    monkeypatch.setattr(tasks.training_job_submit_remote_task, "delay", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        job = training_job_create(
            owner=owner_user,
            dataset=DatasetFactory(owner=owner_user, statistics={}),
            base_model=BaseModel.objects.get(hf_id=TINY_TEST_MODEL_HF_ID),
            gpu_type=GpuType.objects.first(),
            backend="remote",
            hyperparameters=TINY_HP,
        )
    assert sent == [str(job.pk)]


@pytest.mark.django_db
def test_cancel_before_submission_and_lost_submissions(
    local_storage, owner_user, settings, django_capture_on_commit_callbacks
):
    settings.TRAINING_REMOTE_ENDPOINT = "http://127.0.0.1:9/v2/x"
    job = _remote_job(owner_user, status="preparing", claimed_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        training_job_cancel(job=job, actor=owner_user)  # nothing to cancel remotely yet
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert remote.training_job_submit_remote(job_id=str(job.pk)) is None
    two_hours_ago = timezone.now() - timedelta(hours=2)
    lost = _remote_job(owner_user, status="preparing", claimed_at=two_hours_ago, heartbeat_at=two_hours_ago)
    assert remote.training_jobs_poll_remote() == {"lost": 1}
    lost.refresh_from_db()
    assert (lost.status, lost.error_code) == ("failed", "remote_unavailable")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("remote_status", "status", "code"),
    [("CANCELLED", "cancelled", ""), ("TIMED_OUT", "failed", "remote_timeout"), ("GONE", "failed", "remote_lost")],
)
def test_poller_applies_final_statuses(local_storage, fake_remote, owner_user, remote_status, status, code):
    job = _remote_job(owner_user)
    external_id = _submit(job, fake_remote, Behaviour("hang", callbacks=False))
    fake_remote.wait(external_id, statuses=("IN_PROGRESS",))
    if remote_status == "GONE":
        del fake_remote.jobs[external_id]
    else:
        fake_remote.jobs[external_id].status = remote_status
    remote.training_jobs_poll_remote(now=timezone.now() + timedelta(minutes=5))
    job.refresh_from_db()
    assert (job.status, job.error_code) == (status, code)


def test_handler_builds_the_trainer_spec(tmp_path):
    from training import remote_handler

    model = tmp_path / "models" / "tiny-test"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    job_input = {
        "job_id": "j1",
        "base_model": {"hf_id": "org/model", "local_path": "tiny-test"},
        "hyperparameters": TINY_HP,
        "dataset_url": "https://s3/train",
        "validation_url": None,
        "artifact_uploads": {"metrics.csv": "https://s3/put"},
        "callback_url": "https://app/cb",
        "callback_token": "secret",
    }
    spec = remote_handler.spec_from_input(job_input, work_dir=tmp_path / "w", models=tmp_path / "models")
    assert spec["base_model"] == {"hf_id": "org/model", "path": str(model)}
    assert spec["train_url"] == "https://s3/train" and "validation_url" not in spec
    assert spec["output_dir"] == str(tmp_path / "w" / "output")
    assert {spec[k] for k in ("callback_url", "callback_token", "job_id")} == {"https://app/cb", "secret", "j1"}
    hub = remote_handler.spec_from_input(
        {**job_input, "base_model": {"hf_id": "org/model", "local_path": "../../etc"}}, work_dir=tmp_path
    )
    assert hub["base_model"]["path"] is None  # downloaded from the hub by the trainer
    log = "x\n2026 ERROR training failed: Out of memory: CUDA out of memory (out_of_memory)\n"
    assert remote_handler._failure_from_log(1, log)["error"]["code"] == "out_of_memory"
    assert remote_handler._failure_from_log(-9, "")["error"]["code"] == "trainer_error"
    assert remote_handler.handler({"input": None})["status"] == "failed"


# --- the local backend's signed PUT URL --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_local_signed_put_url(local_storage, live, owner_user):
    key = f"users/{owner_user.pk}/models/x/adapter_config.json"
    url = storage.upload_put_url(owner_id=owner_user.pk, key=key, max_bytes=16)
    assert requests.put(url, data=b"0123456789", timeout=10).status_code == 200
    assert storage.file_storage().open(key).read() == b"0123456789"
    assert requests.put(url, data=b"abc", timeout=10).status_code == 200  # overwrites
    assert storage.file_storage().open(key).read() == b"abc"
    assert requests.put(url, data=b"x" * 17, timeout=10).status_code == 413
    assert requests.post(url, data=b"x", timeout=10).status_code == 405
    assert requests.put(url[:-3] + "xx/", data=b"x", timeout=10).status_code == 403
    download = storage.download_url(owner_id=owner_user.pk, key=key)
    token = download.rstrip("/").rsplit("/", 1)[1]
    assert requests.put(f"{live.url}/files/put/{token}/", data=b"x", timeout=10).status_code == 403  # GET grant
