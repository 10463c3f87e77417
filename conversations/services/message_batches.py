"""Message Batches mode: submit a batch's items to Anthropic's Message Batches API (50% price)
and collect the results with a periodic poller, completing each item exactly once."""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from brightrun.errors import ApplicationError
from conversations.models import BatchItem, GenerationBatch, MessageBatchSubmission
from conversations.services import batches
from conversations.services.claude import ClaudeCallError, classify, claude_client
from conversations.services.generation import accept_response, item_params, item_prompt
from conversations.services.records import failed_generation_write, generation_log_write

MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024


def _chunks(requests: list[dict[str, Any]]):
    chunk, size = [], 0
    for request in requests:
        length = len(json.dumps(request))
        if chunk and (len(chunk) >= MAX_REQUESTS or size + length > MAX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(request)
        size += length
    if chunk:
        yield chunk


def generation_batch_submit(*, batch: GenerationBatch) -> int:
    """Submit every queued item of a running Message Batches batch; returns how many were submitted.

    Items are moved to ``running`` with their submission in the same transaction as the
    submission row, right after Anthropic accepted the batch.
    """
    if batch.status != GenerationBatch.Status.RUNNING or batch.mode != GenerationBatch.Mode.MESSAGE_BATCHES:
        return 0
    items = list(
        batch.items.filter(status=BatchItem.Status.QUEUED, submission__isnull=True).select_related(
            "batch", "persona", "emotional_arc", "training_topic", "template_version__template"
        )
    )
    requests = []
    for item in items:
        try:
            prompt = item_prompt(item)
            if item.template_version_id is None:  # pin the version, so the poller rebuilds the same prompt
                BatchItem.objects.filter(pk=item.pk).update(template_version=prompt.template_version)
            requests.append({"custom_id": str(item.pk), "params": item_params(item, prompt)})
        except ApplicationError as exc:
            now = timezone.now()
            BatchItem.objects.filter(pk=item.pk, status=BatchItem.Status.QUEUED).update(
                status=BatchItem.Status.FAILED, error_code=exc.code, error_message=exc.message, finished_at=now
            )
    submitted = 0
    for chunk in _chunks(requests):
        try:
            created = claude_client().messages.batches.create(requests=chunk)
        except ClaudeCallError as err:
            return _submit_failed(batch, items, err, submitted)
        except ApplicationError as exc:
            generation_batch_pause_for_batch(batch, exc.message)
            return submitted
        except Exception as exc:  # noqa: BLE001 - classified below
            err = classify(exc)
            return _submit_failed(batch, items, err, submitted)
        ids = [r["custom_id"] for r in chunk]
        with transaction.atomic():
            submission = MessageBatchSubmission.objects.create(
                owner_id=batch.owner_id, batch=batch, external_id=created.id, request_count=len(chunk)
            )
            now = timezone.now()
            BatchItem.objects.filter(pk__in=ids, status=BatchItem.Status.QUEUED).update(
                status=BatchItem.Status.RUNNING, submission=submission, started_at=now, attempts=1, updated_at=now
            )
        submitted += len(chunk)
    batches.generation_batch_refresh(batch=batch)
    return submitted


def generation_batch_pause_for_batch(batch: GenerationBatch, message: str) -> None:
    batch.refresh_from_db()
    if batch.status == GenerationBatch.Status.RUNNING:
        batches.generation_batch_pause(batch=batch, reason=message)


def _submit_failed(batch: GenerationBatch, items: list[BatchItem], err: ClaudeCallError, submitted: int) -> int:
    if err.kind in ClaudeCallError.PAUSES_BATCH or err.kind in ClaudeCallError.RETRYABLE:
        generation_batch_pause_for_batch(batch, f"Submitting to Message Batches failed: {err.message}")
    else:
        now = timezone.now()
        batch.items.filter(status=BatchItem.Status.QUEUED).update(
            status=BatchItem.Status.FAILED, error_code=err.kind, error_message=err.message[:2000], finished_at=now
        )
        batches.generation_batch_refresh(batch=batch)
    return submitted


def message_batches_poll(*, now=None) -> dict[str, int]:
    """Collect ended Message Batches (beat, every minute). Each result completes its item once."""
    now = now or timezone.now()
    done = pending = 0
    client = None
    for submission in MessageBatchSubmission.objects.filter(status=MessageBatchSubmission.Status.IN_PROGRESS):
        client = client or claude_client()
        try:
            remote = client.messages.batches.retrieve(submission.external_id)
        except Exception as exc:  # noqa: BLE001 - try again next minute
            MessageBatchSubmission.objects.filter(pk=submission.pk).update(last_polled_at=now)
            pending += 1
            classify(exc)
            continue
        MessageBatchSubmission.objects.filter(pk=submission.pk).update(last_polled_at=now)
        if remote.processing_status != "ended":
            pending += 1
            continue
        for result in client.messages.batches.results(submission.external_id):
            _apply_result(submission, result)
        MessageBatchSubmission.objects.filter(pk=submission.pk).update(
            status=MessageBatchSubmission.Status.ENDED, ended_at=now
        )
        # Items the results did not mention (should not happen) are failed, never left running.
        leftover = BatchItem.objects.filter(submission=submission, status=BatchItem.Status.RUNNING)
        leftover.update(
            status=BatchItem.Status.FAILED,
            error_code="missing_result",
            error_message="The Message Batch ended without a result for this item.",
            finished_at=now,
        )
        batches.generation_batch_refresh(batch=submission.batch)
        done += 1
    return {"ended": done, "pending": pending}


def _apply_result(submission: MessageBatchSubmission, result) -> None:
    item = (
        BatchItem.objects.filter(pk=result.custom_id, submission=submission)
        .select_related("batch", "persona", "emotional_arc", "training_topic", "template_version__template", "owner")
        .first()
    )
    if item is None or item.status != BatchItem.Status.RUNNING:
        return  # already applied
    prompt = item_prompt(item)
    params = item_params(item, prompt)
    kind = result.result.type
    if kind == "succeeded":
        body = result.result.message.model_dump(mode="json")
        accept_response(
            item=item, prompt=prompt, params=params, body=body, raw_text=json.dumps(body), duration_ms=0, batch_api=True
        )
        return
    if kind == "errored":
        error = result.result.error.model_dump(mode="json")
        message = json.dumps(error.get("error", error))
    else:
        message = f"The request was {kind} by the Message Batches API."
    generation_log_write(
        item=item, prompt=prompt, params=params, status="failed", error_code=kind, error_message=message, batch_api=True
    )
    with transaction.atomic():
        now = timezone.now()
        if BatchItem.objects.filter(pk=item.pk, status=BatchItem.Status.RUNNING).update(
            status=BatchItem.Status.FAILED, error_code=kind, error_message=message[:2000], finished_at=now
        ):
            failed_generation_write(
                item=item, prompt=prompt, failure_type="api_error", message=message, details={"result_type": kind}
            )
