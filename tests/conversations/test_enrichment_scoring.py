"""Enrichment: validation codes, the structure score, tiers, rescoring and the LLM judge (SPEC §5.2–§5.3)."""

from __future__ import annotations

import json

import pytest

from conversations.models import Conversation, GenerationLog, Turn
from conversations.services import quality
from conversations.services.quality import quality_tier_for, structure_score
from conversations.services.validation import conversation_validate
from tests.claude_server import Behaviour
from tests.factories import ConversationFactory, EmotionalArcFactory, TurnFactory

METADATA = {
    "client_persona": "Jennifer Martinez - The Anxious Planner",
    "session_context": "Jennifer wants to know whether her retirement savings are on track.",
    "conversation_phase": "initial_opportunity_exploration",
    "expected_outcome": "Jennifer leaves with a savings target and one next step.",
}
OPENERS = ["Honestly", "Yesterday", "Maybe", "Thanks", "Okay", "Right", "Well", "Perhaps", "Sure", "Also"]


def text(n: int, length: int) -> str:
    """A sentence of exactly ``length`` characters that opens with a word unique to ``n`` and ends with '.'."""
    body = f"{OPENERS[n % len(OPENERS)]} variant{n} " + "we can plan this step by step together " * 40
    return body[: length - 1].rstrip().ljust(length - 1, "s") + "."


def make_conversation(owner, turns, *, arc=None, metadata=None, **fields) -> Conversation:
    """A conversation with ``turns`` = [(role, content, primary, intensity[, secondary])...] (1-based indexes)."""
    kwargs = {"owner": owner, "conversation_metadata": dict(METADATA if metadata is None else metadata), **fields}
    if arc is not None:
        kwargs["emotional_arc"] = arc
    conversation = ConversationFactory(**kwargs)
    for i, spec in enumerate(turns, start=1):
        role, content, primary, intensity = spec[:4]
        TurnFactory(
            conversation=conversation,
            index=i,
            role=role,
            content=content,
            primary_emotion=primary,
            intensity=intensity,
            secondary_emotion=spec[4] if len(spec) > 4 else "",
        )
    conversation.turn_count = len(turns)
    conversation.exchange_count = sum(1 for t in turns if t[0] == "assistant")
    conversation.save()
    return conversation


def clean_turns(exchanges: int = 3, *, user_len: int = 100, assistant_len: int = 200) -> list[tuple]:
    turns = []
    for e in range(exchanges):
        turns.append(("user", text(2 * e, user_len), "anxiety", 0.8 - 0.1 * e))
        turns.append(("assistant", text(2 * e + 1, assistant_len), "warmth", 0.5))
    return turns


def codes(issues: list[dict]) -> set[tuple[str, str]]:
    return {(i["code"], i["path"]) for i in issues}


# --- validation ---------------------------------------------------------------------------------


def test_clean_conversation_is_valid(owner_user):
    report = conversation_validate(conversation=make_conversation(owner_user, clean_turns()))
    assert report == {"valid": True, "blockers": [], "warnings": []}


def test_missing_metadata_blockers_and_expected_outcome_warning(owner_user):
    conversation = make_conversation(owner_user, clean_turns(), metadata={"client_persona": " "})
    report = conversation_validate(conversation=conversation)
    assert report["valid"] is False
    assert codes(report["blockers"]) == {
        ("MISSING_CLIENT_PERSONA", "conversation_metadata.client_persona"),
        ("MISSING_SESSION_CONTEXT", "conversation_metadata.session_context"),
        ("MISSING_CONVERSATION_PHASE", "conversation_metadata.conversation_phase"),
    }
    assert codes(report["warnings"]) == {("MISSING_EXPECTED_OUTCOME", "conversation_metadata.expected_outcome")}
    for issue in report["blockers"] + report["warnings"]:
        assert set(issue) == {"code", "path", "message", "suggestion"}
        assert issue["message"] and issue["suggestion"]


def test_missing_and_insufficient_turns(owner_user):
    empty = conversation_validate(conversation=make_conversation(owner_user, []))
    assert codes(empty["blockers"]) == {("MISSING_TURNS", "turns")}
    single = conversation_validate(conversation=make_conversation(owner_user, [("user", text(0, 80), "fear", 0.8)]))
    assert codes(single["blockers"]) == {("INSUFFICIENT_TURNS", "turns")}


def test_turn_blockers_have_turn_paths(owner_user):
    turns = clean_turns()
    turns[1] = ("system", text(1, 200), "warmth", 0.5)
    turns[2] = ("user", "   ", "anxiety", 0.7)
    turns[3] = ("assistant", text(3, 200), "", 0.5)
    turns[4] = ("user", text(4, 100), "anxiety", 1.4)
    turns[5] = ("assistant", text(5, 200), "calm", None)
    report = conversation_validate(conversation=make_conversation(owner_user, turns))
    assert report["valid"] is False
    assert codes(report["blockers"]) == {
        ("INVALID_ROLE", "turns[1].role"),
        ("MISSING_CONTENT", "turns[2].content"),
        ("MISSING_PRIMARY_EMOTION", "turns[3].emotional_context.primary_emotion"),
        ("INTENSITY_OUT_OF_RANGE", "turns[4].emotional_context.intensity"),
        ("INTENSITY_OUT_OF_RANGE", "turns[5].emotional_context.intensity"),
    }


def test_warnings_have_turn_paths(owner_user):
    turns = clean_turns()
    turns[1] = ("user", text(1, 100), "anxiety", 0.7)  # two user turns in a row
    turns[2] = ("user", "Ok thanks", "relief", 0.6)  # 9 characters, and a third user turn
    turns[3] = ("assistant", text(3, 200), "warmth", 0.99)
    turns[5] = ("assistant", text(5, 200)[:-1] + " and the\\", "warmth", 0.5)
    report = conversation_validate(conversation=make_conversation(owner_user, turns))
    assert report["valid"] is True
    found = codes(report["warnings"])
    assert ("ROLE_NOT_ALTERNATING", "turns[1].role") in found
    assert ("ROLE_NOT_ALTERNATING", "turns[2].role") in found
    assert ("SHORT_CONTENT", "turns[2].content") in found
    assert ("EXTREME_INTENSITY", "turns[3].emotional_context.intensity") in found
    assert ("TRUNCATION_SUSPECTED", "turns[5].content") in found


def test_assistant_first_is_a_role_warning(owner_user):
    turns = [("assistant", text(0, 200), "warmth", 0.5), *clean_turns(2)]
    report = conversation_validate(conversation=make_conversation(owner_user, turns))
    assert ("ROLE_NOT_ALTERNATING", "turns[0].role") in codes(report["warnings"])


# --- structure score ----------------------------------------------------------------------------


@pytest.fixture
def arc_3_4(db):
    return EmotionalArcFactory(key="arc_three_four", typical_turns_min=3, typical_turns_max=4)


def test_structure_score_perfect_conversation(owner_user, arc_3_4):
    # turn count 10 (3 exchanges in 3–4), length 10 (avg 200), structure 10, consistency 7 + 1.5 (distinct
    # openings) + 1 (cv of [100, 200, ...] = 1/3) + 0.5 (last turn substantive assistant) = 10 → 10.0
    conversation = make_conversation(owner_user, clean_turns(3), arc=arc_3_4)
    assert structure_score(conversation=conversation) == 10.0


def test_structure_score_short_single_exchange(owner_user, arc_3_4):
    # turn count 7 (1 exchange, within ±2 of 3–4); length 3 (avg 40 < 50); structure 10 − 0.5 ("Hi" < 10 chars)
    # = 9.5; consistency 7 + 1.5 (2 distinct openings), cv of [2, 40] = 19/21 ≈ 0.90 (no change), last turn
    # 40 chars (not substantive) = 8.5. 0.3×7 + 0.25×3 + 0.3×9.5 + 0.15×8.5 = 6.975 → 6.98
    turns = [("user", "Hi", "worry", 0.7), ("assistant", text(1, 40), "warmth", 0.5)]
    assert structure_score(conversation=make_conversation(owner_user, turns, arc=arc_3_4)) == 6.98


def test_structure_score_broken_structure(owner_user, arc_3_4):
    # exchanges 3 → 10; avg assistant 300 → 10; structure 10 − 2 (starts with assistant) − 1.5 (assistant,
    # assistant) − 2 (empty user turn) = 4.5; consistency 7 + 1.5 (4 distinct openings of 4) + 0 (cv ≈ 0.58)
    # + 0.5 = 9.0. 3 + 2.5 + 1.35 + 1.35 = 8.2
    turns = [
        ("assistant", text(1, 300), "warmth", 0.5),
        ("assistant", text(3, 300), "warmth", 0.5),
        ("user", "", "anxiety", 0.7),
        ("assistant", text(5, 300), "warmth", 0.5),
    ]
    assert structure_score(conversation=make_conversation(owner_user, turns, arc=arc_3_4)) == 8.2


def test_structure_score_far_outside_range_and_repetitive(owner_user, arc_3_4):
    # 8 exchanges (> 4 + 2) → 3; avg assistant 1000 → 3; structure 10; consistency 7 − 2 (every turn opens
    # "I hear you") + 1 (cv 0) + 0.5 = 6.5. 0.9 + 0.75 + 3 + 0.975 = 5.625 → 5.63
    same = ("I hear you " + "x" * 989)[:999] + "."
    turns = [(role, same, "anxiety", 0.6) for _ in range(8) for role in ("user", "assistant")]
    assert structure_score(conversation=make_conversation(owner_user, turns, arc=arc_3_4)) == 5.63


@pytest.mark.parametrize(
    ("score", "tier"),
    [
        (None, "unscored"),
        (5.0, "seed_dataset"),
        (4.5, "seed_dataset"),
        (4.49, "production"),
        (3.5, "production"),
        (3.49, "experimental"),
        (2.5, "experimental"),
        (2.49, "rejected"),
        (1.0, "rejected"),
    ],
)
def test_quality_tiers(score, tier):
    assert quality_tier_for(score) == tier


# --- rescore ------------------------------------------------------------------------------------


def test_rescore_never_invents_a_score(owner_user, arc_3_4):
    conversation = make_conversation(owner_user, clean_turns(3), arc=arc_3_4)
    quality.conversation_rescore(conversation=conversation)
    conversation.refresh_from_db()
    assert conversation.structure_score == 10.0
    assert conversation.quality_score is None
    assert conversation.quality_tier == "unscored"
    assert conversation.is_flagged is False and conversation.flag_reasons == []


def test_rescore_reviewer_score_wins_over_judge(owner_user, arc_3_4):
    conversation = make_conversation(owner_user, clean_turns(3), arc=arc_3_4, judge_mean=3.0, reviewer_score=4.6)
    quality.conversation_rescore(conversation=conversation)
    conversation.refresh_from_db()
    assert (conversation.quality_score, conversation.quality_tier) == (4.6, "seed_dataset")
    conversation.reviewer_score = None
    conversation.save()
    quality.conversation_rescore(conversation=conversation)
    conversation.refresh_from_db()
    assert (conversation.quality_score, conversation.quality_tier) == (3.0, "experimental")


def test_rescore_flags(owner_user, arc_3_4):
    # 0.3×7 + 0.25×3 + 0.3×(10 − 2 − 0.5 − 1.5) + 0.15×(7 + 1.5) = 5.925 → 5.93
    turns = [("user", "", "worry", 0.7), ("user", "Hi", "worry", 0.7), ("assistant", "Sure, and the\\", "warmth", 0.5)]
    conversation = make_conversation(owner_user, turns, arc=arc_3_4, judge_mean=2.0)
    quality.conversation_rescore(conversation=conversation)
    conversation.refresh_from_db()
    assert conversation.structure_score == 5.93
    assert conversation.is_flagged is True
    assert conversation.flag_reasons == ["low_structure", "low_judge", "truncation_suspected"]
    assert conversation.quality_tier == "rejected"


# --- the judge ----------------------------------------------------------------------------------

RUBRIC = {
    "empathy": {"score": 5, "rationale": "Names the client's fear before any numbers."},
    "clarity": {"score": 4, "rationale": "Explains the match with one worked example."},
    "appropriateness": {"score": 4, "rationale": "Stays within planning advice."},
    "brand_voice_alignment": {"score": 3, "rationale": "Warm but a little long."},
    "arc_fidelity": {"score": 4, "rationale": "The client ends calmer and with a plan."},
}


@pytest.fixture
def judged(owner_user, scaffolding, claude_server, settings):
    settings.JUDGE_ENABLED = True
    settings.JUDGE_MODEL = "claude-sonnet-4-5-20250929"
    settings.ANTHROPIC_MAX_RETRIES = 0
    return make_conversation(owner_user, clean_turns(3))


def _judge_logs(conversation):
    return list(GenerationLog.objects.filter(conversation=conversation, purpose="judging"))


def test_judge_scores_come_from_a_judge_response(judged, claude_server, settings):
    claude_server.enqueue(Behaviour("json", body=RUBRIC))
    scores = quality.judge_conversation(conversation=judged)
    assert scores == RUBRIC
    judged.refresh_from_db()
    assert judged.judge_scores == RUBRIC
    assert judged.judge_mean == 4.0
    (log,) = _judge_logs(judged)
    assert log.status == "success" and log.owner_id == judged.owner_id
    assert log.input_tokens > 0 and log.output_tokens > 0
    (request,) = claude_server.message_requests
    body = request["body"]
    assert body["output_config"]["format"]["type"] == "json_schema"
    assert body["model"] == "claude-sonnet-4-5-20250929"
    assert body["max_tokens"] == settings.JUDGE_MAX_TOKENS
    quality.conversation_rescore(conversation=judged)
    judged.refresh_from_db()
    assert (judged.quality_score, judged.quality_tier) == (4.0, "production")


def test_judge_off_means_no_call_and_null(judged, claude_server, settings):
    settings.JUDGE_ENABLED = False
    assert quality.judge_conversation(conversation=judged) is None
    judged.refresh_from_db()
    assert judged.judge_scores is None and judged.judge_mean is None
    assert claude_server.message_requests == [] and _judge_logs(judged) == []


def test_judge_failure_is_null_with_a_failed_log(judged, claude_server):
    claude_server.enqueue("server_error")
    assert quality.judge_conversation(conversation=judged) is None
    judged.refresh_from_db()
    assert judged.judge_scores is None and judged.judge_mean is None
    (log,) = _judge_logs(judged)
    assert log.status == "failed" and log.error_code == "server_error"


@pytest.mark.parametrize(
    "body",
    [
        None,  # the server's default answer: a generated conversation, not a rubric
        {**RUBRIC, "empathy": {"score": 7, "rationale": "Out of range."}},
        {**RUBRIC, "clarity": {"score": 0, "rationale": "Out of range."}},
        "not json at all",
    ],
)
def test_invalid_judge_response_is_null(judged, claude_server, body):
    claude_server.enqueue("valid" if body is None else Behaviour("json", body=body))
    assert quality.judge_conversation(conversation=judged) is None
    judged.refresh_from_db()
    assert judged.judge_scores is None and judged.judge_mean is None
    (log,) = _judge_logs(judged)
    assert log.status == "failed" and log.error_code == "invalid_judge_response"
    assert log.output_tokens > 0


def test_judge_parse_rejects_wrong_stop_reason():
    body = {"stop_reason": "max_tokens", "content": [{"type": "text", "text": json.dumps(RUBRIC)}]}
    assert quality.judge_response_parse(body)[0] is None


def test_turn_role_choices_are_what_validation_accepts():
    assert set(Turn.Role.values) == {"user", "assistant"}
