"""Benchmark: end-to-end time of a local training job, from its creation to a stored artifact.

The real path through the platform's services on a database of its own: a chat JSONL dataset is stored and
validated (``dataset_create`` → file in storage → ``dataset_confirm`` → ``dataset_validate``), the catalogue is
seeded and the tiny test model built, then the clock starts: ``training_job_create`` (estimate stored) →
``training_job_run_local`` (claim, split files, download, tokenize, LoRA training with a metric point per step
and evaluation per epoch, artifact upload with SHA-256s, completion, cost record, notifications). The stages are
read back from the job's events and timestamps.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/brightrun_bench_e2e \\
        .venv/bin/python bench/training_end_to_end.py [--examples 300] [--epochs 1]

The database named in ``DATABASE_URL`` is dropped and recreated (it must not be one you use).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _database(url: str) -> None:
    name = url.rsplit("/", 1)[-1]
    if not name.startswith("brightrun_bench"):
        sys.exit("Use a database whose name starts with brightrun_bench (it is dropped and recreated).")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    for sql in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
        subprocess.run(["psql", admin, "-q", "-c", sql], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database for the benchmark (see the module docstring).")
    _database(url)
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="brightrun.settings",
        DEBUG="1",
        BRIGHTRUN_VAR_DIR=str(work / "var"),
        STORAGE_BACKEND="local",
        CELERY_TASK_ALWAYS_EAGER="0",
    )
    import django

    django.setup()
    import torch
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.core.management import call_command
    from training_throughput import conversation

    from brightrun.storage import file_storage
    from datasets.services import dataset_confirm, dataset_create, dataset_validate
    from training.models import BaseModel, GpuType, MetricPoint
    from training.services import catalogue_seed, training_job_create
    from training.services.catalogue import TINY_TEST_MODEL_HF_ID
    from training.services.local import training_job_run_local

    torch.set_num_threads(2)
    call_command("migrate", verbosity=0)
    call_command("build_test_model", verbosity=0)
    catalogue_seed()
    owner = get_user_model().objects.create_user("bench", password="unused-password-1")
    rng = random.Random(7)
    data = "".join(json.dumps(conversation(rng)) + "\n" for _ in range(args.examples)).encode()
    pending = dataset_create(owner=owner, name="Bench", file_name="bench.jsonl", file_size=len(data))
    file_storage().save(pending.dataset.storage_key, ContentFile(data))
    dataset = dataset_confirm(dataset=pending.dataset, actor=owner)
    dataset = dataset_validate(dataset_id=dataset.pk)
    assert dataset is not None and dataset.status == "ready", dataset and dataset.error

    started = time.perf_counter()
    job = training_job_create(
        owner=owner,
        dataset=dataset,
        base_model=BaseModel.objects.get(hf_id=TINY_TEST_MODEL_HF_ID),
        gpu_type=GpuType.objects.get(key="L40S-48GB"),
        hyperparameters={"epochs": args.epochs, "max_seq_length": 2048},
    )
    created = time.perf_counter()
    job = training_job_run_local(job_id=job.pk)
    finished = time.perf_counter()
    assert job is not None and job.status == "completed", job and (job.error_code, job.error_message)
    steps = MetricPoint.objects.filter(job=job, training_loss__isnull=False).count()
    events = {e.kind: e.created_at for e in job.events.all()}
    print(
        json.dumps(
            {
                "examples": args.examples,
                "epochs": args.epochs,
                "dataset_bytes": len(data),
                "steps": steps,
                "create_seconds": round(created - started, 3),
                "create_to_artifact_seconds": round(finished - started, 2),
                "claim_to_started_seconds": round((events["started"] - job.claimed_at).total_seconds(), 2),
                "started_to_completed_seconds": round((job.finished_at - job.started_at).total_seconds(), 2),
                "measured_tokens_per_second": round(job.measured_tokens_per_second or 0, 1),
                "artifact_files": len(job.artifact.files),
                "artifact_bytes": job.artifact.total_size,
                "actual_cost_usd": str(job.actual_cost),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
