"""Processing generation items: dispatch, claim, the Claude call, acceptance, storage, reaping.

Guarantees:
* an item is claimed with a conditional update (queued → running), so running its task twice
  never makes two conversations, and a batch never runs more items at once than its
  concurrency (the batch row is locked while claiming);
* an item's conversation, turns and final status are written in one transaction, guarded by
  ``status = running``, so a result is applied exactly once;
* a worker that dies leaves its item ``running`` without heartbeats; the reaper requeues it
  (up to ``GENERATION_MAX_ATTEMPTS``) or fails it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from brightrun.errors import ApplicationError
from conversations.models import BatchItem, GenerationBatch
from conversations.services import batches, records
from conversations.services.acceptance import CONVERSATION_SCHEMA, check_response
from conversations.services.claude import ClaudeCallError, message_params, messages_create
from conversations.services.ratelimit import rate_limit_acquire, rate_limit_record_output
from conversations.services.scaffolding import generation_prompt_build

log = logging.getLogger(__name__)

# Waits for a rate-limit slot up to this long inside the worker; longer waits reschedule the item.
MAX_INLINE_WAIT_SECONDS = 5.0


def default_temperature(item: BatchItem) -> float:
    if item.temperature is not None:
        return item.temperature
    return 0.65 if item.training_topic.complexity == "beginner" else 0.70


def item_prompt(item: BatchItem):
    """The generation prompt of an item; deterministic per item (target turns seeded by its id), so the
    Message Batches poller rebuilds exactly what was submitted."""
    return generation_prompt_build(
        persona=item.persona,
        arc=item.emotional_arc,
        topic=item.training_topic,
        tier=item.tier,
        template_version=item.template_version,
        rng=random.Random(str(item.pk)),
    )


def item_params(item: BatchItem, prompt) -> dict[str, Any]:
    """The Messages API parameters of an item (live and Message Batches send the same)."""
    return message_params(
        model=item.batch.model,
        shared_prefix=prompt.shared_prefix,
        rendered_template=prompt.rendered_template,
        user_message=prompt.user_message,
        max_tokens=item.batch.max_tokens,
        temperature=default_temperature(item),
        output_schema=CONVERSATION_SCHEMA,
    )


# --- dispatch ---------------------------------------------------------------------------


def generation_dispatch(*, batch_id: Any = None) -> list[str]:
    """Enqueue item tasks to fill each running live batch up to its concurrency; returns their ids in order.

    Batches are served by priority (high first), then age; items by position. An item is
    marked dispatched with a conditional update, so concurrent dispatchers never enqueue it twice.
    """
    from conversations import tasks

    now = timezone.now()
    running = GenerationBatch.objects.filter(status=GenerationBatch.Status.RUNNING, mode=GenerationBatch.Mode.LIVE)
    if batch_id is not None:
        running = running.filter(pk=batch_id)
    enqueued: list[str] = []
    for batch in running.order_by("-priority_rank", "created_at"):
        busy = batch.items.filter(
            Q(status=BatchItem.Status.RUNNING) | Q(status=BatchItem.Status.QUEUED, dispatched_at__isnull=False)
        ).count()
        free = batch.concurrency - busy
        if free <= 0:
            continue
        candidates = list(
            batch.items.filter(status=BatchItem.Status.QUEUED, dispatched_at__isnull=True)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
            .order_by("position")
            .values_list("pk", flat=True)[:free]
        )
        for pk in candidates:
            if BatchItem.objects.filter(pk=pk, status=BatchItem.Status.QUEUED, dispatched_at__isnull=True).update(
                dispatched_at=now
            ):
                enqueued.append(str(pk))
    for pk in enqueued:
        transaction.on_commit(lambda pk=pk: tasks.generation_item_run_task.delay(pk))
    return enqueued


# --- claiming -----------------------------------------------------------------------------


def _claim(item_id: Any) -> BatchItem | None:
    """queued → running if the batch runs and has a free slot; None if not claimable now."""
    item = (
        BatchItem.objects.filter(pk=item_id, status=BatchItem.Status.QUEUED)
        .select_related("persona", "emotional_arc", "training_topic", "template_version__template")
        .first()
    )
    if item is None:
        return None
    with transaction.atomic():
        batch = GenerationBatch.objects.select_for_update().get(pk=item.batch_id)
        if (
            batch.status != GenerationBatch.Status.RUNNING
            or batch.items.filter(status=BatchItem.Status.RUNNING).count() >= batch.concurrency
        ):
            BatchItem.objects.filter(pk=item.pk, status=BatchItem.Status.QUEUED).update(dispatched_at=None)
            return None
        now = timezone.now()
        fields = {
            "status": BatchItem.Status.RUNNING,
            "started_at": now,
            "heartbeat_at": now,
            "attempts": item.attempts + 1,
            "error_code": "",
            "error_message": "",
            "updated_at": now,
        }
        if not BatchItem.objects.filter(pk=item.pk, status=BatchItem.Status.QUEUED).update(**fields):
            return None
    for name, value in fields.items():
        setattr(item, name, value)
    item.batch = batch
    return item


def _requeue(item: BatchItem, *, delay: float = 0.0, count_attempt: bool = True, reason: str = "") -> None:
    """running → queued (to be dispatched again), optionally not before ``delay`` seconds."""
    now = timezone.now()
    BatchItem.objects.filter(pk=item.pk, status=BatchItem.Status.RUNNING).update(
        status=BatchItem.Status.QUEUED,
        dispatched_at=None,
        not_before=now + timedelta(seconds=delay) if delay else None,
        attempts=item.attempts if count_attempt else max(0, item.attempts - 1),
        error_message=reason[:2000],
        heartbeat_at=None,
        updated_at=now,
    )


class _Heartbeat:
    """Keeps ``heartbeat_at`` fresh from a background thread while a long call runs."""

    def __init__(self, item_id: Any):
        self.item_id = item_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.wait(settings.GENERATION_HEARTBEAT_INTERVAL_SECONDS):
                BatchItem.objects.filter(pk=self.item_id, status=BatchItem.Status.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
        finally:
            connection.close()

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


# --- running an item ----------------------------------------------------------------------


def generation_item_run(*, item_id: Any) -> str:
    """Process one item end to end, then keep the slot busy with the batch's next items.

    Safe to call twice: only the call that claims an item works on it. After an item, the
    same task takes the batch's next waiting item itself (up to ``GENERATION_LANE_ITEMS``)
    instead of a round trip through the broker, unless a higher-priority batch is waiting.
    Returns what happened to the first item: "skipped", "rescheduled", "paused",
    "succeeded" or "failed".
    """
    first = None
    for _ in range(settings.GENERATION_LANE_ITEMS):
        item = _claim(item_id)
        if item is None:
            break
        outcome = _run_claimed(item)
        first = first or outcome
        item_id = _after(item)
        if item_id is None:
            break
    return first or "skipped"


def _run_claimed(item: BatchItem) -> str:
    batch = item.batch
    wait = rate_limit_acquire(model=batch.model)
    if wait > MAX_INLINE_WAIT_SECONDS:
        _requeue(item, delay=wait, count_attempt=False, reason=f"waiting {wait:.0f} s for the rate limit")
        return "rescheduled"
    if wait:
        time.sleep(wait)
        if (wait := rate_limit_acquire(model=batch.model)) > 0:
            _requeue(item, delay=wait, count_attempt=False, reason="waiting for the rate limit")
            return "rescheduled"
    try:
        prompt = item_prompt(item)
    except ApplicationError as exc:
        _fail(item, code=exc.code, message=exc.message)
        return "failed"
    params = item_params(item, prompt)
    try:
        with _Heartbeat(item.pk):
            response = messages_create(params)
    except ClaudeCallError as err:
        return _handle_call_error(item, prompt, params, err)
    except ApplicationError as exc:  # no API key
        generation_batch_pause_for(item, exc.message)
        return "paused"
    rate_limit_record_output(model=batch.model, output_tokens=response.usage.get("output_tokens", 0))
    return accept_response(
        item=item,
        prompt=prompt,
        params=params,
        body=response.body,
        raw_text=response.raw_text,
        duration_ms=response.duration_ms,
    )


def _handle_call_error(item: BatchItem, prompt, params: dict, err: ClaudeCallError) -> str:
    records.generation_log_write(
        item=item,
        prompt=prompt,
        params=params,
        status=err.log_status,
        error_code=err.kind,
        error_message=err.message,
        attempt=item.attempts,
    )
    if err.kind in ClaudeCallError.PAUSES_BATCH:
        generation_batch_pause_for(item, err.message)
        return "paused"
    if err.kind == "rate_limited":
        _requeue(item, delay=err.retry_after or 30.0, count_attempt=False, reason=err.message)
        return "rescheduled"
    if err.kind in ClaudeCallError.RETRYABLE and item.attempts < settings.GENERATION_MAX_ATTEMPTS:
        _requeue(item, delay=err.retry_after or min(300.0, 15.0 * 2**item.attempts), reason=err.message)
        return "rescheduled"
    records.failed_generation_write(
        item=item,
        prompt=prompt,
        failure_type="api_error",
        message=err.message,
        details={"kind": err.kind, "status": err.status},
    )
    _fail(item, code=err.kind, message=err.message)
    return "failed"


def generation_batch_pause_for(item: BatchItem, message: str) -> None:
    """Put the item back and pause its batch with ``message`` (auth and spend-limit errors)."""
    _requeue(item, count_attempt=False, reason=message)
    batch = GenerationBatch.objects.get(pk=item.batch_id)
    if batch.status == GenerationBatch.Status.RUNNING:
        batches.generation_batch_pause(batch=batch, reason=message)


def accept_response(
    *, item: BatchItem, prompt, params: dict, body: dict, raw_text: str, duration_ms: int, batch_api: bool = False
) -> str:
    """Store the raw body, check it (SPEC §4.3) and store the conversation or the failure.

    Returns "succeeded", "failed" or "skipped" (the item was already finished by another path).
    """
    log_row = records.generation_log_write(
        item=item,
        prompt=prompt,
        params=params,
        status="success",
        body=body,
        raw_text=raw_text,
        duration_ms=duration_ms,
        attempt=item.attempts,
        batch_api=batch_api,
    )
    result = check_response(
        body, max_tokens=params["max_tokens"], persona_display_name=f"{item.persona.name} - {item.persona.archetype}"
    )
    if not result.ok:
        with transaction.atomic():
            if not _finish(item, BatchItem.Status.FAILED, code=result.failure_type, message=result.message):
                return "skipped"
            records.failed_generation_from_result(
                item=item, prompt=prompt, log_row=log_row, result=result, max_tokens=params["max_tokens"]
            )
        _stop_policy(item)
        return "failed"
    with transaction.atomic():
        if not _finish(item, BatchItem.Status.SUCCEEDED):
            return "skipped"
        conversation = records.conversation_create(
            item=item, prompt=prompt, params=params, log_row=log_row, data=result.conversation
        )
        BatchItem.objects.filter(pk=item.pk).update(conversation=conversation)
        log_row.conversation = conversation
        log_row.save(update_fields=["conversation"])
        _enrich_after_commit(conversation)
    return "succeeded"


def _enrich_after_commit(conversation) -> None:
    """Accepted conversations go through the enrichment chain (validation, scores, v4 JSON)."""
    from conversations.services.enrichment import conversation_enrich_enqueue

    conversation_enrich_enqueue(conversation=conversation)


def _finish(item: BatchItem, status: str, *, code: str = "", message: str = "") -> bool:
    """running → ``status``; False if the item was no longer running (already finished)."""
    now = timezone.now()
    return bool(
        BatchItem.objects.filter(pk=item.pk, status=BatchItem.Status.RUNNING).update(
            status=status,
            finished_at=now,
            heartbeat_at=now,
            error_code=code or "",
            error_message=message[:2000],
            updated_at=now,
        )
    )


def _fail(item: BatchItem, *, code: str, message: str) -> None:
    if _finish(item, BatchItem.Status.FAILED, code=code, message=message):
        _stop_policy(item)


def _stop_policy(item: BatchItem) -> None:
    """With the ``stop`` policy, the first failure cancels the batch's remaining queued items."""
    batch = GenerationBatch.objects.get(pk=item.batch_id)
    if batch.error_policy != GenerationBatch.ErrorPolicy.STOP:
        return
    now = timezone.now()
    batch.items.filter(status=BatchItem.Status.QUEUED).update(
        status=BatchItem.Status.CANCELLED, finished_at=now, error_code="stopped_after_failure", updated_at=now
    )


def _after(item: BatchItem) -> Any:
    """Take the batch's next item for this lane; when the lane ends, finish the batch's
    bookkeeping (completion, cost, notification) and hand free slots out.

    Returns the id of the item this lane continues with, or None.
    """
    batch = GenerationBatch.objects.get(pk=item.batch_id)
    next_id = None
    if batch.status == GenerationBatch.Status.RUNNING and not _higher_priority_waiting(batch):
        now = timezone.now()
        for pk in _waiting(batch.items.all(), now).values_list("pk", flat=True)[:3]:
            if BatchItem.objects.filter(pk=pk, status=BatchItem.Status.QUEUED, dispatched_at__isnull=True).update(
                dispatched_at=now
            ):
                next_id = pk
                break
    if next_id is not None:
        batches.generation_batch_recount(batch_id=batch.pk)  # progress stays live
        return next_id
    batches.generation_batch_refresh(batch=batch)
    with transaction.atomic():
        generation_dispatch(batch_id=batch.pk)
    return None


def _waiting(items, now):
    return (
        items.filter(status=BatchItem.Status.QUEUED, dispatched_at__isnull=True)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .order_by("position")
    )


def _higher_priority_waiting(batch: GenerationBatch) -> bool:
    return _waiting(
        BatchItem.objects.filter(
            batch__status=GenerationBatch.Status.RUNNING,
            batch__mode=GenerationBatch.Mode.LIVE,
            batch__priority_rank__gt=batch.priority_rank,
        ),
        timezone.now(),
    ).exists()


# --- the reaper ---------------------------------------------------------------------------


def generation_reap(*, now=None) -> dict[str, int]:
    """Requeue or fail items whose worker stopped heartbeating; re-dispatch lost messages.

    Called every minute by beat. Items waiting in a Message Batch are the poller's, not ours.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.GENERATION_HEARTBEAT_TIMEOUT_SECONDS)
    requeued = failed = 0
    stuck = BatchItem.objects.filter(status=BatchItem.Status.RUNNING, submission__isnull=True).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale)
    )
    for item in stuck:
        if item.attempts >= settings.GENERATION_MAX_ATTEMPTS:
            if _finish(
                item,
                BatchItem.Status.FAILED,
                code="worker_lost",
                message=f"No heartbeat after {item.attempts} attempts; the worker was lost.",
            ):
                failed += 1
                _stop_policy(item)
        elif BatchItem.objects.filter(
            pk=item.pk, status=BatchItem.Status.RUNNING, heartbeat_at=item.heartbeat_at
        ).update(
            status=BatchItem.Status.QUEUED,
            dispatched_at=None,
            heartbeat_at=None,
            error_message="requeued: the worker stopped heartbeating",
            updated_at=now,
        ):
            requeued += 1
    lost = BatchItem.objects.filter(
        status=BatchItem.Status.QUEUED,
        dispatched_at__lt=now - timedelta(seconds=settings.GENERATION_DISPATCH_TIMEOUT_SECONDS),
    ).update(dispatched_at=None)
    finishing = GenerationBatch.objects.filter(
        Q(status=GenerationBatch.Status.RUNNING)
        | Q(status=GenerationBatch.Status.CANCELLED, items__status=BatchItem.Status.RUNNING)
    ).distinct()
    for batch in finishing:
        batches.generation_batch_refresh(batch=batch)
    with transaction.atomic():
        dispatched = len(generation_dispatch())
    return {"requeued": requeued, "failed": failed, "redispatched": lost, "dispatched": dispatched}
