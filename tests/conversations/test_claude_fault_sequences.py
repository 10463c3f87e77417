"""Sequences of Claude API failures over real generation batches (the SDK against the loopback Claude server).

Each test scripts what the server answers, call by call, and checks that every item ends exactly once: one
conversation per succeeded item, one failure row per failed item, a log row per call the service saw, cost only
from calls that returned a (billable) message, and the batch's cost recorded once.

Items rescheduled by the service wait in the database (``not_before``); ``_time_passes`` clears those waits
instead of sleeping through them, which is what the reaper's next dispatch would see once they are over.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from brightrun.models import CostRecord, Notification
from conversations.models import BatchItem, Conversation, FailedGeneration, GenerationBatch, GenerationLog
from conversations.services import batches
from conversations.services.generation import generation_item_run, generation_reap
from tests.claude_fixtures import TEST_API_KEY

pytestmark = pytest.mark.django_db


def _batch(owner, n: int = 1, **kwargs) -> GenerationBatch:
    specs = batches.item_specs_from_items(
        [{"persona": "overwhelmed_avoider", "emotional_arc": "confusion_to_clarity", "training_topic": "ignored_401k"}]
        * n,
        allow_incompatible=True,
    )
    return batches.generation_batch_create(owner=owner, specs=specs, **kwargs)


def _time_passes(batch: GenerationBatch) -> int:
    """Every rescheduled item's wait is over (instead of sleeping 30 s and more in a test)."""
    return batch.items.filter(status=BatchItem.Status.QUEUED, not_before__isnull=False).update(not_before=None)


def _assert_accounted_once(batch: GenerationBatch) -> None:
    """Conversations, failures, logs and costs of a finished batch, each counted exactly once."""
    batch.refresh_from_db()
    items = list(batch.items.all())
    succeeded = [i for i in items if i.status == BatchItem.Status.SUCCEEDED]
    failed = [i for i in items if i.status == BatchItem.Status.FAILED]
    assert len(succeeded) + len(failed) == len(items) == batch.total_items
    assert (batch.succeeded_items, batch.failed_items, batch.cancelled_items) == (len(succeeded), len(failed), 0)
    assert Conversation.objects.count() == len(succeeded)
    assert sorted(str(i.conversation_id) for i in succeeded) == sorted(
        str(pk) for pk in Conversation.objects.values_list("pk", flat=True)
    )
    assert all(i.conversation_id is None for i in failed)
    assert FailedGeneration.objects.filter(batch=batch).count() == len(failed)
    assert {f.item_id for f in FailedGeneration.objects.filter(batch=batch)} == {i.pk for i in failed}

    logs = GenerationLog.objects.filter(batch=batch)
    billed = logs.filter(status="success")
    assert not logs.exclude(status="success").exclude(cost_usd=0).exists(), "a failed call was charged"
    assert all(log.cost_usd > 0 for log in billed)
    total = billed.aggregate(total=Sum("cost_usd"))["total"] or Decimal("0")
    assert batch.actual_cost_usd == total
    record = CostRecord.objects.get(source_id=batch.pk)  # exactly one cost row per batch
    assert record.amount_usd == total
    # One success log per conversation, each linked to its conversation.
    assert sorted(str(pk) for pk in billed.exclude(conversation=None).values_list("conversation_id", flat=True)) == (
        sorted(str(i.conversation_id) for i in succeeded)
    )

    # Finishing bookkeeping again (the reaper, a second refresh, a duplicate task) changes nothing.
    batches.generation_batch_refresh(batch=batch)
    generation_reap()
    for item in items:
        assert generation_item_run(item_id=item.pk) == "skipped"
    assert CostRecord.objects.filter(source_id=batch.pk).count() == 1
    assert Notification.objects.filter(owner=batch.owner).count() == 1
    assert Conversation.objects.count() == len(succeeded)
    assert GenerationLog.objects.filter(batch=batch).count() == logs.count()


def test_429_429_then_valid_is_retried_by_the_sdk_after_the_retry_after(
    owner_user, scaffolding, claude_server, run_batch, local_storage
):
    claude_server.enqueue("rate_limit:0.4", "rate_limit:0.4", "valid")
    batch = run_batch(_batch(owner_user))

    assert batch.status == GenerationBatch.Status.COMPLETED
    calls = claude_server.message_requests
    assert [c["behaviour"] for c in calls] == ["rate_limit", "rate_limit", "valid"]
    gaps = [later["time"] - earlier["time"] for earlier, later in itertools.pairwise(calls)]
    assert all(gap >= 0.4 for gap in gaps), gaps  # the SDK waited the retry-after before each retry
    item = batch.items.get()
    assert item.attempts == 1  # retried inside one attempt, not rescheduled
    assert list(GenerationLog.objects.values_list("status", flat=True)) == ["success"]
    _assert_accounted_once(batch)


def test_529_three_times_then_valid_reschedules_once_and_succeeds(
    owner_user, scaffolding, claude_server, run_batch, local_storage
):
    claude_server.enqueue("overloaded", "overloaded", "overloaded", "valid")
    batch = run_batch(_batch(owner_user))

    item = batch.items.get()
    assert batch.status == GenerationBatch.Status.RUNNING and item.status == BatchItem.Status.QUEUED
    assert claude_server.count("/v1/messages") == 3  # one call and the SDK's two retries
    assert item.error_message.startswith("The Claude API is overloaded")
    assert item.not_before > timezone.now() + timedelta(seconds=20)  # backoff, not a busy loop
    assert _time_passes(batch) == 1

    batch = run_batch(batch)
    assert batch.status == GenerationBatch.Status.COMPLETED
    assert claude_server.count("/v1/messages") == 4
    item.refresh_from_db()
    assert item.attempts == 2
    assert list(GenerationLog.objects.order_by("created_at").values_list("status", "error_code")) == [
        ("failed", "overloaded"),
        ("success", ""),
    ]
    _assert_accounted_once(batch)


def test_a_call_that_hangs_past_the_client_timeout_is_retried(
    owner_user, scaffolding, claude_server, run_batch, local_storage, settings
):
    settings.ANTHROPIC_TIMEOUT_SECONDS = 0.5
    claude_server.enqueue("hang:5", "valid")
    batch = run_batch(_batch(owner_user))

    assert batch.status == GenerationBatch.Status.COMPLETED
    assert [c["behaviour"] for c in claude_server.message_requests] == ["hang", "valid"]
    assert batch.items.get().attempts == 1
    _assert_accounted_once(batch)


@pytest.mark.parametrize(
    ("behaviour", "words"),
    [("unauthorized", "Set a valid ANTHROPIC_API_KEY, then resume"), ("spend_limit", "Add credit")],
)
def test_auth_or_spend_limit_pauses_then_resume_completes_each_item_once(
    owner_user, scaffolding, claude_server, run_batch, local_storage, settings, behaviour, words
):
    if behaviour == "unauthorized":
        settings.ANTHROPIC_API_KEY = "sk-ant-revoked-key"
    claude_server.default_behaviour = behaviour  # every call fails until the operator fixes the account
    batch = run_batch(_batch(owner_user, n=3, concurrency=1))

    assert batch.status == GenerationBatch.Status.PAUSED
    assert words in batch.status_message
    assert claude_server.count("/v1/messages") == 1  # never retried, and no further item started
    assert batch.items.filter(status=BatchItem.Status.QUEUED).count() == 3
    assert not Conversation.objects.exists()
    log = GenerationLog.objects.get()
    assert log.status == "failed" and log.cost_usd == 0
    assert log.error_code == ("authentication" if behaviour == "unauthorized" else "spend_limit")

    settings.ANTHROPIC_API_KEY = TEST_API_KEY  # the key is fixed / credit is added
    claude_server.default_behaviour = "valid"
    batches.generation_batch_resume(batch=batch, actor=owner_user)
    batch = run_batch(batch)

    assert batch.status == GenerationBatch.Status.COMPLETED and batch.status_message == ""
    assert claude_server.count("/v1/messages") == 4
    assert {c["api_key"] for c in claude_server.message_requests[1:]} == {TEST_API_KEY}
    assert all(item.attempts == 1 for item in batch.items.all())  # the paused call did not use up an attempt
    _assert_accounted_once(batch)


def test_mixed_failures_across_a_batch_end_every_item_exactly_once(
    owner_user, scaffolding, claude_server, run_batch, local_storage, settings
):
    """Five items, one at a time, each call answered from the script; the service (not the SDK) retries."""
    settings.ANTHROPIC_MAX_RETRIES = 0
    settings.ANTHROPIC_TIMEOUT_SECONDS = 0.5
    claude_server.enqueue(
        # first pass over items 1..5
        "rate_limit:30",
        "overloaded",
        "valid",
        "hang:5",
        "server_error",
        # second pass over the rescheduled items 1, 2, 4, 5
        "valid",
        "truncated",
        "valid",
        "server_error",
        # third pass: item 5, its last attempt
        "server_error",
    )
    batch = run_batch(_batch(owner_user, n=5, concurrency=1))
    items = {item.position: item for item in batch.items.all()}
    assert [items[p].status for p in range(1, 6)] == ["queued", "queued", "succeeded", "queued", "queued"]
    waits = {p: (items[p].not_before - timezone.now()).total_seconds() for p in (1, 2, 4, 5)}
    assert 25 < waits[1] <= 30  # the 429's retry-after
    assert all(waits[p] > 20 for p in (2, 4, 5))  # backoff after 529, timeout and 500

    _time_passes(batch)
    batch = run_batch(batch)
    _time_passes(batch)
    batch = run_batch(batch)

    assert claude_server.queued == []
    assert claude_server.count("/v1/messages") == 10
    assert batch.status == GenerationBatch.Status.COMPLETED
    items = {item.position: item for item in batch.items.all()}
    outcome = {p: (items[p].status, items[p].attempts, items[p].error_code) for p in range(1, 6)}
    assert outcome == {
        1: ("succeeded", 1, ""),  # a rate limit does not use up an attempt
        2: ("failed", 2, "truncation"),
        3: ("succeeded", 1, ""),
        4: ("succeeded", 2, ""),
        5: ("failed", 3, "server_error"),
    }
    statuses = {
        p: list(GenerationLog.objects.filter(item=items[p]).order_by("created_at").values_list("status", flat=True))
        for p in range(1, 6)
    }
    assert statuses == {
        1: ["rate_limited", "success"],
        2: ["failed", "success"],  # the truncated answer was a billed call; the item fails on its content
        3: ["success"],
        4: ["timeout", "success"],
        5: ["failed", "failed", "failed"],
    }
    assert FailedGeneration.objects.get(item=items[2]).failure_type == "truncation"
    assert FailedGeneration.objects.get(item=items[5]).failure_type == "api_error"
    assert Notification.objects.get(owner=owner_user).type == "generation_batch_completed"
    _assert_accounted_once(batch)
