"""What generation writes: call logs (raw body first), failures, conversations; log statistics."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from brightrun.storage import file_storage, owned_key
from conversations.models import (
    BatchItem,
    Conversation,
    FailedGeneration,
    GenerationLog,
    Persona,
    Turn,
)
from conversations.services.acceptance import remaining_tokens_analysis
from conversations.services.claude import cost_usd, usage_of


def _request_summary(params: dict[str, Any], prompt) -> dict[str, Any]:
    return {
        "model": params.get("model"),
        "max_tokens": params.get("max_tokens"),
        "temperature": params.get("temperature"),
        "system_chars": sum(len(b.get("text", "")) for b in params.get("system", [])),
        "user_message_chars": len(params["messages"][0]["content"]) if params.get("messages") else 0,
        "template_version": getattr(getattr(prompt, "template_version", None), "pk", None),
        "target_turns": getattr(prompt, "target_turns", None),
        "structured_output": "output_config" in params,
        "cached_prefix": any("cache_control" in b for b in params.get("system", [])),
    }


def raw_response_store(*, owner_id: Any, name: str, raw_text: str) -> str:
    """Store a raw Claude response body under the owner's prefix; returns the key."""
    key = owned_key(owner_id, "generation", "raw", f"{name}.json")
    return file_storage().save(key, ContentFile(raw_text.encode("utf-8")))


def call_log_write(
    *,
    owner_id: Any,
    model: str,
    purpose: str,
    request_summary: dict[str, Any],
    status: str,
    body: dict | None = None,
    raw_text: str = "",
    duration_ms: int = 0,
    error_code: str = "",
    error_message: str = "",
    attempt: int = 1,
    batch_api: bool = False,
    batch_id: Any = None,
    item: BatchItem | None = None,
    conversation: Any = None,
    template_version: Any = None,
) -> GenerationLog:
    """Write the log row of one Claude call (generation, regeneration or judging).

    A response body is stored in object storage before the row is written, so nothing is lost;
    tokens and cost come from the body's usage and the price table.
    """
    log_row = GenerationLog(
        owner_id=owner_id,
        batch_id=batch_id,
        item=item,
        conversation=conversation,
        template_version=template_version,
        purpose=purpose,
        model=model,
        is_batch_api=batch_api,
        request_summary=request_summary,
        status=status,
        error_code=error_code,
        error_message=error_message[:4000],
        attempt=attempt,
        duration_ms=duration_ms,
    )
    if raw_text:
        log_row.raw_response_key = raw_response_store(owner_id=owner_id, name=str(log_row.pk), raw_text=raw_text)
    if body is not None:
        usage = usage_of(body)
        log_row.stop_reason = str(body.get("stop_reason") or "")
        log_row.input_tokens = usage["input_tokens"]
        log_row.output_tokens = usage["output_tokens"]
        log_row.cache_read_tokens = usage["cache_read_tokens"]
        log_row.cache_write_tokens = usage["cache_write_tokens"]
        log_row.cost_usd = cost_usd(model=model, usage=usage, batch_api=batch_api)
    log_row.save()
    return log_row


def generation_log_write(
    *,
    item: BatchItem,
    prompt,
    params: dict[str, Any],
    status: str,
    body: dict | None = None,
    raw_text: str = "",
    duration_ms: int = 0,
    error_code: str = "",
    error_message: str = "",
    attempt: int = 1,
    batch_api: bool = False,
) -> GenerationLog:
    """The log row of one batch item's generation call."""
    return call_log_write(
        owner_id=item.owner_id,
        model=params.get("model", ""),
        purpose=GenerationLog.Purpose.GENERATION,
        request_summary=_request_summary(params, prompt),
        status=status,
        body=body,
        raw_text=raw_text,
        duration_ms=duration_ms,
        error_code=error_code,
        error_message=error_message,
        attempt=attempt,
        batch_api=batch_api,
        batch_id=item.batch_id,
        item=item,
        template_version=getattr(prompt, "template_version", None),
    )


def _scaffolding(item: BatchItem, prompt) -> dict[str, Any]:
    return {
        "persona": item.persona.key,
        "emotional_arc": item.emotional_arc.key,
        "training_topic": item.training_topic.key,
        "tier": item.tier,
        "template_version": getattr(getattr(prompt, "template_version", None), "pk", None),
        "target_turns": getattr(prompt, "target_turns", None),
    }


def failure_record(
    *,
    owner_id: Any,
    failure_type: str,
    message: str,
    model: str,
    scaffolding: dict[str, Any],
    details: dict | None = None,
    log_row: GenerationLog | None = None,
    max_tokens: int = 0,
    batch_id: Any = None,
    item: BatchItem | None = None,
) -> FailedGeneration:
    """A failed-generation row (with its token analysis) for a batch item or a regeneration."""
    usage = {"input_tokens": getattr(log_row, "input_tokens", 0), "output_tokens": getattr(log_row, "output_tokens", 0)}
    return FailedGeneration.objects.create(
        owner_id=owner_id,
        batch_id=batch_id,
        item=item,
        log=log_row,
        failure_type=failure_type,
        message=message[:4000],
        details=details or {},
        model=model,
        stop_reason=getattr(log_row, "stop_reason", ""),
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        max_tokens=max_tokens,
        remaining_tokens_analysis=remaining_tokens_analysis(usage=usage, max_tokens=max_tokens) if max_tokens else {},
        scaffolding=scaffolding,
        raw_response_key=getattr(log_row, "raw_response_key", ""),
    )


def failed_generation_write(
    *,
    item: BatchItem,
    prompt,
    failure_type: str,
    message: str,
    details: dict | None = None,
    log_row: GenerationLog | None = None,
    max_tokens: int = 0,
) -> FailedGeneration:
    return failure_record(
        owner_id=item.owner_id,
        failure_type=failure_type,
        message=message,
        model=item.batch.model,
        scaffolding=_scaffolding(item, prompt),
        details=details,
        log_row=log_row,
        max_tokens=max_tokens,
        batch_id=item.batch_id,
        item=item,
    )


def failed_generation_from_result(*, item: BatchItem, prompt, log_row: GenerationLog, result, max_tokens: int):
    report = result.to_dict()
    details = {key: report.get(key) for key in ("findings", "failure_types", "notes")}
    return failed_generation_write(
        item=item,
        prompt=prompt,
        failure_type=result.failure_type,
        message=result.message,
        details=details,
        log_row=log_row,
        max_tokens=max_tokens,
    )


def conversation_create(
    *, item: BatchItem, prompt, params: dict[str, Any], log_row: GenerationLog, data: dict[str, Any]
) -> Conversation:
    """Save an accepted conversation and its turns (caller holds the transaction)."""
    turns = data["turns"]
    meta = data.get("conversation_metadata") or {}
    conversation = Conversation.objects.create(
        owner_id=item.owner_id,
        title=f"{item.persona.name}: {item.training_topic.name} ({item.emotional_arc.name})"[:300],
        persona=item.persona,
        emotional_arc=item.emotional_arc,
        training_topic=item.training_topic,
        tier=item.tier,
        template_version=getattr(prompt, "template_version", None),
        generation_system_prompt=prompt.system_prompt,
        conversation_metadata={
            "client_persona": meta.get("client_persona", ""),
            "session_context": meta.get("session_context", ""),
            "conversation_phase": meta.get("conversation_phase", ""),
            "expected_outcome": meta.get("expected_outcome", ""),
        },
        model=params["model"],
        temperature=params["temperature"],
        input_tokens=log_row.input_tokens,
        output_tokens=log_row.output_tokens,
        cost_usd=log_row.cost_usd,
        turn_count=len(turns),
        exchange_count=sum(1 for t in turns if t["role"] == "assistant"),
    )
    Turn.objects.bulk_create(
        [
            Turn(
                owner_id=item.owner_id,
                conversation=conversation,
                index=i,
                role=t["role"],
                content=t["content"],
                primary_emotion=(t.get("emotional_context") or {}).get("primary_emotion", ""),
                secondary_emotion=(t.get("emotional_context") or {}).get("secondary_emotion") or "",
                intensity=(t.get("emotional_context") or {}).get("intensity"),
            )
            for i, t in enumerate(turns, start=1)
        ]
    )
    Persona.objects.filter(pk=item.persona_id).update(usage_count=F("usage_count") + 1)
    return conversation


def failure_report(failure: FailedGeneration) -> dict[str, Any]:
    """The downloadable error report of a failed generation."""
    return {
        "id": str(failure.pk),
        "created_at": failure.created_at.isoformat(),
        "failure_type": failure.failure_type,
        "message": failure.message,
        "details": failure.details,
        "model": failure.model,
        "stop_reason": failure.stop_reason,
        "tokens": {"input": failure.input_tokens, "output": failure.output_tokens, "max": failure.max_tokens},
        "remaining_tokens_analysis": failure.remaining_tokens_analysis,
        "scaffolding": failure.scaffolding,
        "batch": str(failure.batch_id) if failure.batch_id else None,
        "item": str(failure.item_id) if failure.item_id else None,
        "raw_response_stored": bool(failure.raw_response_key),
    }


def _percentile(sorted_values: list[int], p: float) -> float | None:
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo))


def generation_log_stats(*, user: AbstractBaseUser, start: datetime, end: datetime) -> dict[str, Any]:
    """Cost and tokens by model and by status, success rate, latency percentiles, per template version."""
    rows = list(
        GenerationLog.objects.for_user(user)
        .filter(created_at__gte=start, created_at__lt=end)
        .values_list(
            "model",
            "status",
            "cost_usd",
            "input_tokens",
            "output_tokens",
            "duration_ms",
            "template_version_id",
            "cache_read_tokens",
            "cache_write_tokens",
        )
    )

    def bucket() -> dict[str, Any]:
        return {"calls": 0, "cost_usd": Decimal("0"), "input_tokens": 0, "output_tokens": 0}

    by_model: dict[str, dict] = defaultdict(bucket)
    by_status: dict[str, dict] = defaultdict(bucket)
    by_version: dict[str, dict] = defaultdict(bucket)
    durations = []
    cache = {"read_tokens": 0, "write_tokens": 0}
    for model, status, cost, tin, tout, ms, version, cread, cwrite in rows:
        for group in (by_model[model], by_status[status], by_version[str(version) if version else "none"]):
            group["calls"] += 1
            group["cost_usd"] += cost
            group["input_tokens"] += tin
            group["output_tokens"] += tout
        if status == GenerationLog.Status.SUCCESS:
            durations.append(ms)
        cache["read_tokens"] += cread
        cache["write_tokens"] += cwrite
    durations.sort()
    total = len(rows)
    successes = by_status[GenerationLog.Status.SUCCESS]["calls"] if total else 0

    def plain(groups: dict) -> dict:
        return {k: {**v, "cost_usd": str(v["cost_usd"])} for k, v in groups.items()}

    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "calls": total,
        "success_rate": round(successes / total, 4) if total else None,
        "cost_usd": str(sum((r[2] for r in rows), Decimal("0"))),
        "latency_ms": {
            "p50": _percentile(durations, 0.50),
            "p95": _percentile(durations, 0.95),
            "p99": _percentile(durations, 0.99),
        },
        "cache": cache,
        "by_model": plain(by_model),
        "by_status": plain(by_status),
        "by_template_version": plain(by_version),
    }


def generation_log_cleanup(*, now: datetime | None = None) -> int:
    """Delete logs past ``GENERATION_LOG_RETENTION_DAYS`` and their raw bodies (daily, unscoped).

    Raw bodies still referenced by a failed-generation report are kept.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.GENERATION_LOG_RETENTION_DAYS)
    old = GenerationLog.objects.filter(created_at__lt=cutoff)
    kept = set(FailedGeneration.objects.exclude(raw_response_key="").values_list("raw_response_key", flat=True))
    storage = file_storage()
    for key in old.exclude(raw_response_key="").values_list("raw_response_key", flat=True).iterator():
        if key not in kept and storage.exists(key):
            storage.delete(key)
    with transaction.atomic():
        deleted, _ = old.delete()
    return deleted


def json_dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)
