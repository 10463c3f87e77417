"""Quality: the deterministic structure score, the optional LLM judge, tiers and flags (SPEC §5.3).

Real scores only. ``quality_score`` is the reviewer's score, else the judge mean, else null; nothing here ever
fills a score in from a default, a constant or a random number. The judge's scores exist only when a judge
response was received and validated.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from django.conf import settings
from django.db import transaction
from jsonschema import Draft202012Validator

from brightrun.errors import ApplicationError
from conversations.models import Conversation, GenerationLog, Turn
from conversations.services import claude
from conversations.services.acceptance import truncation_findings
from conversations.services.validation import conversation_turns

# --- structure score ----------------------------------------------------------------------------

W_TURN_COUNT, W_LENGTH, W_STRUCTURE, W_CONSISTENCY = 0.30, 0.25, 0.30, 0.15
#: A turn shorter than this (and not empty) costs 0.5 structure points.
SHORT_TURN_CHARS = 10
#: The last turn is "substantive" when it is an assistant turn of at least this many characters.
SUBSTANTIVE_CHARS = 50
#: Openings are compared on this many leading words (lower case, punctuation dropped).
OPENING_WORDS = 3

_WORD = re.compile(r"[\w']+")


def _clamp(value: float) -> float:
    return max(0.0, min(10.0, value))


def _turn_count_component(exchanges: int, lo: int, hi: int) -> float:
    if lo <= exchanges <= hi:
        return 10.0
    if lo - 2 <= exchanges <= hi + 2:
        return 7.0
    return 3.0


def _length_component(assistant_lengths: list[int]) -> float:
    average = statistics.fmean(assistant_lengths) if assistant_lengths else 0.0
    if 100 <= average <= 600:
        return 10.0
    if 50 <= average <= 900:
        return 7.0
    return 3.0


def _structure_component(turns: Sequence[Turn]) -> float:
    score = 10.0
    if turns and turns[0].role != Turn.Role.USER:
        score -= 2
    for previous, turn in pairwise(turns):
        if turn.role == previous.role:
            score -= 1.5
    for turn in turns:
        length = len((turn.content or "").strip())
        if length == 0:
            score -= 2
        elif length < SHORT_TURN_CHARS:
            score -= 0.5
    return _clamp(score)


def _opening(content: str) -> str:
    return " ".join(_WORD.findall((content or "").lower())[:OPENING_WORDS])


def _consistency_component(turns: Sequence[Turn]) -> float:
    score = 7.0
    if turns:
        distinct = len({_opening(t.content) for t in turns}) / len(turns)
        if distinct > 0.9:
            score += 1.5
        elif distinct < 0.6:
            score -= 2
        lengths = [len(t.content or "") for t in turns]
        mean = statistics.fmean(lengths)
        if mean > 0:
            cv = statistics.pstdev(lengths) / mean
            if cv < 0.5:
                score += 1
            elif cv > 1.5:
                score -= 1
        last = turns[-1]
        if last.role == Turn.Role.ASSISTANT and len((last.content or "").strip()) >= SUBSTANTIVE_CHARS:
            score += 0.5
    return _clamp(score)


def structure_components(*, conversation: Conversation, turns: Sequence[Turn] | None = None) -> dict[str, float]:
    """The four components of the structure score (each 0–10), for reports and the admin."""
    turns = list(turns) if turns is not None else conversation_turns(conversation)
    arc = conversation.emotional_arc
    assistant = [t for t in turns if t.role == Turn.Role.ASSISTANT]
    return {
        "turn_count": _clamp(_turn_count_component(len(assistant), arc.typical_turns_min, arc.typical_turns_max)),
        "length": _clamp(_length_component([len(t.content or "") for t in assistant])),
        "structure": _structure_component(turns),
        "consistency": _consistency_component(turns),
    }


def structure_score(*, conversation: Conversation, turns: Sequence[Turn] | None = None) -> float:
    """The deterministic 0–10 structure score of SPEC §5.3, rounded to 2 decimals.

    0.30 × turn count (exchanges = assistant turns vs the arc's typical_turns_min..max: inside 10, within ±2
    7, else 3) + 0.25 × length (mean assistant turn length in characters: 100–600 10, 50–900 7, else 3) +
    0.30 × structure (10; −2 first turn not user, −1.5 per two same-role turns in a row, −2 per empty turn,
    −0.5 per non-empty turn under 10 characters) + 0.15 × consistency (7; +1.5 if > 90 % of turns open with
    distinct first three words, −2 if < 60 %; +1 if the coefficient of variation of turn lengths < 0.5, −1 if
    > 1.5; +0.5 if the last turn is an assistant turn of ≥ 50 characters). Each component is clamped to 0..10.
    Pure; reads the arc and, when ``turns`` is not given, the turns.
    """
    c = structure_components(conversation=conversation, turns=turns)
    total = (
        W_TURN_COUNT * c["turn_count"]
        + W_LENGTH * c["length"]
        + W_STRUCTURE * c["structure"]
        + W_CONSISTENCY * c["consistency"]
    )
    return round(total + 1e-9, 2)


# --- tiers, quality score, flags ----------------------------------------------------------------


def quality_tier_for(score: float | None) -> str:
    """The tier of a 1–5 quality score; ``unscored`` for None (never guessed)."""
    if score is None:
        return Conversation.QualityTier.UNSCORED
    if score >= 4.5:
        return Conversation.QualityTier.SEED_DATASET
    if score >= 3.5:
        return Conversation.QualityTier.PRODUCTION
    if score >= 2.5:
        return Conversation.QualityTier.EXPERIMENTAL
    return Conversation.QualityTier.REJECTED


LOW_STRUCTURE, LOW_JUDGE = 6.0, 2.5
FLAG_LOW_STRUCTURE = "low_structure"
FLAG_LOW_JUDGE = "low_judge"
FLAG_TRUNCATION = "truncation_suspected"
FLAG_NEAR_DUPLICATE = "near_duplicate_of_approved"


def _near_duplicate_of_approved(conversation: Conversation) -> bool:
    if conversation.duplicate_group_id is None:
        return False
    return (
        Conversation.objects.filter(
            owner_id=conversation.owner_id,
            duplicate_group_id=conversation.duplicate_group_id,
            status=Conversation.Status.APPROVED,
        )
        .exclude(pk=conversation.pk)
        .exists()
    )


def conversation_rescore(*, conversation: Conversation) -> Conversation:
    """Recompute the structure score, quality score, tier, flags and counts from the current turns; save them.

    ``quality_score`` = reviewer score if set, else judge mean, else None. Flags (codes in ``flag_reasons``):
    ``low_structure`` (< 6), ``low_judge`` (judge mean < 2.5), ``truncation_suspected``,
    ``near_duplicate_of_approved``. Called by enrichment, turn edits and reviews; idempotent; writes only the
    fields it computes (``update_fields``), so it is safe next to a concurrent review.
    """
    turns = conversation_turns(conversation)
    conversation.structure_score = structure_score(conversation=conversation, turns=turns)
    if conversation.reviewer_score is not None:
        conversation.quality_score = conversation.reviewer_score
    else:
        conversation.quality_score = conversation.judge_mean
    conversation.quality_tier = quality_tier_for(conversation.quality_score)
    reasons = []
    if conversation.structure_score < LOW_STRUCTURE:
        reasons.append(FLAG_LOW_STRUCTURE)
    if conversation.judge_mean is not None and conversation.judge_mean < LOW_JUDGE:
        reasons.append(FLAG_LOW_JUDGE)
    if truncation_findings([{"role": t.role, "content": t.content} for t in turns]):
        reasons.append(FLAG_TRUNCATION)
    if _near_duplicate_of_approved(conversation):
        reasons.append(FLAG_NEAR_DUPLICATE)
    conversation.flag_reasons = reasons
    conversation.is_flagged = bool(reasons)
    conversation.turn_count = len(turns)
    conversation.exchange_count = sum(1 for t in turns if t.role == Turn.Role.ASSISTANT)
    conversation.save(
        update_fields=[
            "structure_score",
            "quality_score",
            "quality_tier",
            "flag_reasons",
            "is_flagged",
            "turn_count",
            "exchange_count",
            "updated_at",
        ]
    )
    return conversation


# --- the LLM judge ------------------------------------------------------------------------------

JUDGE_CRITERIA = ("empathy", "clarity", "appropriateness", "brand_voice_alignment", "arc_fidelity")

_CRITERION = {
    "type": "object",
    "properties": {"score": {"type": "integer"}, "rationale": {"type": "string"}},
    "required": ["score", "rationale"],
    "additionalProperties": False,
}
#: Sent as the structured-output schema (Anthropic rejects numeric ranges, so JUDGE_VALIDATION_SCHEMA adds them).
JUDGE_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {name: _CRITERION for name in JUDGE_CRITERIA},
    "required": list(JUDGE_CRITERIA),
    "additionalProperties": False,
}
JUDGE_VALIDATION_SCHEMA: dict[str, Any] = {
    **JUDGE_OUTPUT_SCHEMA,
    "properties": {
        name: {
            **_CRITERION,
            "properties": {
                "score": {"type": "integer", "minimum": 1, "maximum": 5},
                "rationale": {"type": "string", "minLength": 1},
            },
        }
        for name in JUDGE_CRITERIA
    },
}
_JUDGE_VALIDATOR = Draft202012Validator(JUDGE_VALIDATION_SCHEMA)

JUDGE_SYSTEM_PROMPT = """\
You are a strict quality reviewer of synthetic training conversations between a financial planning consultant \
(the assistant) and a client (the user). Score the consultant's side of the conversation against the rubric \
below. Use the whole 1-5 scale: 1 = poor, 2 = weak, 3 = acceptable, 4 = good, 5 = exemplary. For each criterion \
give an integer score and exactly one sentence of rationale that cites something specific in the conversation.

Rubric:
- empathy: does the consultant notice, name and validate the client's emotions before moving to facts?
- clarity: are explanations plain, concrete and easy to follow, with jargon explained and one idea at a time?
- appropriateness: is the guidance suitable, safe and within a financial planner's remit for this client and \
situation (no product picks, referrals where needed, crisis safety first)?
- brand_voice_alignment: does the consultant sound like the consultant profile below (tone, techniques, things \
to avoid)?
- arc_fidelity: did the client actually move from the arc's starting emotion to its ending emotion over the \
conversation, in a believable way?
"""


def _judge_user_message(conversation: Conversation, turns: Sequence[Turn]) -> str:
    from conversations.services.scaffolding import vertical_active

    arc = conversation.emotional_arc
    vertical = vertical_active()
    style = vertical.communication_style if isinstance(vertical.communication_style, dict) else {}
    lines = [
        f"Consultant profile: {vertical.name}, {vertical.business}; tone: {style.get('tone', '')}.",
        "Techniques: " + "; ".join(style.get("techniques") or []),
        "Avoid: " + "; ".join(style.get("avoid") or []),
        f"Emotional arc: {arc.name} (start: {arc.starting_emotion}, end: {arc.ending_emotion}).",
        f"Arc strategy: {arc.strategy}",
        f"Topic: {conversation.training_topic.name}. Client: {conversation.persona.name} "
        f"({conversation.persona.archetype}).",
        "",
        "Conversation:",
    ]
    for t in turns:
        who = "CLIENT" if t.role == Turn.Role.USER else "CONSULTANT"
        emotion = f" [{t.primary_emotion} {t.intensity}]" if t.primary_emotion else ""
        lines.append(f"{t.index}. {who}{emotion}: {t.content}")
    lines += ["", "Score the conversation with the rubric. Answer with the JSON object only."]
    return "\n".join(lines)


def judge_params(*, conversation: Conversation, turns: Sequence[Turn] | None = None) -> dict[str, Any]:
    """The Messages API parameters of one judge call (structured output with the rubric schema)."""
    turns = list(turns) if turns is not None else conversation_turns(conversation)
    return {
        "model": settings.JUDGE_MODEL,
        "max_tokens": settings.JUDGE_MAX_TOKENS,
        "temperature": 0.0,
        "system": JUDGE_SYSTEM_PROMPT,
        "messages": [{"role": "user", "content": _judge_user_message(conversation, turns)}],
        "output_config": {"format": {"type": "json_schema", "schema": JUDGE_OUTPUT_SCHEMA}},
    }


def _response_text(body: dict[str, Any]) -> str:
    blocks = body.get("content") if isinstance(body.get("content"), list) else []
    return "".join(str(b.get("text") or "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")


def judge_response_parse(body: dict[str, Any]) -> tuple[dict[str, dict[str, Any]] | None, str]:
    """``(scores, "")`` for a valid rubric response, else ``(None, reason)``. Scores outside 1–5 are invalid."""
    if body.get("stop_reason") != "end_turn":
        return None, f"stop_reason {body.get('stop_reason')!r} (expected 'end_turn')"
    try:
        data = json.loads(_response_text(body))
    except ValueError as exc:
        return None, f"the judge response is not JSON: {exc}"
    errors = sorted(_JUDGE_VALIDATOR.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path) or "(root)"
        return None, f"the judge response does not match the rubric: {where}: {first.message}"
    return {
        name: {"score": data[name]["score"], "rationale": data[name]["rationale"].strip()} for name in JUDGE_CRITERIA
    }, ""


def _judge_log(
    conversation: Conversation,
    params: dict[str, Any],
    *,
    status: str,
    body: dict | None = None,
    duration_ms: int = 0,
    error_code: str = "",
    error_message: str = "",
) -> GenerationLog:
    from conversations.services.records import call_log_write

    summary = {
        "model": params["model"],
        "max_tokens": params["max_tokens"],
        "temperature": params["temperature"],
        "structured_output": True,
        "user_message_chars": len(params["messages"][0]["content"]),
    }
    return call_log_write(
        owner_id=conversation.owner_id,
        model=params["model"],
        purpose=GenerationLog.Purpose.JUDGING,
        request_summary=summary,
        status=status,
        body=body,
        duration_ms=duration_ms,
        error_code=error_code,
        error_message=error_message,
        conversation=conversation,
    )


def judge_conversation(*, conversation: Conversation, force: bool = False) -> dict[str, Any] | None:
    """Ask Claude to score the conversation with the rubric; store and return ``judge_scores``.

    One call (``settings.JUDGE_MODEL``, ``JUDGE_MAX_TOKENS``). Every call, successful or not, writes a
    ``judging`` GenerationLog row with its tokens and cost. Returns None and stores nothing when judging is
    off (``settings.JUDGE_ENABLED`` is False and ``force`` is not set), when the call fails, or when the
    response is not a valid rubric; on success saves ``judge_scores`` ``{criterion: {score, rationale}}`` and
    ``judge_mean``. Called outside a transaction (it waits on the network); safe to repeat (a new call).
    """
    if not (settings.JUDGE_ENABLED or force):
        return None
    turns = conversation_turns(conversation)
    params = judge_params(conversation=conversation, turns=turns)
    try:
        response = claude.messages_create(params)
    except claude.ClaudeCallError as err:
        _judge_log(conversation, params, status=err.log_status, error_code=err.kind, error_message=err.message)
        return None
    except ApplicationError as err:  # no API key configured
        _judge_log(
            conversation, params, status=GenerationLog.Status.FAILED, error_code=err.code, error_message=err.message
        )
        return None
    scores, problem = judge_response_parse(response.body)
    if scores is None:
        _judge_log(
            conversation,
            params,
            status=GenerationLog.Status.FAILED,
            body=response.body,
            duration_ms=response.duration_ms,
            error_code="invalid_judge_response",
            error_message=problem,
        )
        return None
    with transaction.atomic():
        _judge_log(
            conversation,
            params,
            status=GenerationLog.Status.SUCCESS,
            body=response.body,
            duration_ms=response.duration_ms,
        )
        conversation.judge_scores = scores
        conversation.judge_mean = round(statistics.fmean(s["score"] for s in scores.values()), 2)
        conversation.save(update_fields=["judge_scores", "judge_mean", "updated_at"])
    return scores
