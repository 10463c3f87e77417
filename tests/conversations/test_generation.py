"""Generation end to end against the Claude-compatible test server, through the real SDK."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from brightrun.models import CostRecord, Notification
from conversations.models import (
    BatchItem,
    Conversation,
    FailedGeneration,
    GenerationBatch,
    GenerationLog,
    Persona,
)
from conversations.services import batches
from conversations.services.generation import generation_dispatch, generation_item_run, generation_reap

pytestmark = pytest.mark.django_db


def _specs(n=1, persona="overwhelmed_avoider", arc="confusion_to_clarity", topic="ignored_401k"):
    return batches.item_specs_from_items(
        [{"persona": persona, "emotional_arc": arc, "training_topic": topic}] * n, allow_incompatible=True
    )


def _batch(owner, n=1, **kwargs) -> GenerationBatch:
    return batches.generation_batch_create(owner=owner, specs=_specs(n), **kwargs)


def test_item_generates_a_conversation_with_the_real_sdk(
    owner_user, scaffolding, claude_server, run_batch, local_storage
):
    batch = run_batch(_batch(owner_user))
    assert batch.status == GenerationBatch.Status.COMPLETED
    item = batch.items.get()
    conversation = item.conversation
    assert conversation.owner == owner_user and conversation.turns.count() == conversation.turn_count >= 2
    assert (
        conversation.conversation_metadata["client_persona"]
        == "Marcus Chen - " + Persona.objects.get(key="overwhelmed_avoider").archetype
    )
    assert conversation.template_version is not None

    request = claude_server.message_requests[-1]["body"]
    system = request["system"]
    assert system[0]["cache_control"] == {"type": "ephemeral"}  # shared prefix is cacheable
    assert "{{" not in system[0]["text"] + system[1]["text"] + request["messages"][0]["content"]
    assert conversation.generation_system_prompt == system[0]["text"] + "\n\n" + system[1]["text"]
    assert request["output_config"]["format"]["type"] == "json_schema"
    beginner = conversation.training_topic.complexity == "beginner"
    assert request["temperature"] == (0.65 if beginner else 0.70)
    assert request["model"] == "claude-sonnet-4-5-20250929"

    log = GenerationLog.objects.get(item=item)
    assert log.status == "success" and log.stop_reason == "end_turn" and log.output_tokens > 0
    assert log.cost_usd > 0 and log.conversation == conversation
    assert default_storage.exists(log.raw_response_key)
    assert log.raw_response_key.startswith(f"users/{owner_user.pk}/generation/raw/")

    record = CostRecord.objects.get(source_id=batch.pk)
    assert record.amount_usd == batch.actual_cost_usd == log.cost_usd
    assert Notification.objects.get(owner=owner_user).type == "generation_batch_completed"


def test_second_cache_call_reads_the_cache(owner_user, scaffolding, claude_server, run_batch, local_storage):
    run_batch(_batch(owner_user, n=2, concurrency=1))
    logs = list(GenerationLog.objects.order_by("created_at"))
    assert logs[0].cache_write_tokens > 0 and logs[1].cache_read_tokens > 0


def test_running_an_item_twice_creates_one_conversation(owner_user, scaffolding, claude_server, local_storage):
    batch = _batch(owner_user)
    generation_dispatch(batch_id=batch.pk)
    item = batch.items.get()
    assert generation_item_run(item_id=item.pk) == "succeeded"
    assert generation_item_run(item_id=item.pk) == "skipped"
    assert Conversation.objects.count() == 1
    assert claude_server.count("/v1/messages") == 1


@pytest.mark.parametrize(("complexity", "temperature"), [("beginner", 0.65), ("advanced", 0.70)])
def test_default_temperature_by_topic(
    owner_user, scaffolding, claude_server, run_batch, local_storage, complexity, temperature
):
    from conversations.models import TrainingTopic

    topic = TrainingTopic.objects.filter(complexity=complexity).first()
    specs = batches.item_specs_from_items(
        [{"persona": "overwhelmed_avoider", "emotional_arc": "confusion_to_clarity", "training_topic": topic.key}],
        allow_incompatible=True,
    )
    run_batch(batches.generation_batch_create(owner=owner_user, specs=specs))
    assert claude_server.message_requests[-1]["body"]["temperature"] == temperature


@pytest.mark.parametrize(
    ("behaviour", "failure_type", "text"),
    [
        ("truncated", "truncation", "TRAILING_BACKSLASH"),
        ("max_tokens", "truncation", "truncated by max_tokens (16000)"),
        ("schema_violation", "schema_error", "role"),
        ("invalid_json", "parse_error", ""),
    ],
)
def test_rejected_responses_become_failed_generations(
    owner_user, scaffolding, claude_server, run_batch, local_storage, behaviour, failure_type, text, client
):
    claude_server.enqueue(behaviour)
    batch = run_batch(_batch(owner_user))
    failure = FailedGeneration.objects.get()
    assert failure.failure_type == failure_type
    assert text in failure.message + str(failure.details)
    assert failure.raw_response_key and default_storage.exists(failure.raw_response_key)
    assert failure.scaffolding["persona"] == "overwhelmed_avoider"
    assert batch.items.get().status == BatchItem.Status.FAILED
    assert batch.status == GenerationBatch.Status.FAILED
    assert not Conversation.objects.exists()
    client.force_login(owner_user)
    report = client.get(f"/generation/failures/{failure.pk}/report/")
    assert report.status_code == 200 and report.json()["failure_type"] == failure_type


def test_short_transients_are_retried_by_the_sdk(owner_user, scaffolding, claude_server, run_batch, local_storage):
    claude_server.enqueue("overloaded", "rate_limit:0.2")  # two retries are the SDK's default
    batch = run_batch(_batch(owner_user))
    assert batch.status == GenerationBatch.Status.COMPLETED
    assert claude_server.count("/v1/messages") == 3
    assert GenerationLog.objects.get().status == "success"


def test_persistent_server_errors_are_retried_later_then_fail(
    owner_user, scaffolding, claude_server, local_storage, settings
):
    claude_server.default_behaviour = "server_error"
    settings.ANTHROPIC_MAX_RETRIES = 0
    batch = _batch(owner_user)
    item = batch.items.get()
    for attempt in range(1, 4):
        BatchItem.objects.filter(pk=item.pk).update(not_before=None)
        generation_dispatch(batch_id=batch.pk)
        outcome = generation_item_run(item_id=item.pk)
        assert outcome == ("rescheduled" if attempt < 3 else "failed")
    item.refresh_from_db()
    assert item.status == BatchItem.Status.FAILED and item.attempts == 3 and item.error_code == "server_error"
    assert FailedGeneration.objects.get().failure_type == "api_error"
    assert GenerationLog.objects.filter(status="failed").count() == 3


def test_long_retry_after_reschedules_instead_of_blocking(owner_user, scaffolding, claude_server, local_storage):
    claude_server.enqueue("rate_limit:120")
    batch = _batch(owner_user)
    generation_dispatch(batch_id=batch.pk)
    item = batch.items.get()
    started = time.monotonic()
    assert generation_item_run(item_id=item.pk) == "rescheduled"
    assert time.monotonic() - started < 10  # did not sleep through 120 s
    item.refresh_from_db()
    assert item.status == BatchItem.Status.QUEUED and item.dispatched_at is None
    assert item.not_before > timezone.now() + timedelta(seconds=100)
    assert GenerationLog.objects.get().status == "rate_limited"
    assert generation_dispatch(batch_id=batch.pk) == []  # not before its time


@pytest.mark.parametrize(("behaviour", "words"), [("unauthorized", "ANTHROPIC_API_KEY"), ("spend_limit", "credit")])
def test_auth_and_spend_limit_pause_the_batch(
    owner_user, scaffolding, claude_server, run_batch, local_storage, behaviour, words
):
    claude_server.enqueue(behaviour)
    batch = run_batch(_batch(owner_user, n=2, concurrency=1))
    assert batch.status == GenerationBatch.Status.PAUSED
    assert words in batch.status_message
    assert claude_server.count("/v1/messages") == 1  # never retried
    assert not batch.items.filter(status=BatchItem.Status.FAILED).exists()
    batches.generation_batch_resume(batch=batch, actor=owner_user)
    batch = run_batch(batch)
    assert batch.status == GenerationBatch.Status.COMPLETED and batch.succeeded_items == 2


def test_missing_key_pauses_with_instructions(
    owner_user, scaffolding, claude_server, run_batch, local_storage, settings
):
    settings.ANTHROPIC_API_KEY = ""
    batch = run_batch(_batch(owner_user))
    assert batch.status == GenerationBatch.Status.PAUSED
    assert "ANTHROPIC_API_KEY" in batch.status_message


def test_stop_policy_cancels_the_rest(owner_user, scaffolding, claude_server, run_batch, local_storage):
    claude_server.enqueue("truncated")
    batch = run_batch(_batch(owner_user, n=4, concurrency=1, error_policy="stop"))
    assert (batch.failed_items, batch.cancelled_items, batch.succeeded_items) == (1, 3, 0)
    assert batch.status == GenerationBatch.Status.FAILED


def test_continue_policy_keeps_going(owner_user, scaffolding, claude_server, run_batch, local_storage):
    claude_server.enqueue("truncated")
    batch = run_batch(_batch(owner_user, n=3, concurrency=1))
    assert (batch.failed_items, batch.succeeded_items) == (1, 2)
    assert batch.status == GenerationBatch.Status.COMPLETED


def test_dispatch_respects_concurrency_and_priority(owner_user, scaffolding):
    low = _batch(owner_user, n=5, concurrency=2, priority="low", start=False)
    high = _batch(owner_user, n=5, concurrency=3, priority="high", start=False)
    GenerationBatch.objects.update(status=GenerationBatch.Status.RUNNING)
    order = generation_dispatch()
    high_ids = {str(pk) for pk in high.items.values_list("pk", flat=True)}
    assert len(order) == 5 and set(order[:3]) <= high_ids  # high priority first
    assert low.items.filter(dispatched_at__isnull=False).count() == 2
    assert high.items.filter(dispatched_at__isnull=False).count() == 3
    assert generation_dispatch() == []  # every slot taken


def test_claim_enforces_concurrency(owner_user, scaffolding, claude_server, local_storage):
    batch = _batch(owner_user, n=2, concurrency=1)
    a, b = batch.items.order_by("position")
    BatchItem.objects.filter(pk=a.pk).update(status=BatchItem.Status.RUNNING, heartbeat_at=timezone.now())
    assert generation_item_run(item_id=b.pk) == "skipped"
    b.refresh_from_db()
    assert b.status == BatchItem.Status.QUEUED


def test_pause_and_cancel_take_effect_before_the_next_item(
    owner_user, scaffolding, claude_server, run_batch, local_storage
):
    batch = _batch(owner_user, n=3, concurrency=1)
    generation_dispatch(batch_id=batch.pk)
    batches.generation_batch_pause(batch=batch, actor=owner_user)
    first = batch.items.get(position=1)
    assert generation_item_run(item_id=first.pk) == "skipped"
    assert claude_server.count("/v1/messages") == 0
    batches.generation_batch_resume(batch=batch, actor=owner_user)
    batches.generation_batch_cancel(batch=batch, actor=owner_user)
    batch.refresh_from_db()
    assert batch.status == GenerationBatch.Status.CANCELLED and batch.cancelled_items == 3
    with pytest.raises(Exception, match="cannot be resumed"):
        batches.generation_batch_resume(batch=batch, actor=owner_user)


def test_reaper_requeues_then_fails_items_without_heartbeat(owner_user, scaffolding, settings):
    settings.GENERATION_HEARTBEAT_TIMEOUT_SECONDS = 60
    batch = _batch(owner_user, n=2, concurrency=2, start=False)
    GenerationBatch.objects.filter(pk=batch.pk).update(status="running")
    stale = timezone.now() - timedelta(minutes=5)
    a, b = batch.items.order_by("position")
    BatchItem.objects.filter(pk=a.pk).update(status="running", heartbeat_at=stale, attempts=1)
    BatchItem.objects.filter(pk=b.pk).update(status="running", heartbeat_at=stale, attempts=3)
    result = generation_reap()
    assert result["requeued"] == 1 and result["failed"] == 1
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == "queued" and a.dispatched_at is not None  # requeued and dispatched again
    assert b.status == "failed" and b.error_code == "worker_lost"


def test_reaper_redispatches_lost_messages(owner_user, scaffolding, settings):
    settings.GENERATION_DISPATCH_TIMEOUT_SECONDS = 60
    batch = _batch(owner_user, n=1)
    BatchItem.objects.update(dispatched_at=timezone.now() - timedelta(minutes=5))
    assert generation_reap()["redispatched"] == 1
    assert batch.items.get().dispatched_at > timezone.now() - timedelta(seconds=5)


def test_etr():
    batch = GenerationBatch(
        total_items=10,
        succeeded_items=2,
        failed_items=0,
        cancelled_items=0,
        status="running",
        started_at=timezone.now() - timedelta(seconds=20),
    )
    assert batches.etr_seconds(batch) == pytest.approx(80, abs=1)


def test_estimate_uses_prices(owner_user, scaffolding):
    live = batches.generation_estimate(specs=_specs(10), model="claude-sonnet-4-5-20250929", mode="live", concurrency=5)
    batch_mode = batches.generation_estimate(
        specs=_specs(10), model="claude-sonnet-4-5-20250929", mode="message_batches", concurrency=5
    )
    assert live.total_items == 10 and live.cost_usd > 0 and live.basis == "heuristic"
    assert batch_mode.cost_usd == pytest.approx(live.cost_usd / 2, rel=Decimal("0.01"))


def test_message_batches_mode_completes_each_item_once(owner_user, scaffolding, claude_server, local_storage):
    from conversations.services.message_batches import generation_batch_submit, message_batches_poll

    claude_server.add_rule("Jennifer Martinez", "truncated")
    specs = _specs(2) + batches.item_specs_from_items(
        [{"persona": "anxious_planner", "emotional_arc": "confusion_to_clarity", "training_topic": "ignored_401k"}],
        allow_incompatible=True,
    )
    batch = batches.generation_batch_create(owner=owner_user, specs=specs, mode="message_batches")
    assert generation_batch_submit(batch=batch) == 3
    assert generation_batch_submit(batch=batch) == 0  # nothing left to submit
    assert batch.items.filter(status="running", submission__isnull=False).count() == 3
    claude_server.batch_polls_until_end = 2
    assert message_batches_poll() == {"ended": 0, "pending": 1}
    assert message_batches_poll() == {"ended": 1, "pending": 0}
    assert message_batches_poll() == {"ended": 0, "pending": 0}
    batch.refresh_from_db()
    assert (batch.succeeded_items, batch.failed_items) == (2, 1)
    assert Conversation.objects.count() == 2
    logs = GenerationLog.objects.filter(is_batch_api=True)
    assert logs.count() == 3
    live_price = batches.cost_usd(model=batch.model, usage={"input_tokens": 1000, "output_tokens": 1000})
    batch_price = batches.cost_usd(
        model=batch.model, usage={"input_tokens": 1000, "output_tokens": 1000}, batch_api=True
    )
    assert batch_price * 2 == live_price


def test_rate_limiter_window(settings, db):
    from conversations.services.ratelimit import rate_limit_acquire, rate_limit_record_output

    settings.ANTHROPIC_REQUESTS_PER_MINUTE = 2
    settings.ANTHROPIC_OUTPUT_TOKENS_PER_MINUTE = 1000
    now = 1_000_000.0
    assert rate_limit_acquire(model="m", now=now) == 0
    assert rate_limit_acquire(model="m", now=now + 1) == 0
    assert rate_limit_acquire(model="m", now=now + 2) == pytest.approx(58)
    assert rate_limit_acquire(model="m", now=now + 61) == 0  # the first request left the window
    rate_limit_record_output(model="other", output_tokens=1500, now=now)
    assert rate_limit_acquire(model="other", now=now + 10) == pytest.approx(50)
    assert rate_limit_acquire(model="other", now=now + 61) == 0


def test_log_cleanup_respects_retention(owner_user, settings, local_storage):
    from conversations.services.records import generation_log_cleanup
    from tests.factories import GenerationLogFactory

    settings.GENERATION_LOG_RETENTION_DAYS = 365
    old, new = GenerationLogFactory.create_batch(2, owner=owner_user)
    GenerationLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=400))
    assert generation_log_cleanup() == 1
    assert list(GenerationLog.objects.all()) == [new]
