"""HTTP load benchmark (issue 9): the running platform under a loopback load generator.

What it does, in one run:

1. Database ``--db-name`` (default ``brightrun_load``) is dropped and created (``--reuse`` keeps it and its
   rows), migrated, and seeded with the product's scaffolding, ``--conversations`` conversations with 8 turns
   each for the user ``load-bench`` (bulk inserts of the real models, realistic text), a second user with its
   own rows (so the owner filter has something to filter out), training files with ready versions, and stored
   enriched JSON for some conversations. A fresh API token is issued through ``api_token_create``.
2. gunicorn serves ``brightrun.wsgi`` on a free loopback port with PostgreSQL, the Redis cache, ``DEBUG=0``,
   persistent database connections and local file storage, under ``bench.load_settings`` (the product's
   settings plus a bench-only URLconf with a plain Django JSON view and a query-counting header).
3. A query-ceiling check: list pages of 1, 50 and 500 rows, a detail and both download URLs, reading the
   ``X-Bench-Queries`` header.
4. The load: an asyncio generator with raw keep-alive HTTP/1.1 connections (stdlib only) sends a mix of
   conversation list pages, conversation details, the conversation enriched-JSON URL and the training-file
   download URL with token auth, for ``--duration`` seconds at ``--connections`` connections, then again at
   each ``--low-connections`` level for ``--low-duration`` seconds.
5. The DRF conversation list against the plain Django view over the same query and page size, each for
   ``--compare-duration`` seconds, at each of ``--compare-connections``.

It prints Markdown tables (paste-ready for bench/RESULTS.md), writes JSON to ``--json``, and exits 1 if any
request failed (a non-2xx status or a socket error) or a request exceeded the query ceiling.

The load generator runs on the same machine as gunicorn and PostgreSQL and takes CPU from them; the
machine facts printed at the top say how many cores there were.

    .venv/bin/python bench/load_http.py                      # the issue's run: 100,000 conversations, 60 s, 32
    .venv/bin/python bench/load_http.py --conversations 5000 --duration 5 --compare-duration 3 --low-duration 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUERY_CEILING = 6
TURNS_PER_CONVERSATION = 8
CHUNK = 2000
ENRICHED_FILES = 2000
TRAINING_FILES = 20
OTHER_USER_CONVERSATIONS = 2000
LIST_LIMIT = 50
USERNAME = "load-bench"
OTHER_USERNAME = "load-bench-other"


# --- environment ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(args: argparse.Namespace, port: int) -> dict[str, str]:
    """The environment of both this process (seeding) and gunicorn."""
    var = ROOT / "var" / "bench" / "load"
    (var / "static").mkdir(parents=True, exist_ok=True)  # STATIC_ROOT: WhiteNoise warns when it is missing
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.load_settings",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "DATABASE_URL": f"{args.pg_url.rstrip('/')}/{args.db_name}",
        "DATABASE_CONN_MAX_AGE": str(args.conn_max_age),
        "CACHE_URL": args.cache_url,
        "CELERY_BROKER_URL": args.cache_url,
        "DEBUG": "0",
        "SECRET_KEY": "load-bench-" + secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": f"http://127.0.0.1:{port}",
        "STORAGE_BACKEND": "local",
        "MEDIA_ROOT": str(var / "media"),
        "BRIGHTRUN_VAR_DIR": str(var),
        "LOG_LEVEL": "ERROR",  # 5xx still logged; the readiness probe's 401s are not
    }
    return env


def machine_facts(args: argparse.Namespace) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    facts: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": mem_gib,
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }
    import django
    import gunicorn
    import rest_framework

    facts.update(django=django.get_version(), drf=rest_framework.VERSION, gunicorn=gunicorn.__version__)
    try:
        import redis

        facts["redis"] = redis.Redis.from_url(args.cache_url).info("server")["redis_version"]
    except Exception as exc:
        facts["redis"] = f"unknown ({exc.__class__.__name__})"
    return facts


# --- database and seed ----------------------------------------------------------------------------------


def recreate_database(args: argparse.Namespace) -> None:
    import psycopg

    with psycopg.connect(f"{args.pg_url.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.db_name}"')


def _texts() -> tuple[list[str], list[str], dict]:
    """Real turn texts (user, assistant) and metadata from the project's clean conversation fixture."""
    data = json.loads((ROOT / "tests/conversations/fixtures/clean_conversation.json").read_text())
    users = [t["content"] for t in data["turns"] if t["role"] == "user"]
    assistants = [t["content"] for t in data["turns"] if t["role"] == "assistant"]
    return users, assistants, data["conversation_metadata"]


def seed(args: argparse.Namespace) -> dict[str, Any]:
    """Migrate and seed (or, with --reuse, find the seeded rows); returns ids and a fresh token key."""
    import django
    from django.core.management import call_command

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection

    from brightrun.services import api_token_create
    from conversations.models import Conversation, EmotionalArc, Persona, TrainingTopic, Turn
    from training_files.models import TrainingFile, TrainingFileVersion

    started = time.perf_counter()
    User = get_user_model()
    call_command("migrate", verbosity=0)
    user = User.objects.filter(username=USERNAME).first()
    reused = user is not None
    if user is None:
        call_command("seed_scaffolding", verbosity=0)
        user = User.objects.create_user(USERNAME, f"{USERNAME}@example.com", secrets.token_urlsafe(16))
        other = User.objects.create_user(OTHER_USERNAME, f"{OTHER_USERNAME}@example.com", secrets.token_urlsafe(16))
        scaffolding = (list(Persona.objects.all()), list(EmotionalArc.objects.all()), list(TrainingTopic.objects.all()))
        rng = random.Random(args.seed)
        _seed_conversations(user, args.conversations, scaffolding, rng, Conversation, Turn)
        _seed_conversations(other, OTHER_USER_CONVERSATIONS, scaffolding, rng, Conversation, Turn)
        _seed_enriched(user, Conversation, Path(settings.MEDIA_ROOT))
        for owner in (user, other):
            _seed_training_files(owner, TrainingFile, TrainingFileVersion)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    seeded = time.perf_counter() - started
    ids = [str(pk) for pk in Conversation.objects.for_user(user).values_list("pk", flat=True)]
    enriched = [
        str(pk) for pk in Conversation.objects.for_user(user).exclude(enriched_key="").values_list("pk", flat=True)
    ]
    files = [str(pk) for pk in TrainingFile.objects.for_user(user).values_list("pk", flat=True)]
    key = api_token_create(owner=user, name=f"load benchmark {uuid.uuid4().hex[:8]}").key
    connection.close()
    return {
        "conversations": ids,
        "enriched": enriched,
        "training_files": files,
        "token": key,
        "seed_seconds": round(seeded, 1),
        "reused": reused,
    }


def _seed_conversations(owner, count: int, scaffolding, rng: random.Random, Conversation, Turn) -> None:
    personas, arcs, topics = scaffolding
    users, assistants, metadata = _texts()
    statuses = ["approved"] * 12 + ["pending_review"] * 5 + ["rejected"] * 2 + ["needs_revision"]
    emotions = ["anxiety", "uncertainty", "relief", "hope", "frustration", "calm", "pride"]
    # The shapes enrichment stores (validation report, judge scores, MinHash signature of 128 values).
    criteria = ("empathy", "clarity", "appropriateness", "brand_voice_alignment", "arc_fidelity")
    rationale = "The advisor names the client's feeling before giving facts and keeps each step concrete and small."
    report = {
        "blockers": [],
        "warnings": [{"code": "LONG_TURN", "turn": 4, "message": "Turn 4 is longer than 250 words."}],
        "checked": ["structure", "roles", "emotions", "truncation"],
    }
    done = 0
    while done < count:
        size = min(CHUNK, count - done)
        conversations = []
        for n in range(done, done + size):
            persona, arc, topic = rng.choice(personas), rng.choice(arcs), rng.choice(topics)
            quality = round(rng.uniform(2.5, 5.0), 2)
            conversations.append(
                Conversation(
                    owner=owner,
                    title=f"{persona.name}: {topic.name} ({arc.name}) #{n + 1}",
                    persona=persona,
                    emotional_arc=arc,
                    training_topic=topic,
                    tier="template",
                    generation_system_prompt=f"You are Elena Morales, CFP. Persona: {persona.name}. "
                    f"Arc: {arc.name}. Topic: {topic.name}. " + assistants[0][:600],
                    conversation_metadata={**metadata, "client_persona": persona.name},
                    model="claude-sonnet-4-5-20250929",
                    temperature=0.7,
                    input_tokens=rng.randint(2500, 4000),
                    output_tokens=rng.randint(1500, 3500),
                    cost_usd=f"{rng.uniform(0.02, 0.08):.6f}",
                    status=rng.choice(statuses),
                    enrichment_status="completed",
                    structure_score=round(rng.uniform(6, 10), 2),
                    validation_report=report,
                    judge_scores={
                        criterion: {"score": rng.randint(3, 5), "rationale": rationale} for criterion in criteria
                    },
                    minhash=[rng.getrandbits(32) for _ in range(128)],
                    judge_mean=quality,
                    quality_score=quality,
                    quality_tier="production" if quality >= 4 else "experimental",
                    turn_count=TURNS_PER_CONVERSATION,
                    exchange_count=TURNS_PER_CONVERSATION // 2,
                    is_flagged=rng.random() < 0.03,
                )
            )
        Conversation.objects.bulk_create(conversations, batch_size=CHUNK)
        turns = []
        for c in conversations:
            for i in range(1, TURNS_PER_CONVERSATION + 1):
                user_turn = i % 2 == 1
                pool = users if user_turn else assistants
                turns.append(
                    Turn(
                        owner=owner,
                        conversation=c,
                        index=i,
                        role="user" if user_turn else "assistant",
                        content=pool[(i // 2) % len(pool)],
                        primary_emotion=rng.choice(emotions) if user_turn else "",
                        secondary_emotion=rng.choice(emotions) if user_turn else "",
                        intensity=round(rng.uniform(0.3, 0.9), 2) if user_turn else None,
                    )
                )
        Turn.objects.bulk_create(turns, batch_size=CHUNK * 2)
        done += size
        print(f"  seeded {done:,}/{count:,} conversations of {owner.username}", file=sys.stderr, flush=True)


def _seed_enriched(owner, Conversation, media_root: Path) -> None:
    """Stored v4 JSON for the newest conversations, so their enriched-URL endpoint answers 200."""
    from brightrun.storage import owned_key

    newest = Conversation.objects.for_user(owner).order_by("-created_at").values_list("pk", flat=True)
    rows = list(newest[:ENRICHED_FILES])
    updates = []
    for pk in rows:
        key = owned_key(owner.pk, "conversations", str(pk), "enriched.json")
        path = media_root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"conversation_id": str(pk), "format": "brightrun-lora-v4"}))
        updates.append(Conversation(pk=pk, enriched_key=key))
    Conversation.objects.bulk_update(updates, ["enriched_key"], batch_size=CHUNK)


def _seed_training_files(owner, TrainingFile, TrainingFileVersion) -> None:
    from brightrun.storage import owned_key

    for n in range(TRAINING_FILES):
        training_file = TrainingFile.objects.create(owner=owner, name=f"Training file {n + 1}")
        files = {}
        for fmt, suffix in (("chat-jsonl", ".chat.jsonl"), ("v4-jsonl", ".v4.jsonl"), ("v4-json", ".v4.json")):
            name = f"training-file-{n + 1}-v1{suffix}"
            key = owned_key(owner.pk, "training-files", str(training_file.pk), "v1", name)
            files[fmt] = {"key": key, "filename": name, "size": 1_000_000 + n, "sha256": f"{n:064x}"}
        version = TrainingFileVersion.objects.create(
            owner=owner,
            training_file=training_file,
            number=1,
            status="ready",
            conversation_count=500,
            training_pair_count=2000,
            files=files,
        )
        training_file.current_version = version
        training_file.save(update_fields=["current_version"])


# --- gunicorn -------------------------------------------------------------------------------------------


def start_gunicorn(args: argparse.Namespace, env: dict[str, str], port: int) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "brightrun.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--threads",
        str(args.threads),
        "--keep-alive",
        "5",
        "--backlog",
        "256",
        "--log-level",
        "warning",
        "--chdir",
        str(ROOT),
    ]
    process = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /api/v1/notifications/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if s.recv(12).startswith(b"HTTP/1."):
                    return process
        except OSError:
            time.sleep(0.2)
    stop_gunicorn(process)
    raise SystemExit("gunicorn did not answer within 60 s")


def stop_gunicorn(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- CPU accounting -------------------------------------------------------------------------------------


def _proc_cpu(pid: str) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of a process from /proc, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(server_pid: int, db_name: str) -> dict[str, float]:
    """CPU seconds used so far by this process (the load generator), gunicorn (master and workers) and the
    PostgreSQL backends connected to the benchmark database (persistent connections: the same backends
    serve a whole phase)."""
    gunicorn = postgres = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        info = _proc_cpu(entry.name)
        if info is None:
            continue
        ppid, seconds = info
        if int(entry.name) == server_pid or ppid == server_pid:
            gunicorn += seconds
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"postgres: ") and f" {db_name} ".encode() in cmdline:
            postgres += seconds
    return {"load generator": time.process_time(), "gunicorn": gunicorn, "postgres": postgres}


def cpu_delta(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Average cores used per part over the phase."""
    return {name: round((after[name] - before[name]) / seconds, 2) for name in before}


# --- the load generator ---------------------------------------------------------------------------------


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closes it."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.head = f"Host: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\nAccept: application/json\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.connects = 0
        self.retries = 0

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.connects += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        reused = self.writer is not None
        if not reused:
            await self._open()
        try:
            return await self._exchange(path)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
            # A kept-alive connection the server closed before answering: retry once on a fresh one, as
            # every HTTP client does for an idempotent request. Anything else is an error.
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            self.close()
            self.retries += 1
            await self._open()
            return await self._exchange(path)

    async def _exchange(self, path: str) -> tuple[int, dict[str, str], bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\n{self.head}\r\n".encode())
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                body += await self.reader.readexactly(size)
                await self.reader.readexactly(2)
            data = bytes(body)
        elif "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        else:
            data = await self.reader.read()
            self.close()
        if headers.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0":
            self.close()
        return status, headers, data


@dataclass
class Endpoint:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    max_queries: int = 0
    bytes: int = 0
    error_samples: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(message)


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, math.ceil(q / 100 * len(sorted_values)) - 1))  # nearest rank
    return sorted_values[index]


def summarize(endpoints: dict[str, Endpoint], seconds: float) -> dict[str, Any]:
    rows = {}
    all_latencies: list[float] = []
    for name, ep in endpoints.items():
        values = sorted(ep.latencies)
        all_latencies += values
        rows[name] = _summary_row(values, ep.errors, seconds, ep)
    total = Endpoint(errors=sum(ep.errors for ep in endpoints.values()))
    total.max_queries = max((ep.max_queries for ep in endpoints.values()), default=0)
    total.bytes = sum(ep.bytes for ep in endpoints.values())
    rows["all"] = _summary_row(sorted(all_latencies), total.errors, seconds, total)
    return rows


def _summary_row(values: list[float], errors: int, seconds: float, ep: Endpoint) -> dict[str, Any]:
    count = len(values) + errors
    return {
        "requests": count,
        "errors": errors,
        "rps": round(count / seconds, 1) if seconds else None,
        "p50_ms": round(_percentile(values, 50) * 1000, 1),
        "p95_ms": round(_percentile(values, 95) * 1000, 1),
        "p99_ms": round(_percentile(values, 99) * 1000, 1),
        "max_ms": round(values[-1] * 1000, 1) if values else None,
        "mean_ms": round(statistics.fmean(values) * 1000, 2) if values else None,
        "max_queries": ep.max_queries,
        "mean_kib": round(ep.bytes / len(values) / 1024, 1) if values else None,
        "statuses": ep.statuses,
        "error_samples": ep.error_samples,
    }


async def run_load(
    *, port: int, token: str, connections: int, duration: float, pick, warmup: float = 0.0
) -> tuple[dict[str, Endpoint], float, dict[str, int]]:
    """``connections`` concurrent clients, each sending ``pick()``'s next request as soon as one is answered."""
    endpoints: dict[str, Endpoint] = {}
    clients = [Connection(port, token) for _ in range(connections)]
    measuring = asyncio.Event()

    async def client_loop(conn: Connection, stop_at: float) -> None:
        while time.perf_counter() < stop_at:
            name, path = pick()
            started = time.perf_counter()
            record = measuring.is_set()
            ep = endpoints.setdefault(name, Endpoint()) if record else Endpoint()
            try:
                status, headers, body = await asyncio.wait_for(conn.get(path), timeout=30)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, HttpError) as exc:
                conn.close()
                ep.fail(f"{path}: {exc.__class__.__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - started
            ep.statuses[str(status)] = ep.statuses.get(str(status), 0) + 1
            queries = int(headers.get("x-bench-queries", "0"))
            ep.max_queries = max(ep.max_queries, queries)
            if not 200 <= status < 300:
                ep.fail(f"{path}: HTTP {status}: {body[:200]!r}")
                continue
            ep.latencies.append(elapsed)
            ep.bytes += len(body)

    if warmup:
        await asyncio.gather(*(client_loop(c, time.perf_counter() + warmup) for c in clients))
    measuring.set()
    started = time.perf_counter()
    await asyncio.gather(*(client_loop(c, started + duration) for c in clients))
    elapsed = time.perf_counter() - started
    for c in clients:
        c.close()
    counts = {"connects": sum(c.connects for c in clients), "retries": sum(c.retries for c in clients)}
    return endpoints, elapsed, counts


def make_mix(seeded: dict[str, Any], rng: random.Random, max_page: int):
    """The request mix of the main phase (weights in percent)."""
    ids, enriched, files = seeded["conversations"], seeded["enriched"], seeded["training_files"]
    last_page = max(0, (len(ids) - LIST_LIMIT) // LIST_LIMIT)
    shallow = min(max_page, last_page + 1)
    formats = ("chat-jsonl", "v4-jsonl", "v4-json")
    choices = [
        (
            45,
            lambda: (
                "conversation list",
                f"/api/v1/conversations/?limit={LIST_LIMIT}&offset={LIST_LIMIT * rng.randrange(shallow)}",
            ),
        ),
        (
            5,
            lambda: (
                "conversation list, deep offset",
                f"/api/v1/conversations/?limit={LIST_LIMIT}&offset={LIST_LIMIT * rng.randint(0, last_page)}",
            ),
        ),
        (30, lambda: ("conversation detail", f"/api/v1/conversations/{rng.choice(ids)}/")),
        (10, lambda: ("conversation enriched URL", f"/api/v1/conversations/{rng.choice(enriched)}/enriched/")),
        (
            10,
            lambda: (
                "training-file download URL",
                f"/api/v1/training-files/{rng.choice(files)}/download/?format={rng.choice(formats)}",
            ),
        ),
    ]
    weights = [w for w, _ in choices]
    makers = [m for _, m in choices]

    def pick() -> tuple[str, str]:
        return rng.choices(makers, weights)[0]()

    return pick


def make_list_pick(path: str, name: str, count: int, rng: random.Random, max_page: int):
    pages = min(max_page, max(1, count // LIST_LIMIT))

    def pick() -> tuple[str, str]:
        return name, f"{path}?limit={LIST_LIMIT}&offset={LIST_LIMIT * rng.randrange(pages)}"

    return pick


async def one(port: int, token: str, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = Connection(port, token)
    try:
        return await conn.get(path)
    finally:
        conn.close()


async def query_check(port: int, seeded: dict[str, Any]) -> tuple[dict[str, int], list[str]]:
    """Queries per request at list page sizes 1/50/500, a detail and both download URLs (2nd request each)."""
    token, conversation = seeded["token"], seeded["enriched"][0]
    paths = {
        "conversation list, limit=1": "/api/v1/conversations/?limit=1",
        "conversation list, limit=50": "/api/v1/conversations/?limit=50",
        "conversation list, limit=500": "/api/v1/conversations/?limit=500",
        "conversation list, limit=50, offset=50000": "/api/v1/conversations/?limit=50&offset=50000",
        "conversation detail": f"/api/v1/conversations/{conversation}/",
        "conversation enriched URL": f"/api/v1/conversations/{conversation}/enriched/",
        "training-file list, limit=500": "/api/v1/training-files/?limit=500",
        "training-file download URL": f"/api/v1/training-files/{seeded['training_files'][0]}/download/?format=v4-json",
        "plain Django list, limit=50": "/api/bench/plain-conversations/?limit=50",
    }
    counts, problems = {}, []
    for name, path in paths.items():
        await one(port, token, path)
        status, headers, body = await one(port, token, path)
        counts[name] = int(headers.get("x-bench-queries", "-1"))
        if status != 200:
            problems.append(f"{name}: HTTP {status} {body[:200]!r}")
        elif counts[name] > QUERY_CEILING:
            problems.append(f"{name}: {counts[name]} queries > {QUERY_CEILING}")
    drf = json.loads((await one(port, token, "/api/v1/conversations/?limit=50&offset=100"))[2])
    plain = json.loads((await one(port, token, "/api/bench/plain-conversations/?limit=50&offset=100"))[2])
    if (drf["count"], drf["results"]) != (plain["count"], plain["results"]):
        problems.append("the plain Django view's rows differ from the DRF list's rows")
    return counts, problems


# --- report ---------------------------------------------------------------------------------------------


def _table(rows: dict[str, dict[str, Any]], seconds: float) -> str:
    out = [
        "| endpoint | requests | errors | req/s | p50 ms | p95 ms | p99 ms | max ms | mean KiB | max queries |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        label = f"**{name}**" if name == "all" else name
        out.append(
            f"| {label} | {r['requests']:,} | {r['errors']} | {r['rps']} | {r['p50_ms']} | {r['p95_ms']} | "
            f"{r['p99_ms']} | {r['max_ms']} | {r['mean_kib']} | {r['max_queries']} |"
        )
    return "\n".join(out)


def print_report(result: dict[str, Any]) -> None:
    a, f = result["args"], result["machine"]
    print(
        f"\n**Run:** {f['date']}; {a['conversations']:,} conversations of one user (+{OTHER_USER_CONVERSATIONS:,} of "
        f"another), {TURNS_PER_CONVERSATION} turns each; gunicorn `{result['gunicorn']}`; "
        f"`DATABASE_CONN_MAX_AGE={a['conn_max_age']}`; seed {result['seed_seconds']} s"
        f"{' (reused)' if result['reused'] else ''}."
    )
    print(
        f"**Machine:** {f['nproc']} CPUs ({f['cpu']}), {f['ram_gib']} GiB RAM, PostgreSQL {result['postgres']}, "
        f"Redis {f['redis']}, Python {f['python']}, Django {f['django']}, DRF {f['drf']}, gunicorn {f['gunicorn']}; "
        f"load average at start {', '.join(f'{x:.2f}' for x in f['load_average_at_start'])}. "
        f"The load generator, gunicorn and PostgreSQL share these CPUs.\n"
    )
    print(f"**Queries per request** (ceiling {QUERY_CEILING}, `X-Bench-Queries`, second request of each):\n")
    print("| request | queries |\n|---|---:|")
    for name, n in result["query_check"].items():
        print(f"| {name} | {n} |")
    for phase in result["phases"]:
        print(
            f"\n**{phase['title']}** ({phase['connections']} connections, {phase['seconds']:.1f} s measured after "
            f"{phase['warmup']} s warm-up; {phase['connects']} TCP connects, {phase['retries']} keep-alive "
            f"retries; load average at the end {phase['load_average_end'][0]:.2f}):\n"
        )
        print(_table(phase["rows"], phase["seconds"]))
        cores = ", ".join(f"{name} {value}" for name, value in phase["cores_used"].items())
        print(
            f"\nCores used on average over the phase (warm-up included; PostgreSQL counts the backends of the "
            f"benchmark database alive at the end of the phase): {cores}."
        )
    for cmp in result["compare"]:
        print(
            f"\n**DRF list vs plain Django JSON view** ({cmp['connections']} connections, {cmp['seconds']} s each, "
            f"limit={LIST_LIMIT}, same queryset, fields and envelope):\n"
        )
        print("| view | requests | errors | req/s | p50 ms | p95 ms | p99 ms | mean ms |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name in ("DRF", "plain Django"):
            r = cmp[name]
            print(
                f"| {name} | {r['requests']:,} | {r['errors']} | {r['rps']} | {r['p50_ms']} | {r['p95_ms']} | "
                f"{r['p99_ms']} | {r['mean_ms']} |"
            )
        print(
            f"\nDRF cost per request: {cmp['drf_ms_per_request']} ms of machine time (1/req/s difference), "
            f"{cmp['drf_mean_latency_ms']} ms of mean latency."
        )
    verdict = result["verdict"]
    print(
        f"\n**Verdict:** errors {verdict['errors']}; conversation list p95 {verdict['list_p95_ms']} ms at "
        f"{a['connections']} connections (target < 50 ms: {'met' if verdict['list_p95_met'] else 'not met'}); "
        f"max queries per request {verdict['max_queries']} (ceiling {QUERY_CEILING}: "
        f"{'met' if verdict['queries_met'] else 'not met'}). Conversation list p95 by connections: "
        + ", ".join(f"{c}: {p95} ms" for c, p95 in verdict["list_p95_ms_by_connections"].items())
        + "."
    )
    for problem in result["problems"]:
        print(f"- problem: {problem}")


def _postgres_version(args: argparse.Namespace) -> str:
    import psycopg

    with psycopg.connect(f"{args.pg_url.rstrip('/')}/{args.db_name}") as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the main phase")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--low-connections", default="8,1", help="comma-separated lower concurrency levels ('' none)")
    parser.add_argument("--low-duration", type=float, default=30.0)
    parser.add_argument("--compare-duration", type=float, default=20.0)
    parser.add_argument("--compare-connections", default="32,1", help="comma-separated concurrency levels")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--max-page", type=int, default=100, help="list pages drawn from the first N pages")
    parser.add_argument("--reuse", action="store_true", help="keep the database and its rows if seeded")
    parser.add_argument("--db-name", default="brightrun_load")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--cache-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--worker-class", default="gthread", choices=("sync", "gthread"))
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--conn-max-age", type=int, default=600)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--json", default=str(ROOT / "var/bench/load_http.json"))
    args = parser.parse_args(argv)

    port = _free_port()
    env = server_env(args, port)
    for name in (
        "DJANGO_SETTINGS_MODULE",
        "DATABASE_URL",
        "DATABASE_CONN_MAX_AGE",
        "CACHE_URL",
        "CELERY_BROKER_URL",
        "DEBUG",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "SITE_URL",
        "STORAGE_BACKEND",
        "MEDIA_ROOT",
        "BRIGHTRUN_VAR_DIR",
        "LOG_LEVEL",
    ):
        os.environ[name] = env[name]
    if not args.reuse:
        recreate_database(args)
    print(f"seeding {args.db_name} ...", file=sys.stderr, flush=True)
    seeded = seed(args)
    facts = machine_facts(args)
    gunicorn_desc = f"--worker-class {args.worker_class} --workers {args.workers}" + (
        f" --threads {args.threads}" if args.worker_class == "gthread" else ""
    )
    print(f"starting gunicorn {gunicorn_desc} on 127.0.0.1:{port} ...", file=sys.stderr, flush=True)
    server = start_gunicorn(args, env, port)
    rng = random.Random(args.seed)
    problems: list[str] = []
    phases, compares = [], []
    try:
        counts, query_problems = asyncio.run(query_check(port, seeded))
        problems += query_problems
        pick = make_mix(seeded, rng, args.max_page)
        levels = [(f"Mixed load at {args.connections} connections", args.connections, args.duration)]
        levels += [
            (f"Mixed load at {int(c)} connection{'s' if int(c) != 1 else ''}", int(c), args.low_duration)
            for c in args.low_connections.split(",")
            if c.strip()
        ]
        for title, connections, duration in levels:
            print(f"{title} for {duration} s ...", file=sys.stderr, flush=True)
            cpu_before, wall_before = cpu_snapshot(server.pid, args.db_name), time.perf_counter()
            endpoints, seconds, conn_stats = asyncio.run(
                run_load(
                    port=port,
                    token=seeded["token"],
                    connections=connections,
                    duration=duration,
                    pick=pick,
                    warmup=args.warmup,
                )
            )
            phases.append(
                {
                    "title": title,
                    "connections": connections,
                    "seconds": round(seconds, 2),
                    "warmup": args.warmup,
                    "rows": summarize(endpoints, seconds),
                    "cores_used": cpu_delta(
                        cpu_before, cpu_snapshot(server.pid, args.db_name), time.perf_counter() - wall_before
                    ),
                    "load_average_end": os.getloadavg(),
                    **conn_stats,
                }
            )
        count = len(seeded["conversations"])
        for c in [int(x) for x in args.compare_connections.split(",") if x.strip()]:
            cmp: dict[str, Any] = {"connections": c, "seconds": args.compare_duration}
            for name, path in (("DRF", "/api/v1/conversations/"), ("plain Django", "/api/bench/plain-conversations/")):
                print(f"{name} list at {c} connections for {args.compare_duration} s ...", file=sys.stderr, flush=True)
                endpoints, seconds, _ = asyncio.run(
                    run_load(
                        port=port,
                        token=seeded["token"],
                        connections=c,
                        duration=args.compare_duration,
                        pick=make_list_pick(path, name, count, rng, args.max_page),
                        warmup=args.warmup,
                    )
                )
                cmp[name] = summarize(endpoints, seconds)[name]
            drf, plain = cmp["DRF"], cmp["plain Django"]
            cmp["drf_ms_per_request"] = round(1000 / drf["rps"] - 1000 / plain["rps"], 2)
            cmp["drf_mean_latency_ms"] = round(drf["mean_ms"] - plain["mean_ms"], 2)
            compares.append(cmp)
    finally:
        stop_gunicorn(server)

    errors = sum(p["rows"]["all"]["errors"] for p in phases)
    errors += sum(cmp[name]["errors"] for cmp in compares for name in ("DRF", "plain Django"))
    main_rows = phases[0]["rows"] if phases else {}
    list_p95 = main_rows.get("conversation list", {}).get("p95_ms")
    max_queries = max(
        [p["rows"]["all"]["max_queries"] for p in phases]
        + [cmp[name]["max_queries"] for cmp in compares for name in ("DRF", "plain Django")]
        + list(counts.values())
    )
    result = {
        "args": vars(args),
        "machine": facts,
        "postgres": _postgres_version(args),
        "gunicorn": gunicorn_desc,
        "seed_seconds": seeded["seed_seconds"],
        "reused": seeded["reused"],
        "query_check": counts,
        "phases": phases,
        "compare": compares,
        "problems": problems,
        "verdict": {
            "errors": errors,
            "list_p95_ms": list_p95,
            "list_p95_met": list_p95 is not None and list_p95 < 50,
            "list_p95_ms_by_connections": {
                p["connections"]: p["rows"].get("conversation list", {}).get("p95_ms") for p in phases
            },
            "max_queries": max_queries,
            "queries_met": max_queries <= QUERY_CEILING,
        },
    }
    print_report(result)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nJSON: {out}", file=sys.stderr)
    return 1 if errors or problems or max_queries > QUERY_CEILING else 0


if __name__ == "__main__":
    sys.exit(main())
