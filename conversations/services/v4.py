"""The "brightrun-lora-v4" data format: training pairs (SPEC §7.2) and the individual conversation JSON (§7.3).

``training_pairs`` is the one place pairs are built; the enrichment step and the training-file builder both use
it. One pair per assistant turn (an *exchange*): the user turn right before it is the input, every turn before
that user turn is the history, the assistant turn is the target. No message appears twice in a pair, and user
turns never become pairs. An assistant turn that does not follow a user turn (a role-alternation break, reported
as ROLE_NOT_ALTERNATING by validation) has no input and yields no pair; exchange numbers still count every
assistant turn, so ids stay stable.

Emotions come from the generation's own labels, not from a classifier: ``primary_confidence`` is 1.0 (the label
is given, not detected) and no ``secondary_confidence`` is written. ``valence`` is looked up in the word lists
below (``EMOTION_VALENCE``): positive or negative when every known label agrees, ``mixed`` when they disagree or
no label is in the lists.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from conversations.models import Conversation, ReviewAction, Turn, VerticalProfile
from conversations.services.validation import conversation_turns

FORMAT_SPEC = "brightrun-lora-v4"
FORMAT_VERSION = "4.0.0"
TARGET_USE = "LoRA fine-tuning for emotionally intelligent chatbot"
CONVERSATION_SOURCE = "synthetic_platform_generated"
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "brightrun-lora-v4-individual.schema.json"

POSITIVE_EMOTIONS = frozenset(
    """acceptance accomplishment alignment appreciation calm clarity comfort confidence contentment curiosity
    determination eagerness empowerment encouraged engaged excitement focused gratitude grounded happiness hope
    hopeful interest joy motivated motivation optimism optimistic peace permission pride readiness reassurance
    reassured relief relieved resolve satisfaction security stability supported trust understanding validated""".split()
)
NEGATIVE_EMOTIONS = frozenset(
    """anger annoyance anxiety anxious apprehension ashamed confusion confused defensiveness dread despair
    disappointment discouraged distress doubt embarrassment exhaustion fear frustration frustrated grief guilt
    helplessness hopelessness hostility hurt inadequacy insecurity irritation isolation loneliness nervousness
    overwhelm overwhelmed panic regret resentment sadness scared shame skepticism stress stressed tension
    uncertainty unease vulnerability worry worried""".split()
)
#: The documented word lists as one mapping (for the UI and the docs).
EMOTION_VALENCE: dict[str, str] = {
    **{word: "positive" for word in POSITIVE_EMOTIONS},
    **{word: "negative" for word in NEGATIVE_EMOTIONS},
}


def _valence_of(label: str) -> str | None:
    word = (label or "").strip().lower().replace("-", "_").replace(" ", "_")
    if word in EMOTION_VALENCE:
        return EMOTION_VALENCE[word]
    parts = [EMOTION_VALENCE.get(p) for p in word.split("_")]
    known = {p for p in parts if p}
    return known.pop() if len(known) == 1 else None


def valence(primary: str, secondary: str = "") -> str:
    """``positive`` | ``negative`` when every known label agrees, else ``mixed`` (also when none is known)."""
    known = {v for v in (_valence_of(primary), _valence_of(secondary) if secondary else None) if v}
    return known.pop() if len(known) == 1 else "mixed"


def _emotional_state(turn: Turn) -> dict[str, Any]:
    state: dict[str, Any] = {"primary": turn.primary_emotion}
    if turn.secondary_emotion:
        state["secondary"] = turn.secondary_emotion
    state["intensity"] = turn.intensity
    return state


def _history_turn(turn: Turn) -> dict[str, Any]:
    return {"turn": turn.index, "role": turn.role, "content": turn.content, "emotional_state": _emotional_state(turn)}


def _client_background(persona) -> str:
    return (
        f"Age {persona.age}, {persona.gender}, {persona.location}, {persona.family_status}; {persona.occupation}, "
        f"income {persona.income_range}. {persona.financial_situation} Emotional baseline: "
        f"{persona.emotional_baseline}"
    ).strip()


def _intensity_text(value: float | None, lo: float, hi: float) -> str:
    # Falls back to the arc's own range midpoint only when the turn carries no intensity (validation blocks that).
    return f"{(value if value is not None else (lo + hi) / 2):.2f}"


def emotional_progression_target(conversation: Conversation, turns: Sequence[Turn]) -> str:
    """``"fear(0.82) → confidence(0.70)"``: the arc's emotions with the client's first and last intensities."""
    arc = conversation.emotional_arc
    user = [t for t in turns if t.role == Turn.Role.USER]
    first = user[0].intensity if user else None
    last = user[-1].intensity if user else None
    start = _intensity_text(first, arc.start_intensity_min, arc.start_intensity_max)
    end = _intensity_text(last, arc.end_intensity_min, arc.end_intensity_max)
    return f"{arc.starting_emotion}({start}) → {arc.ending_emotion}({end})"


def quality_criteria(conversation: Conversation) -> dict[str, Any] | None:
    """The judge's per-criterion scores in the reference's field names (plus the reviewer's score); None if unjudged."""
    scores = conversation.judge_scores if isinstance(conversation.judge_scores, dict) else None
    if not scores:
        return None
    criteria = {
        "empathy_score": scores["empathy"]["score"],
        "clarity_score": scores["clarity"]["score"],
        "appropriateness_score": scores["appropriateness"]["score"],
        "brand_voice_alignment": scores["brand_voice_alignment"]["score"],
    }
    if "arc_fidelity" in scores:
        criteria["arc_fidelity_score"] = scores["arc_fidelity"]["score"]
    if conversation.reviewer_score is not None:
        criteria["reviewer_score"] = conversation.reviewer_score
    return criteria


def _reviewer_notes(conversation: Conversation) -> str | None:
    if conversation.status != Conversation.Status.APPROVED:
        return None
    action = (
        ReviewAction.objects.filter(conversation=conversation, action=ReviewAction.Action.APPROVE)
        .order_by("-created_at")
        .values_list("comment", flat=True)
        .first()
    )
    return action or None


def _active_vertical() -> VerticalProfile:
    from conversations.services.scaffolding import vertical_active

    return vertical_active()


def training_pairs(
    *, conversation: Conversation, turns: Sequence[Turn] | None = None, vertical: VerticalProfile | None = None
) -> list[dict[str, Any]]:
    """The v4 training pairs of one conversation (SPEC §7.2), in exchange order.

    Pure apart from reading the conversation, its turns (unless ``turns`` is given, in order), its scaffolding,
    its latest approval comment and the vertical (the active one unless ``vertical`` is given). Safe from any
    context; nothing is written.
    """
    turns = list(turns) if turns is not None else conversation_turns(conversation)
    vertical = vertical or _active_vertical()
    persona, arc, topic = conversation.persona, conversation.emotional_arc, conversation.training_topic
    meta = conversation.conversation_metadata if isinstance(conversation.conversation_metadata, dict) else {}
    human_reviewed = conversation.status == Conversation.Status.APPROVED
    conversation_metadata = {
        "client_persona": meta.get("client_persona") or f"{persona.name} - {persona.archetype}",
        "persona_archetype": persona.key,
        "client_background": _client_background(persona),
        "emotional_arc": arc.name,
        "emotional_arc_key": arc.key,
        "training_topic": topic.name,
        "training_topic_key": topic.key,
        "session_context": meta.get("session_context") or "",
        "conversation_phase": meta.get("conversation_phase") or "",
        "expected_outcome": meta.get("expected_outcome") or "",
    }
    progression = emotional_progression_target(conversation, turns)
    criteria = quality_criteria(conversation)
    notes = _reviewer_notes(conversation)
    skills = [str(s) for s in (arc.response_techniques or arc.key_principles or [])]
    objective = f"{arc.name} on {topic.name}: {arc.strategy}".strip()

    pairs = []
    exchange = 0
    for position, turn in enumerate(turns):
        if turn.role != Turn.Role.ASSISTANT:
            continue
        exchange += 1
        if position == 0 or turns[position - 1].role != Turn.Role.USER:
            continue
        user_turn = turns[position - 1]
        detected: dict[str, Any] = {"primary": user_turn.primary_emotion, "primary_confidence": 1.0}
        if user_turn.secondary_emotion:
            detected["secondary"] = user_turn.secondary_emotion
        detected["intensity"] = user_turn.intensity
        detected["valence"] = valence(user_turn.primary_emotion, user_turn.secondary_emotion)
        pairs.append(
            {
                "id": f"{conversation.pk}-e{exchange}",
                "conversation_id": str(conversation.pk),
                "turn_number": exchange,
                "conversation_metadata": dict(conversation_metadata),
                "system_prompt": vertical.inference_system_prompt,
                "conversation_history": [_history_turn(t) for t in turns[: position - 1]],
                "current_user_input": user_turn.content,
                "emotional_context": {"detected_emotions": detected},
                "target_response": turn.content,
                "training_metadata": {
                    "difficulty_level": f"{topic.complexity}_conversation_turn_{exchange}",
                    "key_learning_objective": objective,
                    "demonstrates_skills": list(skills),
                    "conversation_turn": exchange,
                    "emotional_progression_target": progression,
                    "quality_score": conversation.quality_score,
                    "quality_criteria": dict(criteria) if criteria else None,
                    "human_reviewed": human_reviewed,
                    "reviewer_notes": notes,
                    "use_as_seed_example": human_reviewed
                    and conversation.quality_tier == Conversation.QualityTier.SEED_DATASET,
                    "generate_variations_count": 0,
                },
            }
        )
    return pairs


def consultant_profile(vertical: VerticalProfile) -> dict[str, Any]:
    """The vertical as the v4 ``consultant_profile`` (principles numbered 1..n)."""
    style = vertical.communication_style if isinstance(vertical.communication_style, dict) else {}
    principles = list(vertical.core_philosophy or [])
    return {
        "name": vertical.name,
        "business": vertical.business,
        "expertise": vertical.expertise,
        "years_experience": vertical.years_experience,
        "core_philosophy": {f"principle_{i}": str(p) for i, p in enumerate(principles, start=1)},
        "communication_style": {
            "tone": style.get("tone", ""),
            "techniques": list(style.get("techniques") or []),
            "avoid": list(style.get("avoid") or []),
        },
    }


def _notes(conversation: Conversation) -> str:
    parts = [f"Generated by {conversation.model}"]
    version = conversation.template_version
    if version is not None:
        parts.append(f"template {version.template.key} v{version.number}")
    parts.append(f"tier {conversation.tier}")
    parts.append(f"arc {conversation.emotional_arc.key}")
    parts.append(f"topic {conversation.training_topic.key}")
    if conversation.is_flagged:
        parts.append("flagged: " + ", ".join(conversation.flag_reasons or []))
    return "; ".join(parts)


def individual_v4(*, conversation: Conversation) -> dict[str, Any]:
    """The individual conversation JSON (SPEC §7.3) rendered from the database. Read-only."""
    turns = conversation_turns(conversation)
    vertical = _active_vertical()
    persona, arc, topic = conversation.persona, conversation.emotional_arc, conversation.training_topic
    return {
        "dataset_metadata": {
            "dataset_name": f"fp_conversation_{conversation.pk}",
            "version": FORMAT_VERSION,
            "created_date": conversation.created_at.date().isoformat(),
            "vertical": vertical.key,
            "consultant_persona": f"{vertical.name} - {vertical.business}",
            "target_use": TARGET_USE,
            "conversation_source": CONVERSATION_SOURCE,
            "quality_tier": conversation.quality_tier,
            "total_conversations": 1,
            "total_turns": len(turns),
            "notes": _notes(conversation),
        },
        "consultant_profile": consultant_profile(vertical),
        "training_pairs": training_pairs(conversation=conversation, turns=turns, vertical=vertical),
        "input_parameters": {
            "persona_id": persona.pk,
            "persona_key": persona.key,
            "persona_name": persona.name,
            "emotional_arc_id": arc.pk,
            "emotional_arc_key": arc.key,
            "emotional_arc_name": arc.name,
            "training_topic_id": topic.pk,
            "training_topic_key": topic.key,
            "training_topic_name": topic.name,
        },
    }


@cache
def individual_v4_schema() -> dict[str, Any]:
    """The project's JSON Schema of the individual v4 file (``conversations/schemas/``)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator() -> Draft202012Validator:
    schema = individual_v4_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def individual_v4_validate(doc: Any) -> list[str]:
    """Every way ``doc`` breaks the project's individual v4 schema, as ``"path: message"``; empty when valid."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    out = []
    for error in errors:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        out.append(f"{path or '(root)'}: {error.message}")
    return out
