"""Worker SIGKILL during a training-file build, a dataset validation and a training job; Redis restarted during a
generation batch. Each test runs real ``celery worker`` processes against the test PostgreSQL database and a real
Redis, kills or restarts something mid-work, starts what a supervisor would start again, runs the sweeper or
reaper directly (as beat would) and asserts that the work ended exactly once.

Workers use the solo or threads pool, so a SIGKILL takes the task with it, as when a container or machine dies
(a prefork child killed alone is reported to its parent, which rejects the message back to the queue at once).
The dead worker's message stays unacknowledged in Redis until the visibility timeout (hours): the sweepers are
what brings the work back.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import kombu.pools
import pytest
from django.db import connection

from brightrun.celery import app
from tests.datasets.conftest import built_version  # noqa: F401 - fixture
from tests.integration.test_worker import _database_url, _wait_for
from tests.processes import celery_worker_argv, free_port
from tests.training.conftest import tiny_model_path  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.worker


class Worker:
    """A ``celery worker`` subprocess that a test can SIGKILL and start again (the log accumulates)."""

    def __init__(self, env: dict[str, str], log: Path, *, queues: str, pool: str = "solo", concurrency: int = 1):
        self.env, self.log, self.queues, self.pool, self.concurrency = env, log, queues, pool, concurrency
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                celery_worker_argv(queues=self.queues, pool=self.pool, concurrency=self.concurrency),
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self) -> str:
        return self.log.read_text()[-4000:] if self.log.exists() else ""

    def kill(self) -> None:
        assert self.alive(), self.tail()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def worker_env(transactional_db, local_storage, settings) -> dict[str, str]:
    """The environment of a worker subprocess: the test database, the test broker, the test's local storage."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a shared database server (PostgreSQL); make test provides one")
    app.control.purge()
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "brightrun.settings_test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(local_storage),
    }


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Every worker a test starts is stopped at its end, whatever happened."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def _until(predicate: Callable[[], bool], timeout: float, what: str, worker: Worker) -> None:
    _wait_for(lambda: predicate() or not worker.alive(), timeout, what)
    assert worker.alive(), f"the worker exited while waiting for {what}:\n{worker.tail()}"


def _stored_under(prefix: str) -> dict[str, str]:
    """``{name: sha256}`` of every stored object directly under ``prefix`` (local storage)."""
    from brightrun.storage import file_storage

    storage = file_storage()
    try:
        _, names = storage.listdir(prefix)
    except FileNotFoundError:
        return {}
    found = {}
    for name in names:
        with storage.open(f"{prefix}/{name}", "rb") as handle:
            found[name] = hashlib.sha256(handle.read()).hexdigest()
    return found


# --- 1. a training-file build -------------------------------------------------------------------------------


def _clone_trainable(template, owner, count: int) -> list[uuid.UUID]:
    """``count`` approved conversations like ``template`` (distinct ids and texts), inserted in bulk."""
    from conversations.models import Conversation, Turn

    fields = [f.attname for f in Conversation._meta.concrete_fields if f.attname not in ("id", "duplicate_group_id")]
    turns = list(Turn.objects.filter(conversation=template).order_by("index"))
    turn_fields = [f.attname for f in Turn._meta.concrete_fields if f.attname not in ("id", "conversation_id")]
    conversations, new_turns = [], []
    for n in range(count):
        conversation = Conversation(**{name: getattr(template, name) for name in fields})
        conversation.id = uuid.uuid4()
        conversation.title = f"Clone {n}"
        conversations.append(conversation)
        for turn in turns:
            copy = Turn(**{name: getattr(turn, name) for name in turn_fields})
            copy.conversation_id = conversation.id
            copy.content = turn.content.replace(str(template.pk), str(conversation.id))
            new_turns.append(copy)
    Conversation.objects.bulk_create(conversations, batch_size=500)
    Turn.objects.bulk_create(new_turns, batch_size=2000)
    assert Conversation.objects.filter(owner=owner).count() >= count
    return [c.id for c in conversations]


BUILD_CONVERSATIONS = 3000


def test_sigkill_mid_build_builds_the_version_once_after_the_sweeper(
    worker_env, workers, owner_user, settings, tmp_path, django_capture_on_commit_callbacks
):
    from tests.training_files.helpers import trainable, vertical
    from training_files.models import TrainingFile, TrainingFileVersion
    from training_files.services import (
        training_file_build,
        training_file_builds_sweep,
        training_file_create,
        training_file_members_update,
    )

    settings.TRAINING_FILE_BUILD_STALE_SECONDS = 4
    env = {**worker_env, "TRAINING_FILE_BUILD_STALE_SECONDS": "4"}
    vertical()
    first = [trainable(owner_user, exchanges=n) for n in (2, 3)]
    with django_capture_on_commit_callbacks(execute=False):
        training_file, _ = training_file_create(
            owner=owner_user, name="Big file", conversation_ids=[c.pk for c in first]
        )
    v1 = training_file_build(version=training_file.versions.get())
    assert v1.status == "ready", v1.error
    v1_prefix = v1.files["chat-jsonl"]["key"].rsplit("/", 1)[0]
    v1_stored = _stored_under(v1_prefix)
    assert len(v1_stored) == 3
    clones = _clone_trainable(first[0], owner_user, BUILD_CONVERSATIONS)

    worker = Worker(env, tmp_path / "worker.log", queues="default")
    workers.append(worker.start())
    v2, _ = training_file_members_update(training_file=training_file, actor=owner_user, add=clones)  # enqueued
    rows = TrainingFileVersion.objects.filter(pk=v2.pk)
    _until(lambda: rows.filter(claimed_at__isnull=False).exists(), 60, "the worker to claim the build", worker)
    time.sleep(1.5)  # into the render, past a heartbeat or two
    assert rows.get().status == "building", "the build finished before the worker could be killed"
    worker.kill()
    killed = rows.get()
    assert killed.status == "building" and killed.claimed_at is not None and killed.build_attempts == 1

    workers.append(worker := Worker(env, tmp_path / "worker.log", queues="default").start())
    sweeps = []

    def built() -> bool:
        sweeps.append(training_file_builds_sweep())  # as beat would, every pass: a live build is never taken
        return rows.get().status != "building"

    _until(built, 90, "the version to be built again", worker)

    version = rows.get()
    assert version.status == "ready", version.error
    assert sum(s.requeued for s in sweeps) == 1 and not any(s.failed for s in sweeps)
    assert version.build_attempts == 2 and version.claimed_at is None
    assert version.conversation_count == BUILD_CONVERSATIONS + 2
    training_file = TrainingFile.objects.get(pk=training_file.pk)
    assert training_file.current_version_id == version.pk
    prefix = version.files["chat-jsonl"]["key"].rsplit("/", 1)[0]
    stored = _stored_under(prefix)  # exactly the final files: nothing of the dead attempt beside them
    assert stored == {entry["filename"]: entry["sha256"] for entry in version.files.values()}
    assert _stored_under(v1_prefix) == v1_stored  # the previous ready version is untouched
    assert TrainingFileVersion.objects.get(pk=v1.pk).status == "ready"


# --- 2. a dataset validation ----------------------------------------------------------------------------------

VALIDATION_EXAMPLES = 360_000  # about 100 MB: a few seconds of validation on two cores


def test_sigkill_mid_validation_validates_the_dataset_once_after_the_sweeper(
    worker_env, workers, owner_user, settings, tmp_path
):
    from django.core.files import File

    from brightrun.models import Notification
    from brightrun.storage import file_storage
    from datasets.models import Dataset, DatasetValidation
    from datasets.services import dataset_confirm, dataset_create, datasets_sweep
    from tests.datasets.conftest import CHAT_LINE

    source = tmp_path / "big.jsonl"
    with source.open("w") as out:
        for start in range(0, VALIDATION_EXAMPLES, 10_000):
            out.write("".join(CHAT_LINE % (n, n) for n in range(start, start + 10_000)))
    size = source.stat().st_size
    pending = dataset_create(owner=owner_user, name="Big upload", file_name="big.jsonl", file_size=size)
    with source.open("rb") as handle:
        assert file_storage().save(pending.dataset.storage_key, File(handle)) == pending.dataset.storage_key
    source.unlink()

    worker = Worker(worker_env, tmp_path / "worker.log", queues="validation")
    workers.append(worker.start())
    dataset = dataset_confirm(dataset=pending.dataset, actor=owner_user)  # enqueued on commit
    rows = Dataset.objects.filter(pk=dataset.pk)
    _until(lambda: rows.filter(validation_started_at__isnull=False).exists(), 60, "the validation to start", worker)
    time.sleep(1)
    assert rows.get().status == "validating", "the validation finished before the worker could be killed"
    worker.kill()
    assert rows.get().validation_attempts == 1

    workers.append(worker := Worker(worker_env, tmp_path / "worker.log", queues="validation").start())
    settings.DATASET_VALIDATION_STUCK_MINUTES = 0.05  # 3 s here; the worker's own heartbeat window stays 1 minute
    _wait_for(lambda: datasets_sweep().requeued == 1, 15, "the sweeper to re-enqueue the validation")
    _until(lambda: rows.get().status != "validating", 60, "the validation to finish", worker)

    dataset = rows.get()
    assert dataset.status == "ready", dataset.error
    assert dataset.validation_attempts == 2
    assert dataset.example_count == VALIDATION_EXAMPLES and dataset.size == size
    runs = DatasetValidation.objects.filter(dataset=dataset)
    assert runs.filter(status="completed").count() == 1
    assert runs.get(status="completed").counts == dataset.issue_counts
    assert list(runs.exclude(status="completed").values_list("status", flat=True)) == ["failed"]  # the dead run
    assert Notification.objects.filter(owner=owner_user, type="dataset_ready").count() == 1
    assert not Notification.objects.filter(owner=owner_user, type="dataset_invalid").exists()


# --- 3. a local training job ----------------------------------------------------------------------------------

TRAINING_HYPERPARAMETERS = {
    "epochs": 4,
    "batch_size": 1,
    "grad_accum": 1,
    "max_seq_length": 256,
    "learning_rate": 1e-3,
    "rank": 8,
}


def test_sigkill_mid_training_restarts_the_job_once_and_completes_it(
    worker_env,
    workers,
    owner_user,
    settings,
    tmp_path,
    built_version,  # noqa: F811
    tiny_model_path,  # noqa: F811
):
    from django.db.models import Count

    from brightrun.models import CostRecord, Notification
    from datasets.services import dataset_import, dataset_validate
    from training.models import BaseModel, GpuType, MetricPoint, ModelArtifact, TrainingEvent, TrainingJob
    from training.services import catalogue_seed, training_job_create
    from training.services.catalogue import TINY_TEST_MODEL_HF_ID
    from training.services.local import training_jobs_reap_local

    settings.TRAINING_MODELS_DIR = tiny_model_path.parent
    settings.TRAINING_WORK_DIR = tmp_path / "work"
    settings.TRAINING_STALE_SECONDS = 4
    env = {
        **worker_env,
        "TRAINING_MODELS_DIR": str(tiny_model_path.parent),
        "TRAINING_WORK_DIR": str(tmp_path / "work"),
        "TRAINING_STALE_SECONDS": "4",
    }
    dataset = dataset_import(owner=owner_user, training_file=built_version.training_file_id, version=1)
    dataset = dataset_validate(dataset_id=dataset.pk)
    assert dataset.status == "ready", dataset.error
    catalogue_seed()
    worker = Worker(env, tmp_path / "worker.log", queues="training")
    workers.append(worker.start())
    job = training_job_create(
        owner=owner_user,
        dataset=dataset,
        base_model=BaseModel.objects.get(hf_id=TINY_TEST_MODEL_HF_ID),
        gpu_type=GpuType.objects.get(key="L40S-48GB"),
        hyperparameters=TRAINING_HYPERPARAMETERS,
        name="Killed once",
    )  # the run task is enqueued on commit
    rows = TrainingJob.objects.filter(pk=job.pk)
    _until(lambda: MetricPoint.objects.filter(job_id=job.pk).count() >= 3, 90, "training steps", worker)
    assert rows.get().status == "running", "the job finished before the worker could be killed"
    worker.kill()
    lost = rows.get()
    assert lost.status == "running" and 0 < lost.current_step < lost.total_steps and lost.attempts == 1

    workers.append(worker := Worker(env, tmp_path / "worker.log", queues="training").start())
    _wait_for(lambda: training_jobs_reap_local() == 1, 20, "the reaper to restart the job")  # once stale (4 s)
    assert rows.get().status in ("queued", "preparing", "running")
    _until(lambda: rows.get().is_terminal, 120, "the restarted job to finish", worker)

    job = rows.get()
    assert job.status == "completed", (job.error_code, job.error_message, worker.tail())
    assert job.attempts == 2 and job.current_step == job.total_steps
    assert ModelArtifact.objects.filter(job=job).count() == 1
    points = MetricPoint.objects.filter(job=job, training_loss__isnull=False)
    assert points.count() == job.total_steps  # only the completed attempt's steps, each once
    assert not points.values("step").annotate(n=Count("pk")).filter(n__gt=1).exists()
    kinds = list(TrainingEvent.objects.filter(job=job).values_list("kind", flat=True))
    assert kinds.count("restarted") == 1 and kinds.count("completed") == 1 and "failed" not in kinds
    notes = list(Notification.objects.filter(owner=owner_user).values_list("type", flat=True))
    assert notes.count("training_completed") == 1 and notes.count("artifact_ready") == 1
    assert notes.count("training_started") == 1 and "training_failed" not in notes
    cost = CostRecord.objects.get(source_id=job.pk, kind="training")  # exactly one
    assert cost.amount_usd == job.actual_cost


# --- 4. Redis restarted during a generation batch ------------------------------------------------------------


class RedisServer:
    """A throwaway ``redis-server`` on a free loopback port, without persistence: a restart loses every message."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
                *("--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        _wait_for(self.ping, 10, "redis-server to accept connections")

    def ping(self) -> bool:
        import redis

        try:
            return redis.Redis.from_url(self.url, socket_timeout=1).ping()
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _use_broker(url: str) -> None:
    """Point this process's Celery app at ``url``: the configuration (the read and write URLs were resolved from
    ``broker_url`` when it was first read) and the cached connection pools."""
    app.conf.broker_url = app.conf.broker_read_url = app.conf.broker_write_url = url
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
    kombu.pools.reset()  # kombu caches producer pools per connection: never hand out the closed one again


@pytest.fixture
def own_redis(settings, tmp_path) -> Iterator[RedisServer]:
    """A private Redis as the broker of the test and of its workers (never the shared one); restored after."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: the Redis restart test starts a private one")
    server = RedisServer(tmp_path)
    server.start()
    previous = app.conf.broker_url
    settings.CELERY_BROKER_URL = server.url
    _use_broker(server.url)
    try:
        yield server
    finally:
        _use_broker(previous)
        server.stop()


def test_redis_restart_mid_batch_loses_nothing_and_duplicates_nothing(
    own_redis, worker_env, workers, owner_user, claude_server, settings, tmp_path
):
    from django.core.management import call_command
    from django.db.models import Count

    from conversations.models import BatchItem, Conversation, GenerationBatch
    from conversations.services import batches
    from conversations.services.generation import generation_reap

    call_command("seed_scaffolding", verbosity=0)
    claude_server.latency = 0.4
    settings.GENERATION_HEARTBEAT_TIMEOUT_SECONDS = 5
    settings.GENERATION_DISPATCH_TIMEOUT_SECONDS = 3
    env = {
        **worker_env,
        "ANTHROPIC_BASE_URL": claude_server.base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test-key",
        "GENERATION_HEARTBEAT_INTERVAL_SECONDS": "0.5",
    }
    assert env["CELERY_BROKER_URL"] == own_redis.url
    worker = Worker(env, tmp_path / "worker.log", queues="default,generation", pool="threads", concurrency=4)
    workers.append(worker.start())
    spec = {"persona": "overwhelmed_avoider", "emotional_arc": "confusion_to_clarity", "training_topic": "ignored_401k"}
    specs = batches.item_specs_from_items([spec] * 20, allow_incompatible=True)
    batch = batches.generation_batch_create(owner=owner_user, specs=specs, concurrency=4)

    succeeded = batch.items.filter(status="succeeded")
    _until(lambda: succeeded.count() >= 5, 60, "five items to succeed", worker)
    own_redis.stop()  # SIGTERM, no persistence: queued messages are gone
    stopped_at = succeeded.count()
    assert stopped_at < 20, "the batch finished before Redis could be stopped"
    time.sleep(2)
    own_redis.start()

    reaps = []

    def finished() -> bool:
        reaps.append(generation_reap())  # as beat would: requeues silent items, re-dispatches lost messages
        batch.refresh_from_db()
        return batch.status != GenerationBatch.Status.RUNNING

    _until(finished, 120, "the batch to finish after the Redis restart", worker)
    statuses = list(batch.items.values_list("status", flat=True))
    assert len(statuses) == 20 and all(s in BatchItem.TERMINAL for s in statuses), statuses
    assert batch.status == GenerationBatch.Status.COMPLETED and batch.succeeded_items == 20
    assert Conversation.objects.count() == 20
    assert batch.items.exclude(conversation=None).values("conversation").distinct().count() == 20
    assert not batch.items.values("conversation").annotate(n=Count("pk")).filter(n__gt=1).exists()
    log = worker.log.read_text()
    assert "Connection to broker lost" in log and log.count("Connected to redis://") >= 2, log[-4000:]  # reconnected
    print(
        f"Redis stopped after {stopped_at} of 20; re-dispatched {sum(r['redispatched'] for r in reaps)}, "
        f"requeued {sum(r['requeued'] for r in reaps)}; Claude calls made: {claude_server.count('/v1/messages')}"
    )
