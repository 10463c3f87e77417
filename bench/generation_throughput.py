"""Benchmark: 200 generation items against the Claude-compatible test server (1.0 s latency),
batch concurrency 8, shared rate limiter at 240 requests/min, one real Celery worker.

Measures wall time from batch creation to completion against the ideal 200 × 1.0 / 8 = 25 s,
and the most requests the server saw in any 60-second window (must be ≤ 240).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/brightrun_bench \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/generation_throughput.py

The database named in DATABASE_URL is dropped and recreated.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ITEMS, LATENCY, CONCURRENCY, RPM = 200, 1.0, 8, 240
POOL = os.environ.get("BENCH_POOL", "prefork")  # prefork: one process per slot, so the GIL is not shared


def _recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    database_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/brightrun_bench")
    broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
    media = tempfile.mkdtemp(prefix="brightrun-bench-")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker,
        "DEBUG": "1",
        "SECRET_KEY": "bench-only",
        "MEDIA_ROOT": media,
        "ANTHROPIC_API_KEY": "sk-ant-bench",
        "ANTHROPIC_REQUESTS_PER_MINUTE": str(RPM),
        "ANTHROPIC_OUTPUT_TOKENS_PER_MINUTE": "0",
        "DJANGO_SETTINGS_MODULE": "brightrun.settings",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    _recreate_database(database_url)

    from tests.claude_server import ClaudeTestServer

    server = ClaudeTestServer(latency=LATENCY).start()
    env["ANTHROPIC_BASE_URL"] = os.environ["ANTHROPIC_BASE_URL"] = server.base_url

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_scaffolding", verbosity=0)
    from brightrun.celery import app
    from conversations.models import GenerationBatch
    from conversations.services import batches

    app.control.purge()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "brightrun",
            "worker",
            "--pool",
            POOL,
            "--concurrency",
            str(CONCURRENCY),
            "--queues",
            "default,generation",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        time.sleep(5)  # worker start-up is not part of the measurement
        user = get_user_model().objects.create_user("bench", password="bench-password-123")
        specs = batches.item_specs_from_items(
            [
                {
                    "persona": "pragmatic_optimist",
                    "emotional_arc": "frustration_to_relief",
                    "training_topic": "spending_priorities",
                }
            ]
            * ITEMS,
            allow_incompatible=True,
        )
        started = time.monotonic()
        batch = batches.generation_batch_create(owner=user, specs=specs, concurrency=CONCURRENCY)
        while True:
            batch.refresh_from_db()
            if batch.status != GenerationBatch.Status.RUNNING:
                break
            time.sleep(0.1)
        wall = time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        server.stop()

    times = sorted(r["time"] for r in server.message_requests)
    peak = max((sum(1 for t in times if s <= t < s + 60) for s in times), default=0)
    ideal = ITEMS * LATENCY / CONCURRENCY
    print(f"items={ITEMS} latency={LATENCY}s concurrency={CONCURRENCY} rate_limit={RPM}/min pool={POOL}")
    print(f"status={batch.status} succeeded={batch.succeeded_items} failed={batch.failed_items}")
    print(f"claude_requests={len(times)} max_requests_in_any_60s={peak} (limit {RPM})")
    print(f"wall={wall:.2f}s ideal={ideal:.2f}s efficiency={ideal / wall * 100:.1f}%")


if __name__ == "__main__":
    main()
