"""Accepting a Claude response before anything is stored as a conversation (SPEC §4.3 steps 2 to 5).

Pure functions, no database access, nothing raises on bad input: every problem becomes a finding. The
generation service calls `check_response` on each response body and stores either `result.conversation` or a
failed-generation row built from the result; `manage.py inspect_generation` runs the same checks on a saved body.

Order: the stop reason, then JSON parsing (either failing ends the checks), then the schema and conversation
rules and the truncation detector, which both run on whatever turns can be read so that a response is reported
completely. When both find problems the failure type is `truncation`: a cut-off turn is the cause worth
counting (it often breaks the structure too), and the schema problems stay in the findings and the message.
"""

from __future__ import annotations

import copy
import json
import math
import re
import statistics
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

# --- schemas ------------------------------------------------------------------------------------

#: Sent to Claude's structured outputs. Anthropic requires `additionalProperties: false` on every object and
#: rejects numeric ranges, string lengths and minItems > 1, so those rules live in VALIDATION_SCHEMA.
CONVERSATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "conversation_metadata": {
            "type": "object",
            "properties": {
                "client_persona": {"type": "string"},
                "session_context": {"type": "string"},
                "conversation_phase": {"type": "string"},
                "expected_outcome": {"type": "string"},
            },
            "required": ["client_persona", "session_context", "conversation_phase"],
            "additionalProperties": False,
        },
        "turns": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "turn_number": {"type": "integer"},
                    "role": {"type": "string", "enum": ["user", "assistant"]},
                    "content": {"type": "string"},
                    "emotional_context": {
                        "type": "object",
                        "properties": {
                            "primary_emotion": {"type": "string"},
                            "secondary_emotion": {"type": "string"},
                            "intensity": {"type": "number"},
                        },
                        "required": ["primary_emotion", "intensity"],
                        "additionalProperties": False,
                    },
                },
                "required": ["turn_number", "role", "content", "emotional_context"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["conversation_metadata", "turns"],
    "additionalProperties": False,
}


def _strict_schema() -> dict[str, Any]:
    schema = copy.deepcopy(CONVERSATION_SCHEMA)
    for name in ("client_persona", "session_context", "conversation_phase"):
        schema["properties"]["conversation_metadata"]["properties"][name]["minLength"] = 1
    schema["properties"]["turns"]["minItems"] = 2
    turn = schema["properties"]["turns"]["items"]["properties"]
    turn["turn_number"]["minimum"] = 1
    turn["content"]["minLength"] = 1
    turn["emotional_context"]["properties"]["primary_emotion"]["minLength"] = 1
    turn["emotional_context"]["properties"]["intensity"].update(minimum=0, maximum=1)
    return schema


#: What responses are validated against: CONVERSATION_SCHEMA plus the ranges it cannot carry.
VALIDATION_SCHEMA: dict[str, Any] = _strict_schema()
_VALIDATOR = Draft202012Validator(VALIDATION_SCHEMA)

# --- results ------------------------------------------------------------------------------------

TRUNCATION, PARSE_ERROR, SCHEMA_ERROR, STOP_REASON = "truncation", "parse_error", "schema_error", "stop_reason"


@dataclass(frozen=True)
class TurnFinding:
    """One problem. `turn_number`/`role` are None for conversation-level problems; `category` is the failure
    type it counts towards; `path` is a JSON path with 0-based indexes (`turns[2].emotional_context.intensity`)."""

    turn_number: int | None
    role: str | None
    code: str
    message: str
    category: str = SCHEMA_ERROR
    path: str = ""


@dataclass(frozen=True)
class Extracted:
    """The conversation part of a body: `text` still to parse, or `data` when it came decoded."""

    text: str | None
    data: Any = None
    stop_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    is_message: bool = False
    from_tool_use: bool = False


@dataclass(frozen=True)
class AcceptanceResult:
    """The verdict on one response. `conversation` is set only when `ok`: known fields only, turns sorted by
    turn_number, persona replaced. `decoded` is the parsed JSON as received (reports), `failure_types` every
    category that found something (the first is `failure_type`), `notes` what was fixed (persona drift)."""

    ok: bool
    failure_type: str | None
    message: str
    findings: list[TurnFinding] = field(default_factory=list)
    conversation: dict[str, Any] | None = None
    stop_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    failure_types: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    decoded: Any = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary without the conversation text (failure rows, reports)."""
        return {
            "ok": self.ok,
            "failure_type": self.failure_type,
            "failure_types": list(self.failure_types),
            "message": self.message,
            "findings": [asdict(f) for f in self.findings],
            "notes": list(self.notes),
            "stop_reason": self.stop_reason,
            "usage": dict(self.usage),
        }


# --- extraction and the checks ------------------------------------------------------------------


def extract(body: dict | str) -> Extracted:
    """Find the conversation in a Messages API response body, or take `body` as the bare conversation JSON.

    A string is decoded only to tell the two apart; a string that is not JSON comes back as bare text for the
    parse step to report. A `tool_use` block (forced-tool enforcement) yields its `input` as `data`.
    """
    if isinstance(body, str):
        try:
            decoded = json.loads(body)
        except ValueError:
            return Extracted(text=body)
        if not _is_message(decoded):
            return Extracted(text=body)
        body = decoded
    if not _is_message(body):
        return Extracted(text=None, data=body)
    usage = body["usage"] if isinstance(body.get("usage"), dict) else {}
    common = {"stop_reason": body.get("stop_reason"), "usage": usage, "is_message": True}
    blocks = [b for b in body.get("content") or [] if isinstance(b, dict)]
    for block in blocks:
        if block.get("type") == "tool_use":
            return Extracted(text=None, data=block.get("input"), from_tool_use=True, **common)
    return Extracted(text="".join(str(b.get("text") or "") for b in blocks if b.get("type") == "text"), **common)


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "message" and "content" in value


def check_response(
    body: dict | str, *, max_tokens: int | None = None, persona_display_name: str | None = None
) -> AcceptanceResult:
    """Check a response body (Messages API response or bare conversation JSON) as SPEC §4.3 steps 2 to 5 say.

    `max_tokens` is the request's limit (quoted when the stop reason is max_tokens); `persona_display_name`
    ("Name - Archetype") replaces the model's `client_persona`.
    """
    ex = extract(body)
    common = {"stop_reason": ex.stop_reason, "usage": dict(ex.usage)}
    if ex.is_message and ex.stop_reason == "max_tokens":
        limit = max_tokens if max_tokens is not None else ex.usage.get("output_tokens")
        message = "truncated by max_tokens" + (f" ({limit})" if limit is not None else "")
        return _failed(TRUNCATION, message, [TurnFinding(None, None, "MAX_TOKENS", message, TRUNCATION)], **common)
    if ex.is_message and ex.stop_reason not in ({"end_turn", "tool_use"} if ex.from_tool_use else {"end_turn"}):
        message = f"stop_reason {ex.stop_reason!r} (expected 'end_turn')"
        finding = TurnFinding(None, None, "UNEXPECTED_STOP_REASON", message, STOP_REASON)
        return _failed(STOP_REASON, message, [finding], **common)

    data, error = (ex.data, "") if ex.data is not None else _parse(ex.text)
    if error:
        return _failed(PARSE_ERROR, error, [TurnFinding(None, None, "INVALID_JSON", error, PARSE_ERROR)], **common)

    turns = _readable_turns(data)
    schema = list({(f.path, f.code): f for f in _schema_findings(data) + _rule_findings(turns)}.values())
    truncated = _truncation_findings(turns)
    notes = _persona_notes(data, persona_display_name)
    failure_types = [name for name, found in ((TRUNCATION, truncated), (SCHEMA_ERROR, schema)) if found]
    if failure_types:
        message = "; ".join(part for part in (_truncation_message(truncated), _schema_message(schema)) if part)
        findings = sorted(truncated + schema, key=_finding_order)
        return _failed(
            failure_types[0], message, findings, failure_types=failure_types, notes=notes, decoded=data, **common
        )
    conversation = _normalise(data, persona_display_name)
    return AcceptanceResult(True, None, "accepted", conversation=conversation, notes=notes, decoded=data, **common)


def _failed(failure_type: str, message: str, findings: list[TurnFinding], **kwargs: Any) -> AcceptanceResult:
    kwargs.setdefault("failure_types", [failure_type])
    return AcceptanceResult(ok=False, failure_type=failure_type, message=message, findings=findings, **kwargs)


def _finding_order(f: TurnFinding) -> tuple:
    return (f.turn_number is None, f.turn_number or 0, f.category != TRUNCATION, f.path)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _parse(text: str | None) -> tuple[Any, str]:
    if text is None or not text.strip():
        return None, "the response has no text content"
    try:
        return json.loads(text, parse_constant=_reject_constant), ""
    except json.JSONDecodeError as exc:
        hint = " (the JSON ends abruptly: output cut off?)" if exc.pos >= len(text.rstrip()) - 1 else ""
        return None, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos}){hint}"
    except (ValueError, RecursionError) as exc:
        return None, f"invalid JSON: {exc}"


def _readable_turns(data: Any) -> list[tuple[int, Mapping]]:
    """(array index, turn) for every turn that is an object, in conversation order (by turn_number)."""
    turns = data.get("turns") if isinstance(data, dict) else None
    readable = [(i, t) for i, t in enumerate(turns) if isinstance(t, dict)] if isinstance(turns, list) else []
    return sorted(readable, key=lambda it: (_turn_number(it[1], it[0]), it[0]))


def _turn_number(turn: Mapping, index: int) -> int:
    """The turn's own number when it is a whole number, else its 1-based position."""
    n = turn.get("turn_number")
    valid = isinstance(n, int | float) and not isinstance(n, bool) and math.isfinite(n) and n == int(n)
    return int(n) if valid else index + 1


_MISSING_CODES = {
    "turns": "MISSING_TURNS",
    "conversation_metadata": "MISSING_CONVERSATION_METADATA",
    "client_persona": "MISSING_CLIENT_PERSONA",
    "session_context": "MISSING_SESSION_CONTEXT",
    "conversation_phase": "MISSING_CONVERSATION_PHASE",
    "turn_number": "MISSING_TURN_NUMBER",
    "role": "INVALID_ROLE",
    "content": "MISSING_CONTENT",
    "emotional_context": "MISSING_EMOTIONAL_CONTEXT",
    "primary_emotion": "MISSING_PRIMARY_EMOTION",
    "intensity": "MISSING_INTENSITY",
}
_REQUIRED = re.compile(r"^'(.+)' is a required property$")


def _schema_findings(data: Any) -> list[TurnFinding]:
    """Every JSON Schema error, with a stable code and the JSON path of the offending value."""
    findings = []
    for error in _VALIDATOR.iter_errors(data):
        segments, keyword, message = list(error.absolute_path), error.validator, error.message
        leaf = str(segments[-1]) if segments else ""
        if keyword == "required":
            leaf = m.group(1) if (m := _REQUIRED.match(error.message)) else leaf
            segments.append(leaf)
            code, message = _MISSING_CODES.get(leaf, "MISSING_FIELD"), "required field missing"
        elif keyword == "additionalProperties":
            code = "UNKNOWN_FIELD"
        elif keyword == "enum" or (keyword == "type" and leaf == "role"):
            code = "INVALID_ROLE"
        elif keyword in {"minimum", "maximum"}:
            code = "INTENSITY_OUT_OF_RANGE" if leaf == "intensity" else "INVALID_TURN_NUMBER"
        elif keyword == "minItems":
            code, message = "INSUFFICIENT_TURNS", f"at least 2 turns are required, got {len(error.instance)}"
        elif keyword == "minLength":
            code, message = ("EMPTY_CONTENT" if leaf == "content" else "EMPTY_FIELD"), "is empty"
        elif keyword == "type" and not segments:
            code, message = "INVALID_TYPE", f"the conversation must be a JSON object, got {type(data).__name__}"
        else:
            code = "INVALID_TYPE" if keyword == "type" else "SCHEMA_VIOLATION"
        path = _json_path(segments)
        number, role = _turn_ref(data, segments)
        findings.append(TurnFinding(number, role, code, f"{path}: {message}" if path else message, SCHEMA_ERROR, path))
    return findings


def _json_path(segments: Sequence[Any]) -> str:
    return "".join(f"[{s}]" if isinstance(s, int) else (f".{s}" if i else str(s)) for i, s in enumerate(segments))


def _turn_ref(data: Any, segments: Sequence[Any]) -> tuple[int | None, str | None]:
    if len(segments) < 2 or segments[0] != "turns" or not isinstance(segments[1], int):
        return None, None
    turn = data["turns"][segments[1]]
    if not isinstance(turn, dict):
        return segments[1] + 1, None
    return _turn_number(turn, segments[1]), turn["role"] if isinstance(turn.get("role"), str) else None


def _rule_findings(turns: list[tuple[int, Mapping]]) -> list[TurnFinding]:
    """What JSON Schema cannot say: unique turn numbers, finite intensities, non-blank content, and roles that
    alternate from `user` and end on `assistant`."""
    findings, seen, previous = [], set(), None
    for position, (index, turn) in enumerate(turns):
        number, role = _turn_number(turn, index), turn.get("role")
        role = role if isinstance(role, str) else None
        at = f"turns[{index}]"

        def add(code: str, message: str, path: str, number=number, role=role) -> None:
            findings.append(TurnFinding(number, role, code, message, SCHEMA_ERROR, path))

        if number in seen:
            add("DUPLICATE_TURN_NUMBER", f"turn_number {number} appears more than once", f"{at}.turn_number")
        seen.add(number)
        emotion = turn.get("emotional_context")
        intensity = emotion.get("intensity") if isinstance(emotion, dict) else None
        if isinstance(intensity, float) and not math.isfinite(intensity):
            add(
                "INTENSITY_OUT_OF_RANGE",
                f"intensity {intensity} is not within 0..1",
                f"{at}.emotional_context.intensity",
            )
        content = turn.get("content")
        if isinstance(content, str) and not content.strip():
            add("EMPTY_CONTENT", f"{at}.content: is empty", f"{at}.content")
        if role not in {"user", "assistant"}:
            previous = None  # the schema reports the role; alternation restarts after it
            continue
        if position == 0 and role != "user":
            add("FIRST_NOT_USER", f"the conversation must start with a user turn, turn {number} is {role}", at)
        if previous == role:
            add("ROLE_NOT_ALTERNATING", f"turn {number} is a second {role} turn in a row", at)
        previous = role
        if position == len(turns) - 1 and role != "assistant":
            add("LAST_NOT_ASSISTANT", f"the conversation must end with an assistant turn, turn {number} is {role}", at)
    return findings


def _schema_message(findings: list[TurnFinding]) -> str:
    return f"schema: {len(findings)} problem(s): " + "; ".join(f.message for f in findings) if findings else ""


def _truncation_message(findings: list[TurnFinding]) -> str:
    turns = sorted({f.turn_number for f in findings if f.turn_number is not None})
    codes = {n: "/".join(f.code for f in findings if f.turn_number == n) for n in turns}
    return "truncated assistant turn(s): " + ", ".join(f"{n} ({codes[n]})" for n in turns) if turns else ""


# --- truncation detector ------------------------------------------------------------------------

#: An ending without terminal punctuation counts as truncation only in a turn shorter than this share of the
#: median length of the other assistant turns: a clean turn can end on a list item, a sign-off or a URL. In the
#: earlier product's files, 2 of 359 clean assistant turns are under half the median (both end with
#: punctuation) while half of its 23 cut turns are; the other cut turns are caught by their endings.
SHORT_TURN_RATIO = 0.5

_TERMINAL = set(".!?\u2026")  # … as well
_CLOSERS = "\"')]}\u201d\u2019\u00bb"  # straight and curly closing quotes, brackets, guillemet
_DANGLING_PUNCT = set(",([{\u201c\u2018")  # a comma, an opening bracket or curly quote
#: Words no finished sentence, list item or heading ends with (case-insensitive; "A" as in "Plan A" is fine).
_DANGLING_WORDS = frozenset("a an the and or but nor than your my our their its whose because whether".split())
#: Words no finished sentence ends with but a list item can ("- what you are saving for"): not flagged there.
_CONNECTOR_WORDS = frozenset(
    "to as of with for from into onto which who whom is are was were be been will would should could can might must "
    "if when where while very".split()
)
_TRAILING_NOISE = re.compile(r"(?:\s|\\[nrt])+$")  # whitespace, and the literal "\n" of double-escaped output
_EMPHASIS = re.compile(r"(?:\*\*?|__?|`+|~~)+$")
_EMOTICON = re.compile(r"(?<!\w)[:;=8][-o^']?[()\[\]DPp](?!\w)")
_EMOTICON_END = re.compile(r"(?<!\w)[:;=8][-o^']?[)\]DPp]$")
_LIST_OR_HEADING = re.compile(r"^\s*(?:[-*\u2022+]|\d+[.)]|#{1,6})\s")
_LINE_BREAK = re.compile(r"\n|\\n")
_PAIRS = {"(": ")", "[": "]", "{": "}"}


def truncation_findings(turns: Sequence[Mapping]) -> list[TurnFinding]:
    """Truncation findings for the assistant turns among `turns` (decoded turn objects, in order).

    Signals: a lone trailing backslash; an odd number of straight double quotes or a curly quote opened last;
    a bracket never closed; an ending on a comma, an opening bracket or quote, or a word no sentence ends with;
    an ending without terminal punctuation in a turn far shorter than the others (SHORT_TURN_RATIO).
    """
    return _truncation_findings(list(enumerate(turns)))


def _truncation_findings(turns: list[tuple[int, Mapping]]) -> list[TurnFinding]:
    """`truncation_findings` over (array index, turn) pairs, so paths name the turn's place in the response."""
    assistant = [(i, t) for i, t in turns if t.get("role") == "assistant" and isinstance(t.get("content"), str)]
    lengths = [len(t["content"].strip()) for _, t in assistant]
    findings = []
    for position, (index, turn) in enumerate(assistant):
        others = lengths[:position] + lengths[position + 1 :]
        median = statistics.median(others) if others else None
        for code, message in _turn_truncation(turn["content"], median):
            number = _turn_number(turn, index)
            findings.append(TurnFinding(number, "assistant", code, message, TRUNCATION, f"turns[{index}].content"))
    return findings


def _turn_truncation(content: str, median_of_others: float | None) -> list[tuple[str, str]]:
    text = _TRAILING_NOISE.sub("", content)
    if not text:
        return []
    tail = "«" + ("…" if len(text) > 40 else "") + text[-40:].replace("\n", "↵") + "»"
    found = []
    backslashes = len(text) - len(text.rstrip("\\"))
    if backslashes % 2:
        found.append(("TRAILING_BACKSLASH", f"ends with a lone backslash: {tail}"))
    quotes = text.count('"')
    if quotes % 2 or text.rfind("\u201c") > text.rfind("\u201d"):
        found.append(("UNBALANCED_QUOTES", f"a quotation is opened and never closed ({quotes} straight quotes)"))
    if unclosed := _unclosed_brackets(text):
        found.append(("UNBALANCED_BRACKETS", f"never closed: {unclosed}"))
    if backslashes:
        return found  # the ending checks would only restate the cut-off already reported
    ending, length = _ending_problem(text), len(content.strip())
    if ending == "dangling":
        found.append(("DANGLING_ENDING", f"ends mid-sentence: {tail}"))
    elif ending == "unpunctuated" and median_of_others and length < SHORT_TURN_RATIO * median_of_others:
        found.append(
            (
                "ENDS_MID_SENTENCE",
                f"ends without terminal punctuation at {length} chars, against a median of {median_of_others:.0f} "
                f"for the other assistant turns: {tail}",
            )
        )
    return found


def _unclosed_brackets(text: str) -> str:
    """Openers never closed, e.g. "( x1". Stray closers ("1)" list markers, smileys) are not truncation."""
    depth = dict.fromkeys(_PAIRS, 0)
    closers = {v: k for k, v in _PAIRS.items()}
    for ch in _EMOTICON.sub("", text):
        if ch in depth:
            depth[ch] += 1
        elif ch in closers and depth[closers[ch]]:
            depth[closers[ch]] -= 1
    return ", ".join(f"{opener} x{n}" for opener, n in depth.items() if n)


def _ending_problem(text: str) -> str:
    """'' for a finished ending, 'dangling' for one no sentence has, 'unpunctuated' for no terminal punctuation."""
    core = _EMPHASIS.sub("", text).rstrip()
    if not core:
        return ""
    last = core[-1]
    if last in _DANGLING_PUNCT or (last in "\"'" and len(core) > 1 and core[-2].isspace()):
        return "dangling"
    if last in _TERMINAL or core.rstrip(_CLOSERS)[-1:] in _TERMINAL or _EMOTICON_END.search(core):
        return ""  # also: a closing quote or bracket after the punctuation, a smiley
    last_line = _LINE_BREAK.split(core)[-1]
    word = m.group(0) if (m := re.search(r"[A-Za-z']+$", last_line)) else ""
    if word != "A" and word.lower() in _DANGLING_WORDS:
        return "dangling"
    if _is_emoji(last) or _LIST_OR_HEADING.match(last_line):
        return ""
    return "dangling" if word.lower() in _CONNECTOR_WORDS else "unpunctuated"


def _is_emoji(ch: str) -> bool:
    return unicodedata.category(ch) == "So" or ord(ch) >= 0x1F000 or ch in "\ufe0f\u200d"


# --- persona, normalisation, token analysis -----------------------------------------------------


def _persona_notes(data: Any, persona_display_name: str | None) -> list[str]:
    meta = data.get("conversation_metadata") if isinstance(data, dict) else None
    current = meta.get("client_persona") if isinstance(meta, dict) else None
    if not persona_display_name or not isinstance(current, str) or current == persona_display_name:
        return []
    return [f"client_persona {current!r} replaced with {persona_display_name!r}"]


def _normalise(data: dict[str, Any], persona_display_name: str | None) -> dict[str, Any]:
    meta = dict(data["conversation_metadata"])
    if persona_display_name:
        meta["client_persona"] = persona_display_name
    turns = [
        {
            "turn_number": _turn_number(turn, index),
            "role": turn["role"],
            "content": turn["content"],
            "emotional_context": {
                **turn["emotional_context"],
                "intensity": float(turn["emotional_context"]["intensity"]),
            },
        }
        for index, turn in _readable_turns(data)
    ]
    return {"conversation_metadata": meta, "turns": turns}


def remaining_tokens_analysis(
    *, usage: Mapping[str, Any] | None, max_tokens: int | None, stop_reason: str | None = None
) -> dict[str, Any]:
    """How much of the max_tokens budget a failed response used and what that says about the cause."""
    output = (usage or {}).get("output_tokens")
    output = int(output) if isinstance(output, int | float) and not isinstance(output, bool) else None
    if not max_tokens or output is None:
        return {
            "max_tokens": max_tokens,
            "output_tokens": output,
            "remaining": None,
            "percent_used": None,
            "likely_cause": "unknown: max_tokens or the output token count is missing",
        }
    remaining, percent = max_tokens - output, round(100 * output / max_tokens, 1)
    if stop_reason == "max_tokens" or remaining <= 0:
        cause = "hit max_tokens: the output was cut off by the token limit; raise max_tokens or ask for fewer turns"
    elif percent >= 95:
        cause = "close to max_tokens: the limit may have cut the output; raise max_tokens"
    else:
        cause = "well under max_tokens: the token limit did not cause this failure"
    return {
        "max_tokens": max_tokens,
        "output_tokens": output,
        "remaining": remaining,
        "percent_used": percent,
        "likely_cause": cause,
    }
