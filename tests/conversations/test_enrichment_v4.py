"""Enrichment: training pairs (SPEC §7.2) and the individual v4 JSON (§7.3) against both schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from conversations.models import Conversation, EmotionalArc, Persona, ReviewAction, TrainingTopic
from conversations.services import v4
from tests.conversations.test_enrichment_scoring import RUBRIC, clean_turns, make_conversation, text

REFERENCE = (
    Path(__file__).resolve().parents[2].parent
    / "shared/reference/original/c-alpha-build_v3.4_emotional-dataset-individual-JSON-format_v4.json"
)


@pytest.fixture
def seeded(scaffolding):
    return {
        "persona": Persona.objects.get(key="anxious_planner"),
        "emotional_arc": EmotionalArc.objects.get(key="fear_to_confidence"),
        "training_topic": TrainingTopic.objects.get(key="eldercare_costs"),
    }


def fear_turns() -> list[tuple]:
    return [
        ("user", text(0, 150), "fear", 0.82, "anxiety"),
        ("assistant", text(1, 300), "warmth", 0.5),
        ("user", text(2, 120), "hope", 0.55, "worry"),
        ("assistant", text(3, 300), "warmth", 0.5),
        ("user", text(4, 120), "confidence", 0.7),
        ("assistant", text(5, 300), "warmth", 0.5),
    ]


def test_one_pair_per_assistant_turn(owner_user, seeded):
    conversation = make_conversation(owner_user, fear_turns(), **seeded)
    pairs = v4.training_pairs(conversation=conversation)
    assert [p["id"] for p in pairs] == [f"{conversation.pk}-e{n}" for n in (1, 2, 3)]
    assert [p["turn_number"] for p in pairs] == [1, 2, 3]
    turns = list(conversation.turns.order_by("index"))
    for n, pair in enumerate(pairs):
        assert pair["conversation_id"] == str(conversation.pk)
        assert pair["current_user_input"] == turns[2 * n].content
        assert pair["target_response"] == turns[2 * n + 1].content
        assert [h["content"] for h in pair["conversation_history"]] == [t.content for t in turns[: 2 * n]]
        messages = [h["content"] for h in pair["conversation_history"]]
        messages += [pair["current_user_input"], pair["target_response"]]
        assert len(messages) == len(set(messages)), "a message appears twice"
        assert pair["system_prompt"] == conversation_vertical_prompt()
    assert pairs[0]["conversation_history"] == []
    assert pairs[1]["conversation_history"][0] == {
        "turn": 1,
        "role": "user",
        "content": turns[0].content,
        "emotional_state": {"primary": "fear", "secondary": "anxiety", "intensity": 0.82},
    }
    assert "secondary" not in pairs[1]["conversation_history"][1]["emotional_state"]


def conversation_vertical_prompt() -> str:
    from conversations.services.scaffolding import vertical_active

    return vertical_active().inference_system_prompt


def test_pair_context_and_metadata(owner_user, seeded):
    conversation = make_conversation(owner_user, fear_turns(), **seeded)
    first, second, third = v4.training_pairs(conversation=conversation)
    assert first["emotional_context"]["detected_emotions"] == {
        "primary": "fear",
        "primary_confidence": 1.0,
        "secondary": "anxiety",
        "intensity": 0.82,
        "valence": "negative",
    }
    assert second["emotional_context"]["detected_emotions"]["valence"] == "mixed"  # hope + worry
    assert third["emotional_context"]["detected_emotions"]["valence"] == "positive"
    meta = first["conversation_metadata"]
    assert meta["persona_archetype"] == "anxious_planner"
    assert meta["emotional_arc_key"] == "fear_to_confidence"
    assert meta["training_topic_key"] == "eldercare_costs"
    assert meta["conversation_phase"] == "initial_opportunity_exploration"
    tm = third["training_metadata"]
    assert tm["emotional_progression_target"] == "fear(0.82) → confidence(0.70)"
    assert tm["conversation_turn"] == 3
    assert tm["difficulty_level"].endswith("_conversation_turn_3")
    assert tm["quality_score"] is None and tm["quality_criteria"] is None
    assert tm["human_reviewed"] is False and tm["use_as_seed_example"] is False


def test_no_pair_for_user_turns_or_orphan_assistant_turns(owner_user, seeded):
    turns = [
        ("assistant", text(1, 200), "warmth", 0.5),  # nothing to answer: no pair, but it is exchange 1
        ("user", text(2, 100), "fear", 0.8),
        ("assistant", text(3, 200), "warmth", 0.5),
        ("user", text(4, 100), "fear", 0.7),  # trailing user turn: no pair
    ]
    conversation = make_conversation(owner_user, turns, **seeded)
    (pair,) = v4.training_pairs(conversation=conversation)
    assert pair["id"] == f"{conversation.pk}-e2"
    assert [h["content"] for h in pair["conversation_history"]] == [turns[0][1]]
    assert pair["target_response"] == turns[2][1]


def test_reviewed_and_judged_pairs(owner_user, reviewer, seeded):
    conversation = make_conversation(
        owner_user,
        fear_turns(),
        **seeded,
        status=Conversation.Status.APPROVED,
        judge_scores=RUBRIC,
        judge_mean=4.0,
        reviewer_score=4.8,
        quality_score=4.8,
        quality_tier="seed_dataset",
    )
    ReviewAction.objects.create(
        owner=owner_user,
        conversation=conversation,
        actor=reviewer,
        action="approve",
        from_status="pending_review",
        to_status="approved",
        comment="Lovely pacing.",
    )
    tm = v4.training_pairs(conversation=conversation)[0]["training_metadata"]
    assert tm["quality_score"] == 4.8
    assert tm["quality_criteria"] == {
        "empathy_score": 5,
        "clarity_score": 4,
        "appropriateness_score": 4,
        "brand_voice_alignment": 3,
        "arc_fidelity_score": 4,
        "reviewer_score": 4.8,
    }
    assert tm["human_reviewed"] is True and tm["use_as_seed_example"] is True
    assert tm["reviewer_notes"] == "Lovely pacing."


def test_individual_v4_validates_against_the_project_schema(owner_user, seeded):
    conversation = make_conversation(owner_user, fear_turns(), **seeded)
    doc = v4.individual_v4(conversation=conversation)
    assert v4.individual_v4_validate(doc) == []
    meta = doc["dataset_metadata"]
    assert meta["dataset_name"] == f"fp_conversation_{conversation.pk}"
    assert meta["version"] == "4.0.0" and meta["total_conversations"] == 1 and meta["total_turns"] == 6
    assert meta["quality_tier"] == "unscored"
    assert doc["consultant_profile"]["core_philosophy"]["principle_5"]
    assert doc["input_parameters"]["persona_key"] == "anxious_planner"
    assert len(doc["training_pairs"]) == 3
    json.dumps(doc)  # serialisable as is


def test_project_schema_rejects_broken_documents(owner_user, seeded):
    doc = v4.individual_v4(conversation=make_conversation(owner_user, fear_turns(), **seeded))
    doc["training_pairs"][0]["target_response"] = None
    doc["training_pairs"][1]["id"] = "educational_turn1"
    del doc["dataset_metadata"]["notes"]
    errors = v4.individual_v4_validate(doc)
    assert any(e.startswith("training_pairs[0].target_response") for e in errors)
    assert any(e.startswith("training_pairs[1].id") for e in errors)
    assert any("'notes' is a required property" in e for e in errors)


# --- the reference schema -----------------------------------------------------------------------

#: The documented deviations (see the project schema's description): (JSON path suffix, validator keyword).
DEVIATIONS = {
    ("", "additionalProperties"),  # input_parameters
    ("dataset_metadata.quality_tier", "enum"),  # unscored
    ("conversation_metadata.persona_archetype", "enum"),
    ("conversation_metadata.emotional_arc_key", "enum"),
    ("conversation_metadata.conversation_phase", "enum"),
    ("training_metadata.quality_score", "type"),  # null when unscored
    ("training_metadata.quality_criteria", "type"),  # null when unjudged
}


def _reference_errors(doc: dict) -> list[tuple[str, str]]:
    if not REFERENCE.exists():
        pytest.skip(f"the reference schema is not available ({REFERENCE}); the project works without ../shared")
    validator = Draft202012Validator(json.loads(REFERENCE.read_text(encoding="utf-8")))
    out = []
    for error in validator.iter_errors(doc):
        path = ".".join(str(p) for p in error.absolute_path if not isinstance(p, int))
        out.append((path, error.validator))
    return out


def _suffix(path: str) -> str:
    parts = path.split(".")
    return ".".join(parts[-2:]) if len(parts) >= 2 else path


def test_reference_schema_accepts_a_scored_conversation_except_input_parameters(owner_user, seeded):
    conversation = make_conversation(
        owner_user,
        fear_turns(),
        **seeded,
        status=Conversation.Status.APPROVED,
        judge_scores=RUBRIC,
        judge_mean=4.0,
        quality_score=4.0,
        quality_tier="production",
    )
    errors = _reference_errors(v4.individual_v4(conversation=conversation))
    assert errors == [("", "additionalProperties")]


def test_reference_schema_differs_only_by_documented_deviations(owner_user, scaffolding):
    conversation = make_conversation(
        owner_user,
        clean_turns(4),
        metadata={
            "client_persona": "Marcus Chen - The Overwhelmed Avoider",
            "session_context": "Marcus is in crisis.",
            "conversation_phase": "crisis_support",
            "expected_outcome": "Marcus calls 988.",
        },
        persona=Persona.objects.get(key="overwhelmed_avoider"),
        emotional_arc=EmotionalArc.objects.get(key="crisis_to_referral"),
        training_topic=TrainingTopic.objects.get(key="ignored_401k"),
    )
    doc = v4.individual_v4(conversation=conversation)
    assert v4.individual_v4_validate(doc) == []
    errors = _reference_errors(doc)
    assert errors, "this conversation uses the widened enums"
    unexpected = [(path, keyword) for path, keyword in errors if (_suffix(path), keyword) not in DEVIATIONS]
    unexpected = [(p, k) for p, k in unexpected if not (p == "" and k == "additionalProperties")]
    assert unexpected == []
    assert ("dataset_metadata.quality_tier", "enum") in errors
