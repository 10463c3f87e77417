"""Component checks behind ``GET /healthz``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from brightrun.celery import app as celery_app
from brightrun.models import WorkerHeartbeat
from brightrun.storage import storage_check


@dataclass
class ComponentStatus:
    ok: bool
    detail: str
    extra: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": "ok" if self.ok else "down", "detail": self.detail}
        if self.extra:
            data.update(self.extra)
        return data


def check_database() -> ComponentStatus:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return ComponentStatus(True, connection.vendor)
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        return ComponentStatus(False, f"{type(exc).__name__}: {exc}")


def check_broker() -> ComponentStatus:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            transport = conn.transport_cls
        return ComponentStatus(True, str(transport))
    except Exception as exc:  # noqa: BLE001
        return ComponentStatus(False, f"{type(exc).__name__}: {exc}")


def check_storage() -> ComponentStatus:
    try:
        storage_check()
        return ComponentStatus(True, settings.STORAGE_BACKEND)
    except Exception as exc:  # noqa: BLE001
        return ComponentStatus(False, f"{type(exc).__name__}: {exc}")


def check_worker() -> ComponentStatus:
    try:
        beat = WorkerHeartbeat.objects.order_by("-last_seen").first()
    except Exception as exc:  # noqa: BLE001
        return ComponentStatus(False, f"{type(exc).__name__}: {exc}")
    if beat is None:
        return ComponentStatus(False, "no worker heartbeat yet", {"age_seconds": None})
    age = (timezone.now() - beat.last_seen).total_seconds()
    limit = settings.WORKER_HEARTBEAT_MAX_AGE_SECONDS
    ok = age <= limit
    detail = beat.hostname if ok else f"last heartbeat from {beat.hostname} is older than {limit} s"
    return ComponentStatus(ok, detail, {"age_seconds": round(age, 1)})


def health_report() -> tuple[bool, dict[str, Any]]:
    components = {
        "database": check_database(),
        "broker": check_broker(),
        "storage": check_storage(),
        "worker": check_worker(),
    }
    healthy = all(c.ok for c in components.values())
    return healthy, {
        "status": "ok" if healthy else "down",
        "components": {name: c.as_dict() for name, c in components.items()},
    }
