"""Regenerate a conversation from turn N (SPEC §6): keep turns 1..N−1, let Claude continue the arc.

The request (``conversation_regenerate_request``) validates and enqueues; the task runs
``conversation_regenerate``, which makes one Claude call with the generation prompt (same
cacheable vertical prefix, same template version, same output schema) plus the kept turns.

What the model returns: the **whole** conversation per ``CONVERSATION_SCHEMA`` — it is told to
reproduce turns 1..N−1 verbatim, then continue. Only its turns N.. are used: they are merged after
the kept turns as stored (with their edits), so turns 1..N−1 never change whatever the model
wrote, and the merged conversation goes through the same acceptance checks as a generation
(stop reason, schema, alternation, truncation, persona). A response with no turn past N−1 fails.

Every call writes a ``GenerationLog`` (purpose ``regeneration``, raw body stored first); a
failure writes a ``FailedGeneration`` (no batch, no item) and leaves the conversation untouched.

"In progress" is tracked without a model field: the request stores its time under a cache key,
and a regeneration counts as running until a regeneration log newer than that time exists (or
the key expires after the task's time limit, for a task that was lost). The key is removed when
the regeneration ends. Use a shared cache (Redis) in production so every web process sees it.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from brightrun.errors import ApplicationError
from conversations.models import Conversation, FailedGeneration, GenerationLog, ReviewAction, Turn
from conversations.services import records
from conversations.services.acceptance import CONVERSATION_SCHEMA, check_response
from conversations.services.claude import ClaudeCallError, message_params, messages_create
from conversations.services.ratelimit import rate_limit_acquire, rate_limit_record_output
from conversations.services.review import is_reviewer
from conversations.services.scaffolding import generation_prompt_build

#: How long a queued/running regeneration blocks another one at most (the task's hard time limit).
IN_PROGRESS_TTL_SECONDS = 1900
#: Longest rate-limit wait slept through inside the task.
MAX_RATE_LIMIT_WAIT_SECONDS = 60.0


def _lock_key(conversation_id: Any) -> str:
    return f"conversations:regenerate:{conversation_id}"


def regeneration_in_progress(conversation: Conversation) -> bool:
    """True while a requested regeneration of ``conversation`` has not written its log yet."""
    started = cache.get(_lock_key(conversation.pk))
    if started is None:
        return False
    return not GenerationLog.objects.filter(
        conversation_id=conversation.pk,
        purpose=GenerationLog.Purpose.REGENERATION,
        created_at__gte=datetime.fromtimestamp(started, tz=UTC),
    ).exists()


def _may_regenerate(actor: Any, conversation: Conversation) -> bool:
    return is_reviewer(actor) or bool(
        actor is not None and getattr(actor, "is_active", False) and actor.pk == conversation.owner_id
    )


def _check_from_turn(conversation: Conversation, from_turn: Any) -> int:
    if isinstance(from_turn, bool) or not isinstance(from_turn, int) or from_turn < 2:
        raise ApplicationError("from_turn must be an assistant turn number ≥ 2.", code="invalid_from_turn")
    role = conversation.turns.filter(index=from_turn).values_list("role", flat=True).first()
    if role != Turn.Role.ASSISTANT:
        raise ApplicationError(
            f"Turn {from_turn} is not an assistant turn of this conversation.", code="invalid_from_turn"
        )
    return from_turn


def conversation_regenerate_request(*, conversation: Conversation, actor: Any, from_turn: int) -> None:
    """Validate and enqueue a regeneration of ``conversation`` from turn ``from_turn``.

    The owner or a reviewer may ask (``not_a_reviewer`` otherwise); ``from_turn`` must be an
    assistant turn ≥ 2 (``invalid_from_turn``); archived conversations are final
    (``invalid_transition``); one regeneration at a time (``regeneration_in_progress``).
    The task is enqueued after the surrounding transaction commits.
    """
    if not _may_regenerate(actor, conversation):
        raise ApplicationError("Only the owner or a reviewer may regenerate.", code="not_a_reviewer", status_code=403)
    if conversation.status == Conversation.Status.ARCHIVED:
        raise ApplicationError("An archived conversation cannot be regenerated.", code="invalid_transition")
    _check_from_turn(conversation, from_turn)
    key = _lock_key(conversation.pk)
    now = time.time()
    if not cache.add(key, now, IN_PROGRESS_TTL_SECONDS):
        if regeneration_in_progress(conversation):
            raise ApplicationError(
                "A regeneration of this conversation is already running.", code="regeneration_in_progress"
            )
        cache.set(key, now, IN_PROGRESS_TTL_SECONDS)
    from conversations.tasks import conversation_regenerate_task

    conversation_id, actor_id = str(conversation.pk), getattr(actor, "pk", None)
    transaction.on_commit(lambda: conversation_regenerate_task.delay(conversation_id, actor_id, from_turn))


def _turn_json(turn: Turn) -> dict[str, Any]:
    emotion: dict[str, Any] = {"primary_emotion": turn.primary_emotion or "neutral", "intensity": turn.intensity or 0.5}
    if turn.secondary_emotion:
        emotion["secondary_emotion"] = turn.secondary_emotion
    return {"turn_number": turn.index, "role": turn.role, "content": turn.content, "emotional_context": emotion}


def _user_message(conversation: Conversation, kept: list[Turn], exchanges: int, from_turn: int) -> str:
    arc = conversation.emotional_arc
    return (
        f"Continue an existing conversation between {conversation.persona.name} ({conversation.persona.archetype}) "
        f'and the consultant about "{conversation.training_topic.name}", following the {arc.name} arc '
        f"({arc.starting_emotion} → {arc.ending_emotion}) to its end. The whole conversation must have exactly "
        f'{exchanges} exchanges ({exchanges * 2} turns), start with the client (role "user") and end with the '
        f'consultant (role "assistant"). Return the whole conversation: reproduce turns 1 to {from_turn - 1} '
        f"below verbatim, then write turns {from_turn} to {exchanges * 2}.\n\nThe conversation so far:\n"
        + json.dumps(
            {"conversation_metadata": conversation.conversation_metadata, "turns": [_turn_json(t) for t in kept]},
            ensure_ascii=False,
            indent=1,
        )
    )


def _target_exchanges(conversation: Conversation, from_turn: int) -> int:
    arc = conversation.emotional_arc
    wanted = conversation.exchange_count or arc.typical_turns_max
    wanted = min(max(wanted, arc.typical_turns_min), arc.typical_turns_max)
    return max(wanted, from_turn // 2)


def _log_write(
    *,
    conversation: Conversation,
    prompt: Any,
    params: dict[str, Any],
    from_turn: int,
    status: str,
    body: dict | None = None,
    raw_text: str = "",
    duration_ms: int = 0,
    error_code: str = "",
    error_message: str = "",
) -> GenerationLog:
    """One regeneration call's log row (raw body stored first)."""
    summary = {
        "model": params.get("model"),
        "max_tokens": params.get("max_tokens"),
        "temperature": params.get("temperature"),
        "from_turn": from_turn,
        "cached_prefix": True,
        "structured_output": True,
    }
    return records.call_log_write(
        owner_id=conversation.owner_id,
        model=params.get("model", ""),
        purpose=GenerationLog.Purpose.REGENERATION,
        request_summary=summary,
        status=status,
        body=body,
        raw_text=raw_text,
        duration_ms=duration_ms,
        error_code=error_code,
        error_message=error_message,
        conversation=conversation,
        template_version=getattr(prompt, "template_version", None),
    )


def _failure_write(
    *,
    conversation: Conversation,
    from_turn: int,
    failure_type: str,
    message: str,
    details: dict | None = None,
    log_row: GenerationLog | None = None,
    max_tokens: int = 0,
) -> FailedGeneration:
    """A failed-generation row for a regeneration (no batch or item)."""
    return records.failure_record(
        owner_id=conversation.owner_id,
        failure_type=failure_type,
        message=message,
        model=conversation.model,
        scaffolding={
            "persona": conversation.persona.key,
            "emotional_arc": conversation.emotional_arc.key,
            "training_topic": conversation.training_topic.key,
            "tier": conversation.tier,
            "template_version": conversation.template_version_id,
        },
        details={**(details or {}), "regeneration": {"conversation": str(conversation.pk), "from_turn": from_turn}},
        log_row=log_row,
        max_tokens=max_tokens,
    )


def _merged_body(body: dict[str, Any], kept: list[Turn], from_turn: int) -> tuple[dict[str, Any], int]:
    """The response body with its conversation replaced by kept turns + the model's turns from ``from_turn``.

    Returns the body to check and how many new turns it carries. A body whose text is not a
    conversation object is returned as it is, so acceptance reports it (parse/schema error).
    """
    blocks = [b for b in body.get("content") or [] if isinstance(b, dict) and b.get("type") == "text"]
    try:
        data = json.loads("".join(str(b.get("text") or "") for b in blocks))
    except ValueError:
        return body, 0
    if not isinstance(data, dict) or not isinstance(data.get("turns"), list):
        return body, 0
    new = [
        t
        for t in data["turns"]
        if isinstance(t, dict) and isinstance(t.get("turn_number"), int) and t["turn_number"] >= from_turn
    ]
    new.sort(key=lambda t: t["turn_number"])
    turns = [_turn_json(t) for t in kept] + [{**t, "turn_number": from_turn + i} for i, t in enumerate(new)]
    merged = {**data, "turns": turns}
    text = json.dumps(merged, ensure_ascii=False)
    return {**body, "content": [{"type": "text", "text": text}]}, len(new)


def conversation_regenerate(*, conversation_id: Any, actor_id: Any, from_turn: int) -> str:
    """Regenerate ``conversation_id`` from turn ``from_turn`` (the task's body). Returns the outcome.

    "succeeded": turns ``from_turn``.. replaced in one transaction (turns before it untouched),
    status → pending_review with a ``regenerate`` review action, scores recomputed, enrichment
    re-run. "failed": nothing changed on the conversation, a failed generation written.
    "skipped": the conversation is gone, archived, or the actor may no longer act on it.
    Safe to run twice (each run is a fresh regeneration of the then-current turns).
    """
    try:
        return _regenerate(conversation_id=conversation_id, actor_id=actor_id, from_turn=from_turn)
    finally:
        cache.delete(_lock_key(conversation_id))


def _regenerate(*, conversation_id: Any, actor_id: Any, from_turn: int) -> str:
    conversation = (
        Conversation.objects.select_related("persona", "emotional_arc", "training_topic", "template_version__template")
        .filter(pk=conversation_id)
        .first()
    )
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id is not None else None
    if conversation is None or conversation.status == Conversation.Status.ARCHIVED:
        return "skipped"
    if actor is not None and not _may_regenerate(actor, conversation):
        return "skipped"
    try:
        _check_from_turn(conversation, from_turn)
    except ApplicationError:
        return "skipped"
    kept = list(conversation.turns.filter(index__lt=from_turn).order_by("index"))
    exchanges = _target_exchanges(conversation, from_turn)
    max_tokens = settings.GENERATION_MAX_TOKENS
    try:
        prompt = generation_prompt_build(
            persona=conversation.persona,
            arc=conversation.emotional_arc,
            topic=conversation.training_topic,
            tier=conversation.tier,
            template_version=conversation.template_version,
            target_turns=exchanges
            if conversation.emotional_arc.typical_turns_min <= exchanges <= conversation.emotional_arc.typical_turns_max
            else None,
        )
    except ApplicationError as exc:
        _failure_write(
            conversation=conversation,
            from_turn=from_turn,
            failure_type=FailedGeneration.FailureType.API_ERROR,
            message=exc.message,
            details={"code": exc.code},
        )
        return "failed"
    params = message_params(
        model=conversation.model,
        shared_prefix=prompt.shared_prefix,
        rendered_template=prompt.rendered_template,
        user_message=_user_message(conversation, kept, exchanges, from_turn),
        max_tokens=max_tokens,
        temperature=conversation.temperature,
        output_schema=CONVERSATION_SCHEMA,
    )
    wait = rate_limit_acquire(model=conversation.model)
    if wait:
        time.sleep(min(wait, MAX_RATE_LIMIT_WAIT_SECONDS))
    try:
        response = messages_create(params)
    except (ClaudeCallError, ApplicationError) as err:
        kind = getattr(err, "kind", None) or getattr(err, "code", "api_error")
        log_row = _log_write(
            conversation=conversation,
            prompt=prompt,
            params=params,
            from_turn=from_turn,
            status=getattr(err, "log_status", GenerationLog.Status.FAILED),
            error_code=kind,
            error_message=err.message,
        )
        _failure_write(
            conversation=conversation,
            from_turn=from_turn,
            failure_type=FailedGeneration.FailureType.API_ERROR,
            message=err.message,
            details={"kind": kind, "status": getattr(err, "status", None)},
            log_row=log_row,
        )
        return "failed"
    rate_limit_record_output(model=conversation.model, output_tokens=response.usage.get("output_tokens", 0))
    log_row = _log_write(
        conversation=conversation,
        prompt=prompt,
        params=params,
        from_turn=from_turn,
        status=GenerationLog.Status.SUCCESS,
        body=response.body,
        raw_text=response.raw_text,
        duration_ms=response.duration_ms,
    )
    merged, new_count = _merged_body(response.body, kept, from_turn)
    persona = f"{conversation.persona.name} - {conversation.persona.archetype}"
    result = check_response(merged, max_tokens=max_tokens, persona_display_name=persona)
    if result.ok and new_count == 0:
        message = f"The response has no turn from {from_turn} on; nothing to replace."
        _failure_write(
            conversation=conversation,
            from_turn=from_turn,
            failure_type=FailedGeneration.FailureType.SCHEMA_ERROR,
            message=message,
            log_row=log_row,
            max_tokens=max_tokens,
        )
        return "failed"
    if not result.ok:
        report = result.to_dict()
        _failure_write(
            conversation=conversation,
            from_turn=from_turn,
            failure_type=result.failure_type,
            message=result.message,
            details={key: report.get(key) for key in ("findings", "failure_types", "notes")},
            log_row=log_row,
            max_tokens=max_tokens,
        )
        return "failed"
    if not _apply(conversation, kept, result.conversation["turns"], from_turn, actor, log_row):
        _failure_write(
            conversation=conversation,
            from_turn=from_turn,
            failure_type=FailedGeneration.FailureType.SCHEMA_ERROR,
            message=f"Turns 1 to {from_turn - 1} changed while regenerating; nothing was replaced.",
            log_row=log_row,
            max_tokens=max_tokens,
        )
        return "failed"
    from conversations.services.enrichment import conversation_enrich_enqueue
    from conversations.services.quality import conversation_rescore

    conversation.refresh_from_db()
    conversation_rescore(conversation=conversation)
    conversation_enrich_enqueue(conversation=conversation)
    return "succeeded"


def _apply(
    conversation: Conversation,
    kept: list[Turn],
    turns: list[dict[str, Any]],
    from_turn: int,
    actor: Any,
    log_row: GenerationLog,
) -> bool:
    """Replace turns ``from_turn``.. in one transaction; False if the kept turns changed meanwhile."""
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        current = list(locked.turns.filter(index__lt=from_turn).order_by("index").values_list("index", "content"))
        if current != [(t.index, t.content) for t in kept] or locked.status == Conversation.Status.ARCHIVED:
            return False
        locked.turns.filter(index__gte=from_turn).delete()
        new = [t for t in turns if t["turn_number"] >= from_turn]
        Turn.objects.bulk_create(
            [
                Turn(
                    owner_id=locked.owner_id,
                    conversation=locked,
                    index=t["turn_number"],
                    role=t["role"],
                    content=t["content"],
                    primary_emotion=t["emotional_context"].get("primary_emotion", ""),
                    secondary_emotion=t["emotional_context"].get("secondary_emotion") or "",
                    intensity=t["emotional_context"].get("intensity"),
                )
                for t in new
            ]
        )
        all_turns = len(kept) + len(new)
        exchanges = sum(1 for t in kept if t.role == Turn.Role.ASSISTANT) + sum(
            1 for t in new if t["role"] == Turn.Role.ASSISTANT
        )
        from_status = locked.status
        now = timezone.now()
        Conversation.objects.filter(pk=locked.pk).update(
            status=Conversation.Status.PENDING_REVIEW,
            turn_count=all_turns,
            exchange_count=exchanges,
            input_tokens=F("input_tokens") + log_row.input_tokens,
            output_tokens=F("output_tokens") + log_row.output_tokens,
            cost_usd=F("cost_usd") + log_row.cost_usd,
            updated_at=now,
        )
        ReviewAction.objects.create(
            owner_id=locked.owner_id,
            conversation=locked,
            actor=actor,
            action=ReviewAction.Action.REGENERATE,
            from_status=from_status,
            to_status=Conversation.Status.PENDING_REVIEW,
            comment=f"regenerated from turn {from_turn}",
        )
    return True
