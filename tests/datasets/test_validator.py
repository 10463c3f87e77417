"""The streaming dataset validator (SPEC §9.2): codes, formats, statistics, split, streaming and memory, and
parallel validation by byte ranges (``validate_ranges``: the same report as ``validate_stream``, compared whole).

Fixtures: ``fixtures/<CODE>.jsonl`` holds one small file per issue code (valid lines around one offending line).
LINE_TOO_LONG is generated here (it needs a > 4 MiB line). The reference files of the earlier product are used
only when they sit beside the checkout; ``fixtures/legacy_*.jsonl`` are this project's own equivalents.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import itertools
import json
import random
import tracemalloc
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from datasets.validation import (
    CODES,
    FORMATS,
    Example,
    Issue,
    Severity,
    ValidationReport,
    iter_examples,
    open_file_range,
    split_of,
    validate_ranges,
    validate_stream,
)
from datasets.validation.digest import example_digest, reference_digest
from datasets.validation.reader import LineReader, RangeStream
from datasets.validation.stats import DigestSet, StatsCollector

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = Path(settings.BASE_DIR).parent / "shared" / "reference" / "original"


def validate(data: bytes | str | Path, **kwargs) -> ValidationReport:
    if isinstance(data, Path):
        with data.open("rb") as stream:
            return validate_stream(stream, **kwargs)
    return validate_stream(io.BytesIO(data.encode() if isinstance(data, str) else data), **kwargs)


def jsonl(*objects) -> bytes:
    return "".join(json.dumps(o) + "\n" for o in objects).encode()


def chat(*pairs: tuple[str, str], **extra) -> dict:
    return {"messages": [{"role": role, "content": content} for role, content in pairs], **extra}


def lines_with(report: ValidationReport, code: str) -> list[int | None]:
    return [issue.line for issue in report.issues if issue.code == code]


def reference(name: str) -> Path:
    path = REFERENCE / name
    if not path.exists():
        pytest.skip("reference data not beside this checkout")
    return path


# --- one fixture per code --------------------------------------------------------------------------------------

LONG_LINE = 5 << 20

#: code → (fixture, lines where the code must be reported, validate_stream options). Each fixture yields its
#: code and no other (min_examples=1 keeps TOO_FEW_EXAMPLES out except in its own fixture).
CASES: dict[str, tuple[str, list[int | None], dict]] = {
    "INVALID_UTF8": ("INVALID_UTF8.jsonl", [2], {}),
    "INVALID_JSON": ("INVALID_JSON.jsonl", [2], {}),
    "NOT_AN_OBJECT": ("NOT_AN_OBJECT.jsonl", [3], {}),
    "LINE_TOO_LONG": ("generated", [2], {}),
    "MIXED_FORMATS": ("MIXED_FORMATS.jsonl", [3], {}),
    "MISSING_MESSAGES": ("MISSING_MESSAGES.jsonl", [2], {}),
    "EMPTY_MESSAGES": ("EMPTY_MESSAGES.jsonl", [2], {}),
    "UNKNOWN_ROLE": ("UNKNOWN_ROLE.jsonl", [2], {}),
    "SYSTEM_NOT_FIRST": ("SYSTEM_NOT_FIRST.jsonl", [3], {}),
    "ROLES_NOT_ALTERNATING": ("ROLES_NOT_ALTERNATING.jsonl", [2], {}),
    "CONTENT_NOT_STRING": ("CONTENT_NOT_STRING.jsonl", [2], {}),
    "EMPTY_CONTENT": ("EMPTY_CONTENT.jsonl", [2], {}),
    "NO_ASSISTANT_MESSAGE": ("NO_ASSISTANT_MESSAGE.jsonl", [2], {}),
    "LAST_NOT_ASSISTANT": ("LAST_NOT_ASSISTANT.jsonl", [3], {}),
    "INVALID_WEIGHT": ("INVALID_WEIGHT.jsonl", [2], {}),
    "MISSING_FIELD": ("MISSING_FIELD.jsonl", [2], {}),
    "EMPTY_FILE": ("EMPTY_FILE.jsonl", [None], {}),
    "TOO_FEW_EXAMPLES": ("TOO_FEW_EXAMPLES.jsonl", [None], {"min_examples": 10}),
    "FILE_TOO_LARGE": ("FILE_TOO_LARGE.jsonl", [None], {"max_bytes": 300}),
    "UNKNOWN_KEY": ("UNKNOWN_KEY.jsonl", [2], {}),
    "BOM_PRESENT": ("BOM_PRESENT.jsonl", [1], {}),
    "CRLF_LINE_ENDINGS": ("CRLF_LINE_ENDINGS.jsonl", [1], {}),
    "DUPLICATE_EXAMPLE": ("DUPLICATE_EXAMPLE.jsonl", [3], {}),
    "EXCEEDS_CONTEXT": ("EXCEEDS_CONTEXT.jsonl", [2], {"context_tokens": 50}),
}


def _case_input(code: str, name: str, tmp_path: Path) -> Path:
    if name != "generated":
        return FIXTURES / name
    assert code == "LINE_TOO_LONG"
    path = tmp_path / "long.jsonl"
    with path.open("wb") as handle:
        handle.write(json.dumps(chat(("user", "Hi"), ("assistant", "Hello"))).encode() + b"\n")
        handle.write(b'{"messages": [{"role": "user", "content": "' + b"x" * LONG_LINE + b'"}]}\n')
        handle.write(json.dumps(chat(("user", "Bye"), ("assistant", "Goodbye"))).encode() + b"\n")
    return path


@pytest.mark.parametrize("code", list(CODES))
def test_every_code_has_a_fixture_that_yields_exactly_it(code, tmp_path):
    assert code in CASES, f"no fixture for {code}: add tests/datasets/fixtures/{code}.jsonl and a CASES entry"
    name, expected_lines, options = CASES[code]
    report = validate(_case_input(code, name, tmp_path), **{"min_examples": 1, **options})
    assert lines_with(report, code) == expected_lines
    assert set(report.counts) == {code}, report.counts
    issue = next(issue for issue in report.issues if issue.code == code)
    assert issue.severity == CODES[code]
    assert issue.message and issue.suggestion
    assert report.status == ("invalid" if CODES[code] is Severity.ERROR else "valid")


def test_codes_and_formats_are_the_documented_ones():
    errors = {code for code, severity in CODES.items() if severity is Severity.ERROR}
    warnings = set(CODES) - errors
    assert warnings == {"UNKNOWN_KEY", "BOM_PRESENT", "CRLF_LINE_ENDINGS", "DUPLICATE_EXAMPLE", "EXCEEDS_CONTEXT"}
    assert len(errors) == 19
    assert FORMATS == ("chat", "brightrun-v4", "turns")


def test_messages_name_the_exact_problem():
    report = validate((FIXTURES / "ROLES_NOT_ALTERNATING.jsonl").read_bytes(), min_examples=1)
    (issue,) = report.issues
    assert issue.path == "messages[2].role"
    assert issue.message == (
        "messages[2].role is 'assistant' after another 'assistant'; roles must alternate user/assistant."
    )
    first = validate(jsonl(chat(("assistant", "Hi"), ("user", "?"), ("assistant", "!"))), min_examples=0)
    assert "before any 'user' message" in first.issues[0].message
    line = {"messages": [{"role": "user", "content": "Hi", "weight": 1}, {"role": "assistant", "content": "x"}]}
    (issue,) = validate(jsonl(line), min_examples=0).issues
    assert (issue.code, issue.path) == ("INVALID_WEIGHT", "messages[0].weight")
    assert "only assistant messages take a weight" in issue.message


def test_weight_must_be_integer_zero_or_one_not_bool():
    line = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "x", "weight": True}]}
    assert validate(jsonl(line), min_examples=0).counts == {"INVALID_WEIGHT": 1}
    line["messages"][1]["weight"] = 0
    report = validate(jsonl(line, chat(("user", "a"), ("assistant", "b"))), min_examples=1)
    assert report.is_valid
    assert report.statistics["trainable_pairs"] == 1  # weight 0 is context, not a pair


def test_message_that_is_not_an_object_and_missing_role():
    report = validate(
        jsonl({"messages": ["hi", {"content": "x"}, {"role": "assistant", "content": "y"}]}), min_examples=0
    )
    assert [(i.code, i.path) for i in report.issues if i.line == 1] == [
        ("NOT_AN_OBJECT", "messages[0]"),
        ("MISSING_FIELD", "messages[1].role"),
    ]


def test_unknown_keys_once_per_key_and_metadata_must_be_an_object():
    line = {
        "messages": [
            {"role": "user", "content": "Hi", "name": "sam", "lang": "en"},
            {"role": "assistant", "content": "Hello", "lang": "en"},
        ],
        "source": "x",
        "metadata": [],
    }
    report = validate(jsonl(line), min_examples=0)
    assert sorted((i.code, i.path) for i in report.issues) == [
        ("NOT_AN_OBJECT", "metadata"),
        ("UNKNOWN_KEY", "messages[0].lang"),
        ("UNKNOWN_KEY", "messages[1].lang"),
        ("UNKNOWN_KEY", "source"),
    ]


# --- formats ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "examples", "pairs"),
    [
        ("valid_chat.jsonl", "chat", 12, 29),
        ("valid_v4.jsonl", "brightrun-v4", 12, 12),
        ("valid_turns.jsonl", "turns", 10, 19),
    ],
)
def test_each_format_valid_file_is_clean(name, fmt, examples, pairs):
    report = validate(FIXTURES / name)
    assert report.as_dict()["issues"] == []
    assert (report.status, report.format, report.counts) == ("valid", fmt, {})
    assert report.statistics["examples"] == examples
    assert report.statistics["trainable_pairs"] == pairs
    assert validate(FIXTURES / name, format=fmt).is_valid


def test_chat_written_by_the_training_file_renderer_is_valid():
    """The project's own chat JSONL (``training_files.services.build.chat_record``) passes, without a database."""
    from conversations.models import Conversation, EmotionalArc, Persona, TrainingTopic, Turn
    from training_files.services.build import chat_record

    rng = random.Random(3)
    out = io.StringIO()
    for n in range(12):
        conversation = Conversation(
            id=uuid.uuid4(),
            persona=Persona(key="p"),
            emotional_arc=EmotionalArc(key="a"),
            training_topic=TrainingTopic(key="t"),
            quality_tier="production",
        )
        # Includes alternation breaks and a trailing user turn, which the renderer drops.
        roles = ["user", "assistant"] * (2 + n % 3) + rng.choice([[], ["user"], ["assistant", "user"]])
        turns = [Turn(index=i, role=role, content=f"{role} turn {i} of {n}") for i, role in enumerate(roles)]
        out.write(json.dumps(chat_record(conversation, turns, "You are a coach."), ensure_ascii=False) + "\n")
    report = validate(out.getvalue())
    assert (report.status, report.format, report.counts) == ("valid", "chat", {})


def test_v4_messages_paths_and_history_weights():
    pair = json.loads((FIXTURES / "valid_v4.jsonl").read_text().splitlines()[3])
    (example,) = list(iter_examples(io.BytesIO(jsonl(pair)), validation_percent=10))
    roles = [m["role"] for m in example.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert [m.get("weight") for m in example.messages] == [None, None, 0, None, 0, None, None]
    assert example.trainable_pairs == 1

    broken = dict(pair, target_response=None)
    broken["conversation_history"] = [dict(t) for t in pair["conversation_history"]]
    broken["conversation_history"][1]["role"] = "coach"
    report = validate(jsonl(broken), min_examples=0)
    assert sorted((i.code, i.path) for i in report.issues) == [
        ("MISSING_FIELD", "target_response"),
        ("UNKNOWN_ROLE", "conversation_history[1].role"),
    ]
    no_history = {k: v for k, v in pair.items() if k != "conversation_history"}
    assert validate(jsonl(no_history), min_examples=0).counts == {"MISSING_MESSAGES": 1}


def test_v4_meta_only_first_and_repeated_user_turn_explained():
    lines = (FIXTURES / "valid_v4.jsonl").read_text().splitlines()
    moved = "\n".join([lines[1], lines[0], *lines[2:]]) + "\n"
    report = validate(moved, min_examples=1)
    assert report.counts == {"MIXED_FORMATS": 1} and lines_with(report, "MIXED_FORMATS") == [2]

    pair = json.loads(lines[2])  # the old product repeated the current user turn at the end of the history
    pair["conversation_history"].append({"turn": 9, "role": "user", "content": pair["current_user_input"]})
    (issue,) = validate(jsonl(pair), min_examples=0).issues
    assert (issue.code, issue.path) == ("ROLES_NOT_ALTERNATING", "current_user_input")
    assert "appears twice" in issue.message


def test_turns_prompt_only_lines_are_warnings_not_errors():
    report = validate(
        jsonl(
            {"conversation_id": "a", "turns": [{"role": "user", "content": "Hi"}]},
            {
                "conversation_id": "b",
                "turns": [
                    {"role": "user", "content": "Q"},
                    {"role": "assistant", "content": "A"},
                    {"role": "user", "content": "Q2"},
                ],
            },
        ),
        min_examples=2,
    )
    assert report.is_valid
    assert {i.code: i.severity for i in report.issues} == {
        "NO_ASSISTANT_MESSAGE": Severity.WARNING,
        "LAST_NOT_ASSISTANT": Severity.WARNING,
    }
    assert report.statistics["examples"] == 2 and report.statistics["trainable_pairs"] == 1
    chat_report = validate(jsonl(chat(("user", "Hi"))), min_examples=0)
    assert chat_report.issues[0].severity is Severity.ERROR


def test_format_detection_skips_unrecognised_first_lines_and_respects_a_chosen_format():
    data = jsonl(
        {"hello": "world"},
        chat(("user", "a"), ("assistant", "b")),
        {"conversation_id": "x", "turns": [{"role": "user", "content": "a"}]},
    )
    report = validate(data, min_examples=1)
    assert report.format == "chat"
    assert [(i.line, i.code) for i in report.issues] == [(1, "MISSING_MESSAGES"), (3, "MIXED_FORMATS")]
    assert "detected from line 2" in report.issues[1].message
    chosen = validate(data, format="turns", min_examples=1)
    assert [(i.line, i.code) for i in chosen.issues] == [
        (1, "UNKNOWN_KEY"),
        (1, "MISSING_FIELD"),
        (1, "MISSING_MESSAGES"),
        (2, "MIXED_FORMATS"),
        (3, "NO_ASSISTANT_MESSAGE"),
    ]
    with pytest.raises(ValueError, match="unknown format"):
        validate(data, format="jsonl")


# --- the earlier product's files -------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["fixture", "reference"])
def test_legacy_invalid_file_errors_on_lines_2_to_6_only(source):
    path = FIXTURES / "legacy_invalid.jsonl" if source == "fixture" else reference("invalid-dataset.jsonl")
    report = validate(path)
    error_lines = {i.line for i in report.issues if i.severity is Severity.ERROR}
    assert error_lines == {2, 3, 4, 5, 6, None}
    assert lines_with(report, "TOO_FEW_EXAMPLES") == [None]
    assert all(i.severity is Severity.WARNING for i in report.issues if i.line == 1)
    assert report.format == "turns" and report.statistics["examples"] == 1


@pytest.mark.parametrize("source", ["fixture", "reference"])
def test_legacy_sample_has_five_examples_and_only_too_few(source):
    path = FIXTURES / "legacy_sample.jsonl" if source == "fixture" else reference("sample-dataset.jsonl")
    report = validate(path)
    assert report.counts == {"TOO_FEW_EXAMPLES": 1}
    assert report.statistics["examples"] == 5
    assert validate(path, min_examples=5).is_valid


def test_reference_chat_export_is_well_formed():
    report = validate(reference("test-output.jsonl"), min_examples=2)
    assert (report.status, report.format, report.counts) == ("valid", "chat", {})


# --- statistics, split, iter_examples --------------------------------------------------------------------------


def test_statistics_are_exact_on_a_small_file():
    data = jsonl(
        chat(("system", "s" * 8), ("user", "u" * 4), ("assistant", "a" * 10)),  # 22 chars → 6 tokens, a: 3
        chat(("user", "u" * 3), ("assistant", "a" * 5), ("user", "u" * 4), ("assistant", "a" * 8)),  # 20 → 5, a: 4
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a" * 12, "weight": 0}]},
        chat(("user", "x" * 400), ("assistant", "y" * 400)),  # 200 tokens
    )
    stats = validate(data, min_examples=1, validation_percent=0).statistics
    assert stats["examples"] == 4 and stats["trainable_pairs"] == 4 and stats["duplicates"] == 0
    assert stats["messages_per_example"] == {"min": 2, "mean": 2.75, "p50": 2, "p95": 4, "max": 4}
    tokens = stats["estimated_tokens"]
    assert (tokens["estimator"], tokens["label"]) == ("utf8_chars/4", "estimated")
    # per-example tokens: 6, 5, 4 (13 chars), 200; assistant: 3, 4, 0 (weight 0), 100
    assert (tokens["total"], tokens["assistant"]) == (215, 107)
    assert tokens["per_example"] == {"p50": 5, "p95": 200, "max": 200}
    assert stats["role_counts"] == {"system": 1, "user": 5, "assistant": 5}
    assert [s["line"] for s in stats["samples"]] == [1, 2, 3]
    assert stats["split"] == {
        "validation_percent": 0,
        "train": {"examples": 4, "trainable_pairs": 4, "tokens": 215, "assistant_tokens": 107},
        "validation": {"examples": 0, "trainable_pairs": 0, "tokens": 0, "assistant_tokens": 0},
    }
    histogram = stats["length_histogram"]
    assert len(histogram) == 12 and histogram[0] == {"min": 0, "max": 127, "count": 3}
    assert histogram[1] == {"min": 128, "max": 255, "count": 1} and histogram[-1]["max"] == 1 << 20
    json.dumps(stats)


def test_empty_dataset_statistics_are_zero_or_none():
    stats = validate(b"").statistics
    assert stats["examples"] == 0 and stats["messages_per_example"]["mean"] is None
    assert stats["estimated_tokens"]["per_example"] == {"p50": None, "p95": None, "max": None}
    assert stats["samples"] == [] and sum(b["count"] for b in stats["length_histogram"]) == 0


def test_samples_are_cut_to_1000_characters():
    stats = validate(jsonl(chat(("user", "q"), ("assistant", "z" * 5000))), min_examples=1).statistics
    assert len(stats["samples"][0]["messages"][1]["content"]) == 1000


def test_split_is_deterministic_and_keeps_duplicates_together():
    rng = random.Random(11)
    rows = [chat(("user", f"question {rng.random()}"), ("assistant", f"answer {i}")) for i in range(300)]
    rows += [rows[7], rows[42]]
    data = jsonl(*rows)
    first = [(e.line, e.split, e.digest) for e in iter_examples(io.BytesIO(data), validation_percent=20)]
    again = [(e.line, e.split, e.digest) for e in iter_examples(io.BytesIO(data), validation_percent=20)]
    assert first == again
    by_digest: dict[bytes, set[str]] = {}
    for _line, split, digest in first:
        by_digest.setdefault(digest, set()).add(split)
        assert split == split_of(digest, 20)
    assert all(len(splits) == 1 for splits in by_digest.values())
    share = sum(split == "validation" for _, split, _ in first) / len(first)
    assert 0.12 < share < 0.28
    report = validate(data, validation_percent=20)
    assert report.statistics["duplicates"] == 2 and lines_with(report, "DUPLICATE_EXAMPLE") == [301, 302]
    assert report.statistics["split"]["validation"]["examples"] == sum(s == "validation" for _, s, _ in first)


def test_split_of_formula():
    digest = bytes(31) + bytes([57])
    assert split_of(digest, 57) == "train" and split_of(digest, 58) == "validation"
    assert split_of(b"\xff" * 32, 0) == "train" and split_of(b"\xff" * 32, 100) == "validation"


def test_iter_examples_yields_exactly_the_valid_lines():
    data = (FIXTURES / "legacy_invalid.jsonl").read_bytes() + (FIXTURES / "valid_turns.jsonl").read_bytes()
    report = validate(data)
    bad = {i.line for i in report.issues if i.severity is Severity.ERROR}
    examples = list(iter_examples(io.BytesIO(data)))
    assert all(isinstance(e, Example) for e in examples)
    lines = [e.line for e in examples]
    assert lines == sorted(lines) and not bad & set(lines)
    assert len(lines) == report.statistics["examples"] == 11
    first = examples[0]
    assert first.messages == [{"role": "user", "content": "A prompt with no reply"}]
    assert first.estimated_tokens == 6 and first.split in ("train", "validation")
    assert first.digest == reference_digest(first.messages)


def test_report_as_dict_shape():
    report = validate(FIXTURES / "DUPLICATE_EXAMPLE.jsonl", max_issues=1)
    data = report.as_dict()
    assert list(data) == [
        "status",
        "format",
        "counts",
        "error_count",
        "warning_count",
        "issues",
        "issues_truncated",
        "statistics",
        "bytes",
        "lines",
        "duration_seconds",
        "settings",
    ]
    assert data["settings"] == {
        "min_examples": 10,
        "validation_percent": 10,
        "context_tokens": None,
        "max_bytes": settings.DATASET_MAX_BYTES,
    }
    assert data["counts"] == {"TOO_FEW_EXAMPLES": 1, "DUPLICATE_EXAMPLE": 1}
    assert (data["error_count"], data["warning_count"]) == (1, 1)
    assert len(data["issues"]) == 1 and data["issues_truncated"] is True
    issue = data["issues"][0]  # the file-level issue is kept ahead of line issues when the list is full
    assert list(issue) == ["line", "code", "severity", "path", "message", "suggestion"]
    assert (issue["line"], issue["code"], issue["severity"], issue["path"]) == (None, "TOO_FEW_EXAMPLES", "error", "")
    assert issue["message"] and issue["suggestion"]
    assert Issue(**{**issue, "severity": Severity.ERROR}).as_dict() == issue
    full = validate(FIXTURES / "DUPLICATE_EXAMPLE.jsonl").as_dict()["issues"]
    assert [(i["line"], i["code"]) for i in full] == [(None, "TOO_FEW_EXAMPLES"), (3, "DUPLICATE_EXAMPLE")]
    assert (data["bytes"], data["lines"]) == ((FIXTURES / "DUPLICATE_EXAMPLE.jsonl").stat().st_size, 3)
    json.dumps(data)


# --- streaming internals ---------------------------------------------------------------------------------------


class Trickle(io.RawIOBase):
    """A stream that returns at most ``step`` bytes per read (like a network body)."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.pos, self.step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        size = self.step if n < 0 else min(n, self.step)
        chunk = self.data[self.pos : self.pos + size]
        self.pos += len(chunk)
        return chunk


def test_reader_handles_chunk_boundaries_long_lines_crlf_bom_and_no_final_newline():
    data = b"\xef\xbb\xbfone\r\n\r\n" + b"x" * 50 + b"\n  \ntwo\n" + b"y" * 23 + b"\nthree"
    for chunk in (1, 3, 7, 64):
        reader = LineReader(Trickle(data, 5), chunk_size=chunk, max_line=20)
        assert list(reader) == [(1, b"one"), (3, None), (5, b"two"), (6, None), (7, b"three")]
        assert (reader.lines, reader.bom, reader.crlf_line, reader.bytes_read) == (7, True, 1, len(data))


def test_reader_stops_at_max_bytes():
    reader = LineReader(io.BytesIO(b"aaaa\nbbbb\ncccc\n"), max_bytes=7)
    assert list(reader) == [(1, b"aaaa")]
    assert reader.too_large and reader.bytes_read == 8


def test_a_too_long_line_is_not_kept_in_memory(tmp_path):
    path = _case_input("LINE_TOO_LONG", "generated", tmp_path)
    tracemalloc.start()
    report = validate(path, min_examples=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert report.counts == {"LINE_TOO_LONG": 1}
    assert peak < 7 << 20  # the 5 MiB line never sits in memory whole: at most 4 MiB of it, plus one chunk


def test_fast_digest_equals_the_definition():
    rng = random.Random(5)
    alphabet = [
        *"aAzZ  .,\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f",
        "\xa0",
        "\x85",
        "\u2003",
        "\u2028",
        "É",
        "é",
        "—",
        "’",
        "Σ",
        "ß",
        "İ",
        "\u200b",
        "😀",
        "\u3000",
        "ﬁ",
        "ǅ",
    ]
    for _ in range(20000):
        messages = []
        for _ in range(rng.randint(1, 4)):
            content = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) + "x"
            messages.append({"role": rng.choice(["system", "user", "assistant"]), "content": content})
        roles, contents = [m["role"] for m in messages], [m["content"] for m in messages]
        assert example_digest(roles, contents) == reference_digest(messages), messages


def test_digest_set_grows_and_detects_repeats():
    seen = DigestSet(capacity=4)
    digests = [random.Random(i).randbytes(32) for i in range(5000)]
    assert not any(seen.add(d) for d in digests)
    assert all(seen.add(d) for d in digests) and len(seen) == 5000


# --- bounded memory --------------------------------------------------------------------------------------------

PARAGRAPH = (
    "Thank you for telling me how this feels — it’s a lot to carry. Let's look at the numbers together, one "
    "step at a time, and decide what matters most this month. "
) * 4


def _write_chat(path: Path, size: int) -> int:
    """A realistic chat file of about ``size`` bytes (lines of ~5 KB, 9 messages each), written streamed."""
    written = n = 0
    with path.open("wb") as handle:
        while written < size:
            messages = [{"role": "system", "content": "You are a calm financial coach."}]
            for turn in range(4):
                messages.append({"role": "user", "content": f"Question {n}.{turn}: what should I do first?"})
                messages.append({"role": "assistant", "content": f"{PARAGRAPH}\n\nStep {n}.{turn}. {PARAGRAPH}"})
            line = (json.dumps({"messages": messages}, ensure_ascii=False) + "\n").encode()
            handle.write(line)
            written += len(line)
            n += 1
    return n


def _peak(path: Path) -> tuple[int, ValidationReport]:
    tracemalloc.start()
    report = validate(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, report


def test_memory_is_bounded_and_flat_in_file_size(tmp_path):
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    small_lines, large_lines = _write_chat(small, 5 << 20), _write_chat(large, 50 << 20)
    small_peak, small_report = _peak(small)
    large_peak, large_report = _peak(large)
    assert small_report.is_valid and small_report.statistics["examples"] == small_lines
    assert large_report.is_valid and large_report.statistics["examples"] == large_lines
    assert large_peak < 40 << 20, large_peak
    assert large_peak < small_peak + (4 << 20), (small_peak, large_peak)


def test_counts_cover_every_issue_and_file_issues_survive_truncation():
    data = b"not json\n" * 250
    report = validate(data, max_issues=200)
    assert report.counts == {"INVALID_JSON": 250, "TOO_FEW_EXAMPLES": 1}
    assert report.error_count == 251 and len(report.issues) == 200 and report.as_dict()["issues_truncated"]
    assert report.issues[0].code == "TOO_FEW_EXAMPLES"
    assert [i.line for i in report.issues[1:]] == list(range(1, 200))


# --- parallel validation over byte ranges ----------------------------------------------------------------------


def byte_ranges(data: bytes, step: int | None = None):
    """An ``open_range`` over ``data`` (reads of at most ``step`` bytes when given, like a network body)."""

    def open_range(start: int, end: int | None):
        piece = data[start:end]
        return Trickle(piece, step) if step else io.BytesIO(piece)

    return open_range


def report_dict(report: ValidationReport) -> dict:
    data = report.as_dict()
    data.pop("duration_seconds")
    return data


def assert_ranges_equal_sequential(data: bytes, workers=(2, 3, 4), **options) -> dict:
    expected = report_dict(validate_stream(io.BytesIO(data), **options))
    for count in workers:
        report = validate_ranges(byte_ranges(data), len(data), workers=count, parallel_min_bytes=0, **options)
        assert report_dict(report) == expected, f"{count} workers"
    return expected


def _fixture_lines() -> list[bytes]:
    return [
        line
        for path in sorted(FIXTURES.glob("*.jsonl"))
        if path.name != "EMPTY_FILE.jsonl"
        for line in path.read_bytes().splitlines(keepends=True)
    ]


def _sized_chat_line(n: int, size: int, **extra) -> bytes:
    """A valid chat line of exactly ``size`` bytes (newline included), distinct per ``n``."""
    obj = chat(("system", "You are a calm coach."), ("user", f"Question {n}?"), ("assistant", ""), **extra)
    bare = len(json.dumps(obj).encode()) + 1
    obj["messages"][2]["content"] = f"Answer {n}. " + "x" * (size - bare - len(f"Answer {n}. "))
    line = (json.dumps(obj) + "\n").encode()
    assert len(line) == size
    return line


def _chat_with_duplicates_at_boundaries(prefix: bytes) -> bytes:
    """~3 MB of 5,000-byte chat lines after ``prefix``; the lines at and around every range boundary of 2, 3 and
    4 workers repeat lines of the first range (some with an unknown key, so their warnings come first).
    """
    size, count = 5000, 600
    lines = [_sized_chat_line(n, size, **({"source": "x"} if n % 50 == 0 else {})) for n in range(count)]
    total = len(prefix) + size * count
    for workers in (2, 3, 4):
        for index in range(1, workers):
            at = (total * index // workers - len(prefix)) // size
            for offset, source in ((-1, 0), (0, 50), (1, 50), (2, at - 1)):
                lines[at + offset] = lines[source]
    lines[-1] = lines[count // 2]  # and the last line repeats one of the middle
    return prefix + b"".join(lines)


def _long_line_file() -> bytes:
    good = [jsonl(chat(("user", f"q{n}"), ("assistant", f"a{n}"))) for n in range(6)]
    long_line = b'{"messages": [{"role": "user", "content": "' + b"x" * LONG_LINE + b'"}]}\n'
    # The long line spans most of the file, so every boundary of 2-4 workers falls inside it.
    return b"".join(good[:3]) + long_line + b"".join(good[3:]) + long_line.rstrip(b"\n")


def _crlf_from_line(data: bytes, first: int) -> bytes:
    lines = data.splitlines(keepends=True)
    return b"".join(lines[: first - 1] + [line.replace(b"\n", b"\r\n") for line in lines[first - 1 :]])


PARALLEL_FILES = {
    "fixtures concatenated": lambda: b"".join(_fixture_lines()),
    "fixtures shuffled": lambda: b"".join(random.Random(4).sample(_fixture_lines(), len(_fixture_lines()))),
    "3 MB chat, duplicates across boundaries": lambda: _chat_with_duplicates_at_boundaries(b""),
    "3 MB chat, boundaries one byte after a newline": lambda: _chat_with_duplicates_at_boundaries(b"\n"),
    "3 MB chat, boundaries mid-line": lambda: _chat_with_duplicates_at_boundaries(b"\n" * 2501),
    "CRLF from line 30, in a later range": lambda: _crlf_from_line(
        (FIXTURES / "valid_chat.jsonl").read_bytes() * 3, 30
    ),
    "CRLF throughout, BOM": lambda: b"\xef\xbb\xbf" + _crlf_from_line((FIXTURES / "valid_chat.jsonl").read_bytes(), 1),
    "BOM fixture": lambda: (FIXTURES / "BOM_PRESENT.jsonl").read_bytes() * 4,
    "LINE_TOO_LONG across boundaries": _long_line_file,
    "v4 with _meta": lambda: (FIXTURES / "valid_v4.jsonl").read_bytes() * 2,
    "turns": lambda: (FIXTURES / "valid_turns.jsonl").read_bytes() + (FIXTURES / "legacy_invalid.jsonl").read_bytes(),
    "format detected from line 41": lambda: (
        b'{"hello": 1}\n' * 40
        + b"".join(
            (FIXTURES / name).read_bytes() for name in ("valid_chat.jsonl", "valid_turns.jsonl", "valid_chat.jsonl")
        )
    ),
    "format not in the first range (sequential)": lambda: (
        b'{"hello": 1}\n' * 4000 + (FIXTURES / "valid_chat.jsonl").read_bytes()
    ),
    "blank lines only": lambda: b"\n  \n\n",
}


@pytest.mark.parametrize("name", list(PARALLEL_FILES))
def test_ranges_report_equals_the_sequential_report(name):
    data = PARALLEL_FILES[name]()
    expected = assert_ranges_equal_sequential(data)
    assert_ranges_equal_sequential(data, workers=(3,), max_issues=3, min_examples=1)
    if name.startswith("3 MB"):
        assert expected["counts"]["DUPLICATE_EXAMPLE"] == expected["statistics"]["duplicates"] >= 20
        assert expected["counts"]["UNKNOWN_KEY"] >= 12
        # Every line exceeds 1,000 tokens: a duplicate's warning must come before its line's EXCEEDS_CONTEXT.
        assert_ranges_equal_sequential(data, context_tokens=1000)
        assert_ranges_equal_sequential(data, workers=(4,), context_tokens=1000, max_issues=160)
    if name == "LINE_TOO_LONG across boundaries":
        assert expected["counts"]["LINE_TOO_LONG"] == 2 and expected["lines"] == 8
    if name.startswith("CRLF from line 30"):
        assert expected["counts"]["CRLF_LINE_ENDINGS"] == 1 and lines_with(validate(data), "CRLF_LINE_ENDINGS") == [30]
    if name == "format detected from line 41":
        mixed = [i for i in validate(data).issues if i.code == "MIXED_FORMATS"]
        assert len(mixed) == 10 and all("(detected from line 41)" in i.message for i in mixed)


@pytest.mark.parametrize("fmt", ["chat", "turns", "brightrun-v4"])
def test_ranges_with_a_chosen_format(fmt):
    assert_ranges_equal_sequential(b"".join(_fixture_lines()), format=fmt, context_tokens=40)
    assert_ranges_equal_sequential(b"\n\n\n", format=fmt)  # no data line: EMPTY_FILE from the merge


def test_ranges_fall_back_to_sequential_and_read_to_the_end():
    data = (FIXTURES / "valid_chat.jsonl").read_bytes()
    expected = report_dict(validate_stream(io.BytesIO(data), max_bytes=300))
    assert expected["counts"] == {"FILE_TOO_LARGE": 1}
    for size in (len(data), 301):  # over the limit: sequential, stopping at the limit
        assert report_dict(validate_ranges(byte_ranges(data), size, max_bytes=300, parallel_min_bytes=0)) == expected
    expected = report_dict(validate_stream(io.BytesIO(data)))
    # A size that is too small does not cut the file: the last range runs to its end.
    assert report_dict(validate_ranges(byte_ranges(data), len(data) // 2, workers=3, parallel_min_bytes=0)) == expected
    assert report_dict(validate_ranges(byte_ranges(data), len(data), workers=1, parallel_min_bytes=0)) == expected
    assert report_dict(validate_ranges(byte_ranges(data), len(data), workers=4)) == expected  # below 32 MiB
    assert report_dict(validate_ranges(byte_ranges(b""), 0)) == report_dict(validate_stream(io.BytesIO(b"")))
    with pytest.raises(ValueError, match="unknown format"):
        validate_ranges(byte_ranges(data), len(data), format="jsonl")
    with pytest.raises(ValueError, match="workers"):
        validate_ranges(byte_ranges(data), len(data), workers=0)


def test_ranges_small_random_files_equal_sequential():
    rng = random.Random(8)
    lines = _fixture_lines()
    for _ in range(25):
        picked = [rng.choice(lines) for _ in range(rng.randint(1, 30))]
        picked += rng.sample(picked, min(len(picked), 4))  # repeats
        rng.shuffle(picked)
        if rng.random() < 0.3:
            picked = [line.replace(b"\n", b"\r\n") if rng.random() < 0.5 else line for line in picked]
        data = b"".join(picked).rstrip(b"\n") if rng.random() < 0.3 else b"".join(picked)
        options = {"max_issues": rng.choice([0, 1, 4, 200]), "min_examples": rng.randint(0, 4)}
        assert_ranges_equal_sequential(data, workers=(rng.randint(2, 9),), **options)


def test_range_stream_delivers_the_lines_that_start_in_its_range():
    rng = random.Random(2)
    data = b"".join(b"x" * rng.choice([0, 1, 3, 40]) + b"\n" for _ in range(60)) + b"tail"
    starts = [0] + [i + 1 for i, byte in enumerate(data) if byte == 0x0A]
    for workers in (1, 2, 3, 7, len(data)):
        bounds = [len(data) * i // workers for i in range(workers)] + [None]
        pieces = []
        for start, end in itertools.pairwise(bounds):
            with RangeStream(byte_ranges(data, step=3), start, end, chunk_size=5) as stream:
                piece = b"".join(iter(lambda s=stream: s.read(4), b""))
                assert stream.bytes_read == len(piece)
            owned = [s for s in starts if s >= start and (end is None or s < end)]
            following = [s for s in starts if end is not None and s >= end]
            assert piece == (data[owned[0] : following[0] if following else None] if owned else b"")
            pieces.append(piece)
        assert b"".join(pieces) == data


def test_ranges_with_spawned_processes_and_file_ranges(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(_crlf_from_line(b"".join(_fixture_lines()), 20))
    expected = report_dict(validate(path))
    report = validate_ranges(
        functools.partial(open_file_range, path),
        path.stat().st_size,
        workers=2,
        parallel_min_bytes=0,
        start_method="spawn",
    )
    assert report_dict(report) == expected


def _validate_in_daemon(data: bytes) -> dict:
    import multiprocessing

    assert multiprocessing.current_process().daemon  # as in a Celery prefork worker
    return report_dict(validate_ranges(byte_ranges(data), len(data), workers=3, parallel_min_bytes=0))


def test_ranges_run_inside_a_celery_prefork_worker():
    billiard = pytest.importorskip("billiard")
    data = _chat_with_duplicates_at_boundaries(b"\n")
    with billiard.Pool(1) as pool:
        result = pool.apply(_validate_in_daemon, (data,))
    assert result == report_dict(validate_stream(io.BytesIO(data)))


def test_a_failing_range_stops_the_others_and_raises():
    import multiprocessing

    data = _chat_with_duplicates_at_boundaries(b"")

    def open_range(start, end):
        if start > len(data) // 2:
            raise OSError("storage went away")
        return io.BytesIO(data[start:end])

    with pytest.raises(OSError, match="storage went away"):
        validate_ranges(open_range, len(data), workers=4, parallel_min_bytes=0)
    assert multiprocessing.active_children() == []


def test_statistics_merge_like_one_pass():
    examples = list(iter_examples(io.BytesIO((FIXTURES / "valid_chat.jsonl").read_bytes()), validation_percent=50))
    whole, first, rest = StatsCollector(50), StatsCollector(50), StatsCollector(50)
    for example in examples:
        whole.add(example)
    for example in examples[:2]:
        first.add(example)
    for example in examples[2:]:  # the second range numbers its lines from 1
        rest.add(dataclasses.replace(example, line=example.line - 2))
    first.merge(rest, 2)
    assert first.as_dict() == whole.as_dict()
    assert [s["line"] for s in first.as_dict()["samples"]] == [1, 2, 3]


# --- byte ranges from storage ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_storage_open_range_and_validate_ranges_on_both_backends(any_storage, owner_user):
    from django.core.files.base import ContentFile

    from brightrun.storage import file_storage, open_range, owned_key

    data = _chat_with_duplicates_at_boundaries(b"\n" * 3)
    key = owned_key(owner_user.pk, "datasets", "ranges.jsonl")
    assert file_storage().save(key, ContentFile(data)) == key
    for start, end in [(0, None), (0, 10), (5, 4096), (len(data) - 3, None), (len(data) - 3, len(data) + 50), (7, 7)]:
        with open_range(key, start, end) as stream:
            assert stream.read() == data[start:end], (start, end)
    with open_range(key, len(data) + 10, None) as stream:
        assert stream.read() == b""
    report = validate_ranges(lambda s, e: open_range(key, s, e), len(data), workers=3, parallel_min_bytes=0)
    assert report_dict(report) == report_dict(validate_stream(io.BytesIO(data)))
    assert report.statistics["duplicates"] >= 20


@pytest.mark.django_db
def test_dataset_validation_service_uses_ranges(
    any_storage, owner_user, monkeypatch, django_capture_on_commit_callbacks
):
    from datasets.services import dataset_confirm, dataset_validate
    from datasets.validation import parallel
    from tests.datasets.test_services import _create, _upload

    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)  # ranges for a small file too
    data = _chat_with_duplicates_at_boundaries(b"\n")
    pending = _create(owner_user, data)
    assert _upload(any_storage, pending, data) in (200, 204)
    with django_capture_on_commit_callbacks(execute=False):
        dataset = dataset_confirm(dataset=pending.dataset, actor=owner_user)
    result = dataset_validate(dataset_id=dataset.pk)
    assert result is not None and result.status == "ready"
    expected = validate_stream(io.BytesIO(data))
    assert (result.example_count, result.warning_count) == (expected.statistics["examples"], expected.warning_count)
    assert result.statistics == expected.statistics and result.statistics["duplicates"] >= 20
