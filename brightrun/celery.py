"""The Celery application. Configuration comes from Django settings (``CELERY_*``)."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brightrun.settings")

app = Celery("brightrun")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _on_configure(sender: Celery, **_: object) -> None:
    from django.conf import settings

    app.conf.task_queues = [Queue(name, Exchange(name), routing_key=name) for name in settings.CELERY_QUEUES]
    # The filesystem transport (the embedded default) needs its folders to exist.
    for key in ("data_folder_in", "data_folder_out", "control_folder", "processed_folder"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get(key)
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
