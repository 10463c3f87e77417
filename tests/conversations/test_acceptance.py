"""Acceptance checks on Claude responses (SPEC §4.3 steps 2 to 5): pure functions, no database."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from conversations.services.acceptance import (
    CONVERSATION_SCHEMA,
    SHORT_TURN_RATIO,
    VALIDATION_SCHEMA,
    AcceptanceResult,
    check_response,
    extract,
    remaining_tokens_analysis,
    truncation_findings,
)

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "original"
RAW_TRUNCATED = REFERENCE / "single-convo-file-3-RAW.json"
RAW_CLEAN = REFERENCE / "recent-raw.json"
GOLD = sorted(REFERENCE.glob("c-alpha-build_v3.4-LoRA-FP-convo-0*-complete.json"))
no_reference = pytest.mark.skipif(not RAW_TRUNCATED.exists(), reason="../shared reference data not present")


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture(name: str) -> dict:
    return json.loads(fixture_text(name))


def codes(result: AcceptanceResult) -> set[tuple[int | None, str]]:
    return {(f.turn_number, f.code) for f in result.findings}


def conversation(*assistant_texts: str) -> list[dict]:
    """Alternating turns whose assistant contents are `assistant_texts`."""
    turns = []
    for text in assistant_texts:
        turns.append({"role": "user", "content": "Can you help me with this?"})
        turns.append({"role": "assistant", "content": text})
    return [{**t, "turn_number": i} for i, t in enumerate(turns, start=1)]


# --- schemas ------------------------------------------------------------------------------------


def _walk(schema):
    yield schema
    for value in schema.values():
        if isinstance(value, dict):
            yield from _walk(value)


def test_structured_output_schema_uses_only_what_anthropic_accepts():
    Draft202012Validator.check_schema(CONVERSATION_SCHEMA)
    for node in _walk(CONVERSATION_SCHEMA):
        if node.get("type") == "object":
            assert node["additionalProperties"] is False
        assert not {"minimum", "maximum", "minLength", "maxLength", "exclusiveMinimum"} & node.keys()
        assert node.get("minItems", 0) <= 1


def test_validation_schema_carries_the_ranges():
    Draft202012Validator.check_schema(VALIDATION_SCHEMA)
    turns = VALIDATION_SCHEMA["properties"]["turns"]
    assert turns["minItems"] == 2
    assert turns["items"]["properties"]["turn_number"]["minimum"] == 1
    intensity = turns["items"]["properties"]["emotional_context"]["properties"]["intensity"]
    assert (intensity["minimum"], intensity["maximum"]) == (0, 1)
    assert "minimum" not in CONVERSATION_SCHEMA["properties"]["turns"]["items"]["properties"]["turn_number"]


def test_clean_fixture_conforms_to_both_schemas():
    data = fixture("clean_conversation.json")
    Draft202012Validator(CONVERSATION_SCHEMA).validate(data)
    Draft202012Validator(VALIDATION_SCHEMA).validate(data)


# --- extraction ---------------------------------------------------------------------------------


def test_extract_messages_api_body():
    body = fixture("clean_response.json")
    ex = extract(body)
    assert ex.is_message and ex.stop_reason == "end_turn"
    assert ex.usage["output_tokens"] == 1480
    assert json.loads(ex.text) == fixture("clean_conversation.json")
    assert extract(json.dumps(body)).text == ex.text


def test_extract_bare_conversation_as_dict_or_string():
    data = fixture("clean_conversation.json")
    assert extract(data).data == data and extract(data).stop_reason is None
    bare = extract(fixture_text("clean_conversation.json"))
    assert not bare.is_message and bare.stop_reason is None and bare.usage == {}
    assert json.loads(bare.text) == data


def test_extract_forced_tool_call():
    data = fixture("clean_conversation.json")
    body = {
        "type": "message",
        "stop_reason": "tool_use",
        "usage": {"output_tokens": 900},
        "content": [{"type": "tool_use", "name": "record_conversation", "input": data}],
    }
    assert extract(body).data == data
    assert check_response(body).ok


# --- accepted responses -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["clean_conversation.json", "clean_response.json"])
def test_clean_response_is_accepted(name):
    result = check_response(fixture_text(name))
    assert result.ok, result.message
    assert (result.failure_type, result.findings, result.failure_types) == (None, [], [])
    assert [t["turn_number"] for t in result.conversation["turns"]] == [1, 2, 3, 4, 5, 6]
    assert result.conversation == fixture("clean_conversation.json")


def test_accepts_a_decoded_dict_and_keeps_usage():
    result = check_response(fixture("clean_response.json"))
    assert result.ok and result.stop_reason == "end_turn"
    assert result.usage["input_tokens"] == 2210


def test_turns_are_sorted_by_turn_number():
    result = check_response(fixture("turns_out_of_order.json"))
    assert result.ok, result.message
    assert [t["turn_number"] for t in result.conversation["turns"]] == [1, 2, 3, 4, 5, 6]
    assert [t["role"] for t in result.conversation["turns"]] == ["user", "assistant"] * 3


def test_findings_point_at_the_array_position_of_out_of_order_turns():
    data = fixture("turns_out_of_order.json")  # turns 2, 1, 4, 3, 6, 5
    data["turns"][2]["content"] += "\\"  # turn 4
    result = check_response(data)
    assert [(f.turn_number, f.code, f.path) for f in result.findings] == [(4, "TRAILING_BACKSLASH", "turns[2].content")]


def test_persona_drift_is_replaced_and_noted():
    result = check_response(fixture("persona_drift.json"), persona_display_name="Priya Nair - The Cautious Planner")
    assert result.ok
    assert result.conversation["conversation_metadata"]["client_persona"] == "Priya Nair - The Cautious Planner"
    assert result.notes == [
        "client_persona 'Priya N. - cautious first-time saver' replaced with 'Priya Nair - The Cautious Planner'"
    ]
    same = check_response(fixture("clean_conversation.json"), persona_display_name="Priya Nair - The Cautious Planner")
    assert same.ok and same.notes == []


def test_result_is_immutable_and_serialisable():
    result = check_response(fixture("trailing_backslash.json"))
    with pytest.raises(AttributeError):
        result.ok = True
    assert json.loads(json.dumps(result.to_dict()))["findings"][0]["code"] == "TRAILING_BACKSLASH"


# --- stop reason and parsing --------------------------------------------------------------------


def test_max_tokens_is_truncation_with_the_request_limit():
    result = check_response(fixture("max_tokens_response.json"), max_tokens=12000)
    assert (result.ok, result.failure_type, result.message) == (False, "truncation", "truncated by max_tokens (12000)")
    assert codes(result) == {(None, "MAX_TOKENS")}
    assert result.stop_reason == "max_tokens"


def test_max_tokens_without_the_request_limit_quotes_the_output_tokens():
    result = check_response(fixture("max_tokens_response.json"))
    assert result.message == "truncated by max_tokens (16000)"


def test_other_stop_reasons_fail():
    result = check_response(fixture("refusal_response.json"))
    assert result.failure_type == "stop_reason"
    assert "refusal" in result.message


def test_bare_json_skips_the_stop_reason_check():
    assert check_response(fixture_text("clean_conversation.json")).stop_reason is None


def test_invalid_json_reports_the_parser_position():
    result = check_response(fixture("invalid_json_response.json"))
    assert result.failure_type == "parse_error"
    assert result.message.startswith("invalid JSON: Expecting ':' delimiter at line 1 column ")
    assert "(char " in result.message
    assert codes(result) == {(None, "INVALID_JSON")}


def test_json_cut_off_at_the_end_says_so():
    result = check_response(fixture_text("invalid_json.json"))
    assert result.failure_type == "parse_error"
    assert "ends abruptly" in result.message


@pytest.mark.parametrize("text", ["", "   ", '{"turns": [NaN]}', "not json at all"])
def test_unparseable_text_is_a_parse_error(text):
    body = {"type": "message", "stop_reason": "end_turn", "content": [{"type": "text", "text": text}], "usage": {}}
    assert check_response(body).failure_type == "parse_error"


# --- schema and conversation rules --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("missing_role.json", {(3, "INVALID_ROLE", "turns[2].role")}),
        (
            "roles_not_alternating.json",
            {(3, "ROLE_NOT_ALTERNATING", "turns[2]"), (4, "ROLE_NOT_ALTERNATING", "turns[3]")},
        ),
        ("intensity_out_of_range.json", {(4, "INTENSITY_OUT_OF_RANGE", "turns[3].emotional_context.intensity")}),
        ("empty_content.json", {(5, "EMPTY_CONTENT", "turns[4].content")}),
        ("single_turn.json", {(None, "INSUFFICIENT_TURNS", "turns"), (1, "LAST_NOT_ASSISTANT", "turns[0]")}),
    ],
)
def test_schema_violations(name, expected):
    result = check_response(fixture(name))
    assert (result.ok, result.failure_type) == (False, "schema_error")
    assert {(f.turn_number, f.code, f.path) for f in result.findings} == expected
    assert all(f.category == "schema_error" for f in result.findings)


def test_intensity_message_names_the_path_and_value():
    result = check_response(fixture("intensity_out_of_range.json"))
    assert (
        result.message
        == "schema: 1 problem(s): turns[3].emotional_context.intensity: 1.4 is greater than the maximum of 1"
    )


def test_every_problem_is_listed():
    data = fixture("clean_conversation.json")
    data["conversation_metadata"]["mood"] = "sunny"
    del data["conversation_metadata"]["session_context"]
    data["turns"][0]["role"] = "assistant"
    data["turns"][1]["emotional_context"]["intensity"] = -0.2
    data["turns"][2]["content"] = ""
    data["turns"][4]["emotional_context"] = {"intensity": 0.5}
    data["turns"][5]["turn_number"] = 0.5
    result = check_response(data)
    assert result.failure_type == "schema_error"
    assert codes(result) >= {
        (None, "UNKNOWN_FIELD"),
        (None, "MISSING_SESSION_CONTEXT"),
        (1, "FIRST_NOT_USER"),
        (2, "ROLE_NOT_ALTERNATING"),
        (2, "INTENSITY_OUT_OF_RANGE"),
        (3, "EMPTY_CONTENT"),
        (5, "MISSING_PRIMARY_EMOTION"),
        (6, "INVALID_TYPE"),
    }
    assert all(f.message in result.message for f in result.findings)


def test_duplicate_turn_numbers_and_non_finite_intensity():
    data = fixture("clean_conversation.json")
    data["turns"][3]["turn_number"] = 3
    data["turns"][5]["emotional_context"]["intensity"] = math.nan
    result = check_response(data)
    assert {(3, "DUPLICATE_TURN_NUMBER"), (6, "INTENSITY_OUT_OF_RANGE")} <= codes(result)


@pytest.mark.parametrize("body", [[], "[1, 2]", 42, {"turns": "none"}])
def test_wrong_shapes_are_schema_errors_not_exceptions(body):
    assert check_response(body).failure_type == "schema_error"


# --- truncation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "turn", "code"),
    [
        ("trailing_backslash.json", 4, "TRAILING_BACKSLASH"),
        ("cut_mid_word.json", 4, "ENDS_MID_SENTENCE"),
        ("unbalanced_quotes.json", 2, "UNBALANCED_QUOTES"),
        ("unbalanced_brackets.json", 6, "UNBALANCED_BRACKETS"),
    ],
)
def test_truncated_turns_are_flagged(name, turn, code):
    result = check_response(fixture(name))
    assert (result.ok, result.failure_type, result.failure_types) == (False, "truncation", ["truncation"])
    assert codes(result) == {(turn, code)}
    assert result.findings[0].role == "assistant" and result.findings[0].category == "truncation"
    assert f"truncated assistant turn(s): {turn} ({code})" == result.message
    assert result.conversation is None


def test_truncation_wins_over_schema_problems_but_both_are_reported():
    data = fixture("trailing_backslash.json")
    data["turns"][0]["emotional_context"]["intensity"] = 2
    result = check_response(data)
    assert result.failure_type == "truncation"
    assert result.failure_types == ["truncation", "schema_error"]
    assert codes(result) == {(4, "TRAILING_BACKSLASH"), (1, "INTENSITY_OUT_OF_RANGE")}
    assert "schema: 1 problem(s)" in result.message


def test_user_turns_are_not_checked_for_truncation():
    data = fixture("clean_conversation.json")
    data["turns"][2]["content"] = "I was going to ask about the"
    assert check_response(data).ok


CLEAN_ENDINGS = [
    "That's a real milestone. 🎉",
    'As one client put it, "I finally feel in charge."',
    "Start with the smallest balance (it builds momentum.)",
    "Take your time with this…",
    "We can take it from here...",
    "Here's the order I'd suggest:\n\n1) Emergency fund\n2) Employer match\n3) Roth IRA",
    "Your next steps:\n- Open the savings account\n- Set up the automatic transfer",
    "## Your plan at a glance",
    "That's it for today :)",
    "**You've got this.**",
    "Your parents' gift and your kids' accounts can work together, and that's worth celebrating!",
    "Let's look at that together — what would feel like progress to you?",
    "I'd call that a \u2018good problem\u2019 to have.",
]


@pytest.mark.parametrize("ending", CLEAN_ENDINGS)
def test_clean_endings_are_not_flagged(ending):
    long_turn = "You are doing the right thing by asking. " * 20 + "Does that help?"
    turns = conversation(long_turn, ending, long_turn)
    assert truncation_findings(turns) == []


def test_turn_number_below_one_is_invalid():
    data = fixture("clean_conversation.json")
    data["turns"][0]["turn_number"] = 0
    assert codes(check_response(data)) == {(0, "INVALID_TURN_NUMBER")}


def test_capital_a_is_a_name_not_an_article():
    other = "We compared both options side by side and looked at what each one costs you over ten years. " * 3
    assert truncation_findings(conversation(other + "Option A works, and so does Plan A", other + ".")) == []
    assert [f.code for f in truncation_findings(conversation(other + "Option A works, and so does a", other))] == [
        "DANGLING_ENDING"
    ]


def test_long_unpunctuated_turn_is_not_flagged():
    text = "Here is the plan we agreed on, step by step, and the numbers that go with it. " * 8 + "Warmly, Elena"
    assert truncation_findings(conversation(text, text[:-40] + ".", text)) == []


@pytest.mark.parametrize(
    ("ending", "code"),
    [
        ("Thank you for sharing that, and", "DANGLING_ENDING"),
        ("The first thing I'd look at is the", "DANGLING_ENDING"),
        ("Let's start with your emergency fund,", "DANGLING_ENDING"),
        ("There are two options (the first being", "UNBALANCED_BRACKETS"),
        ("You could simply tell them, “I'm starting now", "UNBALANCED_QUOTES"),
        ("That is completely understandable, and it's a good reas", "ENDS_MID_SENTENCE"),
        ("The money sitting in your savings account isn't \\", "TRAILING_BACKSLASH"),
        ("A lot of people feel this way. What I'd recommend is to", "DANGLING_ENDING"),
    ],
)
def test_truncated_endings_are_flagged(ending, code):
    long_turn = "You are doing the right thing by asking. " * 20 + "Does that help?"
    findings = truncation_findings(conversation(long_turn, ending, long_turn))
    assert code in {f.code for f in findings}
    assert {f.turn_number for f in findings} == {4}


def test_unpunctuated_ending_needs_a_far_shorter_turn():
    other = "x" * 199 + "."
    near = "a" * int(200 * SHORT_TURN_RATIO) + " and then we talk"
    far = "a" * int(200 * SHORT_TURN_RATIO * 0.5) + " and then we talk"
    assert truncation_findings(conversation(other, near, other)) == []
    assert [f.code for f in truncation_findings(conversation(other, far, other))] == ["ENDS_MID_SENTENCE"]


def test_double_escaped_line_breaks_are_not_mistaken_for_a_backslash():
    text = "First point.\\n\\nSecond point, which matters most.\\n"
    assert truncation_findings(conversation(text, text)) == []


# --- remaining-token analysis -------------------------------------------------------------------


def test_remaining_tokens_analysis():
    hit = remaining_tokens_analysis(usage={"output_tokens": 16000}, max_tokens=16000, stop_reason="max_tokens")
    assert hit["remaining"] == 0 and hit["percent_used"] == 100.0 and hit["likely_cause"].startswith("hit max_tokens")
    low = remaining_tokens_analysis(usage={"output_tokens": 2400}, max_tokens=16000)
    assert (low["remaining"], low["percent_used"]) == (13600, 15.0)
    assert low["likely_cause"].startswith("well under")
    assert remaining_tokens_analysis(usage={"output_tokens": 15500}, max_tokens=16000)["likely_cause"].startswith(
        "close"
    )
    assert remaining_tokens_analysis(usage={}, max_tokens=16000)["remaining"] is None


# --- the earlier product's files (../shared, read-only) -----------------------------------------


@no_reference
def test_reference_truncated_raw_flags_exactly_turns_2_and_4():
    result = check_response(RAW_TRUNCATED.read_text(encoding="utf-8"))
    assert result.failure_type == "truncation"
    truncation = {(f.turn_number, f.code) for f in result.findings if f.category == "truncation"}
    assert truncation == {(2, "TRAILING_BACKSLASH"), (4, "TRAILING_BACKSLASH")}
    # The file also ends on a user turn: a separate, conversation-shape finding, not a truncated turn.
    others = {(f.turn_number, f.code) for f in result.findings if f.category != "truncation"}
    assert others == {(5, "LAST_NOT_ASSISTANT")}


@pytest.mark.skipif(not RAW_CLEAN.exists(), reason="../shared reference data not present")
def test_reference_clean_raw_is_accepted():
    result = check_response(RAW_CLEAN.read_text(encoding="utf-8"), persona_display_name="Alex Rivera - The Skeptic")
    assert result.ok and result.findings == []
    assert result.conversation["conversation_metadata"]["client_persona"] == "Alex Rivera - The Skeptic"


def _gold_conversation(path: Path) -> dict:
    pairs = json.loads(path.read_text(encoding="utf-8"))["training_pairs"]
    turns = []
    for pair in pairs:
        for role, content in (("user", pair["current_user_input"]), ("assistant", pair["target_response"])):
            emotion = {"primary_emotion": "calm", "intensity": 0.5}
            turns.append(
                {"turn_number": len(turns) + 1, "role": role, "content": content, "emotional_context": emotion}
            )
    meta = copy.deepcopy(pairs[0]["conversation_metadata"])
    return {
        "conversation_metadata": {k: meta[k] for k in ("client_persona", "session_context", "conversation_phase")},
        "turns": turns,
    }


@pytest.mark.skipif(not GOLD, reason="../shared reference data not present")
@pytest.mark.parametrize("path", GOLD, ids=lambda p: p.name[-16:])
def test_gold_conversations_are_never_flagged(path):
    result = check_response(_gold_conversation(path))
    assert result.ok, result.message


@no_reference
def test_old_products_cut_turns_are_all_flagged_and_nothing_else():
    """Every assistant turn in the old training files that ends on the escaping bug's backslash is flagged;
    none of the hundreds of other turns is."""
    flagged = missed = false_positive = clean = 0
    for path in sorted(REFERENCE.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue  # convo-10 is invalid JSON on purpose
        groups = data.get("conversations", [data]) if isinstance(data, dict) else []
        for group in groups:
            by_conversation: dict = {}
            for pair in group.get("training_pairs", []):
                if isinstance(pair.get("target_response"), str):
                    by_conversation.setdefault(pair.get("conversation_id"), []).append(pair["target_response"])
            for texts in by_conversation.values():
                found = {f.turn_number for f in truncation_findings(conversation(*texts))}
                for i, text in enumerate(texts):
                    cut, hit = text.rstrip().endswith("\\"), 2 * (i + 1) in found
                    flagged += cut and hit
                    missed += cut and not hit
                    false_positive += hit and not cut
                    clean += not cut and not hit
    assert flagged >= 20 and clean >= 300
    assert (missed, false_positive) == (0, 0)
