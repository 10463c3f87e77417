"""`make run` uses SQLite, local files and a filesystem broker; the suite uses PostgreSQL. This test serves every
main page on the embedded defaults, in a separate process, so that SQL only PostgreSQL accepts (for example an
ORDER BY inside a UNION) cannot reach `make run` unnoticed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, django
django.setup()
from django.core.management import call_command
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

for command in ("migrate", "seed_scaffolding", "seed_training"):
    call_command(command, verbosity=0)
user = get_user_model().objects.create_user("smoke", password="unused-password-1")
client = Client()
client.force_login(user)
names = [
    "dashboard", "conversations:scaffolding", "conversations:generate", "conversations:batch_list",
    "conversations:conversation_list", "conversations:quality", "conversations:failed_list",
    "conversations:generation_logs", "training_files:list", "training_files:exports", "datasets:list",
    "datasets:upload", "training:configure", "training:job_list", "training:model_list", "training:costs",
    "notifications:list", "accounts:tokens",
]
print(json.dumps({name: client.get(reverse(name)).status_code for name in names}))
"""


def test_main_pages_work_on_sqlite_and_local_files(tmp_path):
    (tmp_path / "var").mkdir()  # `make run` creates var/ first
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "STORAGE_BACKEND", "CACHE_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="brightrun.settings",
        DEBUG="1",
        BRIGHTRUN_VAR_DIR=str(tmp_path / "var"),
        ALLOWED_HOSTS="testserver,localhost",
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = json.loads(result.stdout.strip().splitlines()[-1])
    assert statuses and all(code == 200 for code in statuses.values()), statuses
