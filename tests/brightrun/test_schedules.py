"""Periodic tasks are upserted by name and keep an admin's enabled/disabled choice."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from brightrun.schedules import SCHEDULES

pytestmark = pytest.mark.django_db


def test_setup_periodic_tasks_upserts_by_name_and_keeps_admin_choices(capsys):
    call_command("setup_periodic_tasks")
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert {s.name for s in SCHEDULES} <= names
    heartbeat = PeriodicTask.objects.get(name="worker heartbeat")
    assert heartbeat.interval.every == 30 and heartbeat.task == "brightrun.tasks.worker_heartbeat_task"
    cleanup = PeriodicTask.objects.get(name="notification cleanup")
    assert (cleanup.crontab.hour, cleanup.crontab.minute) == ("3", "0")

    heartbeat.enabled = False
    heartbeat.save()
    call_command("setup_periodic_tasks")
    assert PeriodicTask.objects.get(name="worker heartbeat").enabled is False
    assert PeriodicTask.objects.filter(name="worker heartbeat").count() == 1
    assert "updated: worker heartbeat" in capsys.readouterr().out
