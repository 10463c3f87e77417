"""Benchmark: training-file builds, streamed (the product's builder) vs naive (load everything, one json.dumps).

N synthetic approved, enrichment-completed conversations of 8 exchanges (16 turns) are bulk-inserted; each
build runs in a fresh subprocess so that its peak RSS (``ru_maxrss``) is its own. Both builders write the
same three formats (chat JSONL, v4 JSONL, full v4 JSON) to local files.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/brightrun_bench_tf .venv/bin/python bench/training_file_build.py

``--sizes 1000,10000`` (default). The database named in DATABASE_URL is dropped and recreated.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXCHANGES = 8


def _recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _setup_django() -> None:
    import django

    django.setup()


def _seed(n: int, owner, scaffolding) -> list[str]:
    from django.utils import timezone

    from conversations.models import Conversation, Turn

    persona, arc, topic = scaffolding
    ids: list[str] = []
    now = timezone.now()
    for start in range(0, n, 500):
        rows = []
        turns = []
        for i in range(start, min(n, start + 500)):
            conversation = Conversation(
                id=uuid.uuid4(),
                owner=owner,
                title=f"Synthetic {i}",
                persona=persona,
                emotional_arc=arc,
                training_topic=topic,
                tier="template",
                generation_system_prompt="system",
                conversation_metadata={"session_context": "Evening call", "conversation_phase": "opening"},
                model="bench",
                temperature=0.7,
                status="approved",
                enrichment_status="completed",
                quality_score=3.0 + (i % 20) / 10,
                quality_tier="production",
                turn_count=2 * EXCHANGES,
                exchange_count=EXCHANGES,
            )
            rows.append(conversation)
            for k in range(1, EXCHANGES + 1):
                turns.append(
                    Turn(
                        conversation=conversation,
                        owner=owner,
                        index=2 * k - 1,
                        role="user",
                        content=f"[{i}/{k}] I am worried about my retirement savings and do not know where to start. "
                        * 3,
                        primary_emotion="worry",
                        intensity=0.7,
                    )
                )
                turns.append(
                    Turn(
                        conversation=conversation,
                        owner=owner,
                        index=2 * k,
                        role="assistant",
                        content=f"[{i}/{k}] That worry makes sense. Let us look at your accounts together, one step "
                        "at a time, and pick a first move you feel good about. " * 4,
                        primary_emotion="calm",
                        intensity=0.4,
                    )
                )
        Conversation.objects.bulk_create(rows)
        Turn.objects.bulk_create(turns, batch_size=2000)
        ids += [str(c.pk) for c in rows]
    Conversation.objects.filter(owner=owner).update(created_at=now)
    return ids


def _naive(version_id: str, workdir: str) -> tuple[int, int]:
    """Load every conversation and its turns, build every document in memory, json.dumps each at once."""
    from conversations.models import Conversation
    from conversations.services.scaffolding import vertical_active
    from conversations.services.v4 import consultant_profile, training_pairs
    from training_files.models import TrainingFileVersion
    from training_files.services import build

    version = TrainingFileVersion.objects.select_related("training_file").get(pk=version_id)
    vertical = vertical_active()
    members = list(
        build.member_queryset(version)
        .select_related("persona", "emotional_arc", "training_topic")
        .prefetch_related("turns")
    )
    rendered = []
    for c in members:
        turns = sorted(c.turns.all(), key=lambda t: t.index)
        rendered.append((c, turns, training_pairs(conversation=c, turns=turns, vertical=vertical)))
    all_pairs = [p for _, _, pairs in rendered for p in pairs]
    qs = Conversation.objects.filter(pk__in=[c.pk for c in members])
    doc = {
        "training_file_metadata": {
            "total_conversations": len(members),
            "total_training_pairs": len(all_pairs),
            "quality_summary": build.quality_summary(qs),
            "scaffolding_distribution": build.scaffolding_distribution(qs),
        },
        "consultant_profile": consultant_profile(vertical),
        "conversations": [
            {"conversation_metadata": build.conversation_metadata(c, turns), "training_pairs": pairs}
            for c, turns, pairs in rendered
        ],
    }
    chat = "".join(json.dumps(build.chat_record(c, t, vertical.inference_system_prompt)) + "\n" for c, t, _ in rendered)
    v4 = (
        json.dumps({"_meta": {"total_pairs": len(all_pairs)}}) + "\n" + "".join(json.dumps(p) + "\n" for p in all_pairs)
    )
    full = json.dumps(doc)
    size = 0
    for name, body in (("chat.jsonl", chat), ("v4.jsonl", v4), ("v4.json", full)):
        data = body.encode()
        Path(workdir, name).write_bytes(data)
        size += len(data)
    return len(members), size


def child(mode: str, version_id: str) -> None:
    _setup_django()
    from training_files.models import TrainingFileVersion
    from training_files.services import training_file_build

    workdir = tempfile.mkdtemp(prefix="tf-bench-")
    started = time.perf_counter()
    if mode == "streamed":
        version = training_file_build(version=TrainingFileVersion.objects.get(pk=version_id))
        assert version.status == "ready", version.error
        conversations, size = version.conversation_count, sum(f["size"] for f in version.files.values())
    else:
        conversations, size = _naive(version_id, workdir)
    elapsed = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps({"mode": mode, "conversations": conversations, "seconds": elapsed, "bytes": size, "rss_mb": rss_mb})
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "VERSION_ID"))
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/brightrun_bench_tf")
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "brightrun.settings_test",
            "MEDIA_ROOT": os.environ.get("MEDIA_ROOT") or tempfile.mkdtemp(prefix="tf-bench-media-"),
            "LOG_LEVEL": "WARNING",
        }
    )
    if args.child:
        child(*args.child)
        return
    _recreate_database(database_url)
    _setup_django()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from tests.factories import EmotionalArcFactory, PersonaFactory, TrainingTopicFactory
    from tests.training_files.helpers import vertical
    from training_files.models import TrainingFile, TrainingFileVersion

    call_command("migrate", verbosity=0)
    vertical()
    scaffolding = (
        PersonaFactory(key="anxious_planner"),
        EmotionalArcFactory(key="fear_to_confidence"),
        TrainingTopicFactory(key="retirement_basics"),
    )
    results = []
    for n in (int(x) for x in args.sizes.split(",")):
        owner = get_user_model().objects.create_user(f"bench{n}", password="bench-password-123")
        t0 = time.perf_counter()
        ids = _seed(n, owner, scaffolding)
        print(f"seeded {n} conversations in {time.perf_counter() - t0:.1f}s", flush=True)
        training_file = TrainingFile.objects.create(owner=owner, name=f"Bench {n}")
        for run, mode in enumerate(("streamed", "naive"), start=1):
            version = TrainingFileVersion.objects.create(
                owner=owner, training_file=training_file, number=run, member_ids=ids, conversation_count=n
            )
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, str(version.pk)],
                env=os.environ.copy(),
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["conv_per_s"] = row["conversations"] / row["seconds"]
            row["mb_per_s"] = row["bytes"] / 1e6 / row["seconds"]
            results.append(row)
            print(
                f"N={n:>6} {mode:<8} {row['seconds']:7.1f}s {row['conv_per_s']:8.0f} conv/s "
                f"{row['bytes'] / 1e6:8.1f} MB {row['mb_per_s']:6.1f} MB/s peak RSS {row['rss_mb']:7.0f} MB",
                flush=True,
            )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
