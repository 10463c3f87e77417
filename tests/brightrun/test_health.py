"""GET /healthz: every component, 503 when any is down."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from brightrun.models import WorkerHeartbeat
from brightrun.tasks import worker_heartbeat_task

pytestmark = pytest.mark.django_db


def test_healthy_when_everything_answers(client, local_storage):
    worker_heartbeat_task()
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["components"]) == {"database", "broker", "storage", "worker"}
    assert body["components"]["worker"]["age_seconds"] < 5


def test_s3_storage_is_checked(client, s3_storage):
    worker_heartbeat_task()
    assert client.get("/healthz").json()["components"]["storage"] == {"status": "ok", "detail": "s3"}


def test_no_heartbeat_is_503(client, local_storage):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["components"]["worker"]["status"] == "down"


def test_stale_heartbeat_is_503(client, local_storage, settings):
    WorkerHeartbeat.objects.create(hostname="w1", last_seen=timezone.now() - timedelta(minutes=10))
    settings.WORKER_HEARTBEAT_MAX_AGE_SECONDS = 180
    body = client.get("/healthz").json()
    assert body["components"]["worker"]["status"] == "down"
    assert body["components"]["worker"]["age_seconds"] >= 600


def test_broker_down_is_503(client, local_storage, monkeypatch):
    from brightrun.celery import app

    worker_heartbeat_task()
    previous = app.conf.broker_url
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")  # Celery reads the env var first
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = previous
    assert response.status_code == 503
    assert response.json()["components"]["broker"]["status"] == "down"


def test_storage_down_is_503(client, settings, tmp_path):
    worker_heartbeat_task()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(blocker)}},
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["components"]["storage"]["status"] == "down"
