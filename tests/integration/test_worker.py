"""A real Celery worker process against the real broker (Redis in CI, else the filesystem).

The worker runs the project's own tasks against the test database; nothing is mocked.
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from brightrun.celery import app
from brightrun.models import Notification, WorkerHeartbeat
from brightrun.tasks import notification_cleanup_task
from tests.factories import NotificationFactory
from tests.processes import celery_worker_argv

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.worker


def _database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a shared database server (PostgreSQL); make test provides one")
    app.control.purge()
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "brightrun.settings_test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            celery_worker_argv(queues="default"),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_task_round_trip_through_real_broker(celery_worker_process, owner_user):
    proc, log = celery_worker_process
    # The worker announces itself with a heartbeat sent through the broker on start.
    _wait_for(lambda: WorkerHeartbeat.objects.exists() or proc.poll() is not None, 60, "the worker heartbeat")
    assert proc.poll() is None, log.read_text()

    stale = NotificationFactory(owner=owner_user, is_read=True)
    Notification.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(days=120))
    fresh = NotificationFactory(owner=owner_user, is_read=True)

    notification_cleanup_task.delay()
    _wait_for(lambda: not Notification.objects.filter(pk=stale.pk).exists(), 30, "the cleanup task")
    assert Notification.objects.filter(pk=fresh.pk).exists()
    assert "notification_cleanup_task" in log.read_text()
    print(f"broker: {settings.CELERY_BROKER_URL.split('://')[0]}")
