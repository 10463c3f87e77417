"""Celery tasks of the conversations app: thin adapters over services, safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings

from conversations.models import GenerationBatch
from conversations.services import generation, message_batches, records


@shared_task(
    name="conversations.tasks.generation_item_run_task",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=1800,
    time_limit=1900,
)
def generation_item_run_task(item_id: str) -> str:
    """Process one batch item (generation queue). Claimed conditionally: a second delivery is a no-op."""
    return generation.generation_item_run(item_id=item_id)


@shared_task(name="conversations.tasks.generation_dispatch_task", ignore_result=True)
def generation_dispatch_task(batch_id: str | None = None) -> int:
    """Fill free slots of running batches (of one batch when given) with item tasks."""
    return len(generation.generation_dispatch(batch_id=batch_id))


@shared_task(name="conversations.tasks.generation_batch_submit_task", acks_late=True, ignore_result=True)
def generation_batch_submit_task(batch_id: str) -> int:
    """Submit a Message Batches batch's queued items (items already submitted are skipped)."""
    batch = GenerationBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        return 0
    return message_batches.generation_batch_submit(batch=batch)


@shared_task(name="conversations.tasks.generation_reaper_task", ignore_result=True)
def generation_reaper_task() -> dict:
    """Requeue or fail items whose worker stopped heartbeating (beat, every minute)."""
    return generation.generation_reap()


@shared_task(name="conversations.tasks.message_batches_poll_task", ignore_result=True)
def message_batches_poll_task() -> dict:
    """Collect ended Message Batches (beat, every minute)."""
    return message_batches.message_batches_poll()


@shared_task(name="conversations.tasks.generation_log_cleanup_task", ignore_result=True)
def generation_log_cleanup_task() -> int:
    """Delete generation logs past the retention period (beat, daily)."""
    return records.generation_log_cleanup()


@shared_task(name="conversations.tasks.conversation_enrich_task", acks_late=True, ignore_result=True)
def conversation_enrich_task(conversation_id: str) -> str | None:
    """Run the enrichment chain of one conversation. Re-runnable; a missing row is a no-op."""
    from conversations.models import Conversation
    from conversations.services.enrichment import conversation_enrich

    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return None
    return conversation_enrich(conversation=conversation).enrichment_status


@shared_task(
    name="conversations.tasks.conversation_regenerate_task",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=1800,
    time_limit=1900,
)
def conversation_regenerate_task(conversation_id: str, actor_id: int | None, from_turn: int) -> str:
    """Regenerate a conversation from one turn to the arc's end (generation queue)."""
    from conversations.services.regenerate import conversation_regenerate

    return conversation_regenerate(conversation_id=conversation_id, actor_id=actor_id, from_turn=from_turn)


@worker_process_init.connect
def _warm_up(**_: object) -> None:
    """Open the database connection and build the Claude client once per worker process, so a
    batch's first items do not pay for them (both are reused by every later task)."""
    from django.db import connection

    from conversations.services.claude import claude_client

    try:
        connection.ensure_connection()
        if settings.ANTHROPIC_API_KEY:
            claude_client()
    except Exception:  # warm-up is an optimisation; the task itself reports real errors
        logging.getLogger(__name__).warning("worker warm-up failed", exc_info=True)
