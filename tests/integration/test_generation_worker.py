"""A batch of 20 on a real worker (Redis broker in CI); the worker is SIGKILLed mid-batch and restarted.

Exactly 20 items end and no conversation is duplicated: claims are conditional, results are
applied under ``status = running``, and the reaper requeues what the dead worker held.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count

from brightrun.celery import app
from conversations.models import BatchItem, Conversation, GenerationBatch
from conversations.services import batches
from conversations.services.generation import generation_reap
from tests.integration.test_worker import _database_url, _wait_for
from tests.processes import celery_worker_argv

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.worker


def _start_worker(env: dict, log: Path) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen(
            celery_worker_argv(queues="default,generation", pool="threads", concurrency=4),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_sigkill_mid_batch_loses_nothing_and_duplicates_nothing(
    transactional_db, owner_user, claude_server, local_storage, settings, tmp_path
):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a shared database server (PostgreSQL); make test provides one")
    call_command("seed_scaffolding", verbosity=0)
    app.control.purge()
    claude_server.latency = 0.4
    settings.GENERATION_HEARTBEAT_TIMEOUT_SECONDS = 3
    settings.GENERATION_DISPATCH_TIMEOUT_SECONDS = 3
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "brightrun.settings_test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "ANTHROPIC_BASE_URL": claude_server.base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test-key",
        "MEDIA_ROOT": str(local_storage),
        "GENERATION_HEARTBEAT_INTERVAL_SECONDS": "0.5",
    }
    log = tmp_path / "worker.log"
    worker = _start_worker(env, log)
    try:
        specs = batches.item_specs_from_items(
            [
                {
                    "persona": "overwhelmed_avoider",
                    "emotional_arc": "confusion_to_clarity",
                    "training_topic": "ignored_401k",
                }
            ]
            * 20,
            allow_incompatible=True,
        )
        batch = batches.generation_batch_create(owner=owner_user, specs=specs, concurrency=4)

        _wait_for(
            lambda: batch.items.filter(status="succeeded").count() >= 5 or worker.poll() is not None,
            60,
            "five items to succeed",
        )
        assert worker.poll() is None, log.read_text()[-3000:]
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        killed_at = batch.items.filter(status="succeeded").count()
        assert killed_at < 20, "the batch finished before the worker could be killed"

        worker = _start_worker(env, log)

        def finished() -> bool:
            generation_reap()
            batch.refresh_from_db()
            return batch.status != GenerationBatch.Status.RUNNING

        deadline = time.monotonic() + 120
        while not finished():
            assert time.monotonic() < deadline, f"batch stuck: {list(batch.items.values_list('status', flat=True))}"
            assert worker.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
    finally:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()

    statuses = list(batch.items.values_list("status", flat=True))
    assert len(statuses) == 20 and all(s in BatchItem.TERMINAL for s in statuses)
    assert batch.status == GenerationBatch.Status.COMPLETED and batch.succeeded_items == 20
    assert Conversation.objects.count() == 20
    assert batch.items.exclude(conversation=None).values("conversation").distinct().count() == 20
    assert not batch.items.values("conversation").annotate(n=Count("pk")).filter(n__gt=1).exists()
    print(
        f"killed after {killed_at} of 20; Claude calls made: {claude_server.count('/v1/messages')}; "
        f"broker: {settings.CELERY_BROKER_URL.split('://')[0]}"
    )
