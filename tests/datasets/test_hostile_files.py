"""Hostile and malformed dataset files (issue 9 item 4): the validator reports, it never raises.

Every case is generated here: a small factory writes the file, and the test checks that ``validate_stream``
returns a report with the expected codes and status, and that ``validate_ranges`` over the same file with two
processes gives the identical report (``duration_seconds`` apart). Decisions asserted here:

- duplicate keys: the JSON decoder keeps the *last* value (``{"messages": bad, "messages": good}`` is valid);
- numbers out of the float/int64 range (``1e400``, a 10,000-digit integer), ``NaN``/``Infinity`` and escaped
  lone surrogates are INVALID_JSON (the decoder refuses them);
- nesting deeper than the interpreter can decode (100k arrays) is INVALID_JSON, not a RecursionError;
- an escaped ``\\u0000`` in content is legal JSON and accepted; a raw control byte inside a string is not.

Two memory checks (a 20 MB single line and a 30 MB file of small hostile lines) bound the ``tracemalloc`` peak,
and five representative files go through the real services (create → upload → confirm → validate).
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from datasets.services import dataset_confirm, dataset_create, dataset_validate
from datasets.validation import CODES, ValidationReport, open_file_range, validate_ranges, validate_stream
from datasets.validation.checks import preview

Factory = Callable[[Path], None]

GOOD = b'{"messages": [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": "Hi!"}]}\n'
GOOD2 = b'{"messages": [{"role": "user", "content": "Second"}, {"role": "assistant", "content": "Reply two"}]}\n'
MIB = 1 << 20


def raw(data: bytes) -> Factory:
    """A factory writing ``data`` as the whole file."""
    return lambda path: path.write_bytes(data)


def framed(line: bytes) -> Factory:
    """A factory writing ``line`` between two valid examples (so the status is decided by ``line``)."""
    return raw(GOOD + line + b"\n" + GOOD2)


def message_line(user: dict | None = None, assistant: dict | None = None, **top) -> bytes:
    messages = [{"role": "user", "content": "Question?", **(user or {})}]
    messages.append({"role": "assistant", "content": "Answer.", **(assistant or {})})
    return json.dumps({"messages": messages, **top}).encode()


def spliced(field: str, value: bytes) -> bytes:
    """A chat line whose assistant ``field`` is the raw JSON text ``value`` (for values json.dumps cannot write)."""
    if field == "role":
        return b'{"messages": [{"role": "user", "content": "Q"}, {"role": ' + value + b', "content": "A"}]}'
    if field == "content":
        return b'{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": ' + value + b"}]}"
    return (
        b'{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A", "'
        + field.encode()
        + b'": '
        + value
        + b"}]}"
    )


def in_content(text: bytes) -> bytes:
    """A chat line whose assistant content is the raw bytes ``text`` between quotes."""
    return spliced("content", b'"' + text + b'"')


def long_line(size: int, *, chunk: int = MIB) -> Factory:
    """One JSON line of about ``size`` bytes, written in pieces (never held whole in memory)."""

    def write(path: Path) -> None:
        with path.open("wb") as out:
            out.write(GOOD)
            out.write(b'{"messages": [{"role": "user", "content": "')
            left = size
            piece = b"x" * chunk
            while left > 0:
                out.write(piece[: min(chunk, left)])
                left -= chunk
            out.write(b'"}, {"role": "assistant", "content": "ok"}]}\n')
            out.write(GOOD2)

    return write


def utf16(encoding: str, bom: bytes) -> Factory:
    return raw(bom + (GOOD + GOOD2).decode().encode(encoding))


def many_errors(count: int) -> Factory:
    return raw(b"".join(b'{"messages": [{"role": "robot", "content": "x%d"}]}\n' % n for n in range(count)))


def many_keys(count: int) -> Factory:
    obj = {"messages": json.loads(GOOD)["messages"], **{f"k{n}": n for n in range(count)}}
    return raw(json.dumps(obj).encode() + b"\n" + GOOD2)


def deep_arrays(depth: int) -> Factory:
    def write(path: Path) -> None:
        path.write_bytes(GOOD + b"[" * depth + b"]" * depth + b"\n" + GOOD2)

    return write


def deep_in(field: str, depth: int) -> Factory:
    return framed(spliced(field, b"[" * depth + b"]" * depth))


UNICODE = "RTL \u202eevil\u202c, ZWJ \U0001f468\u200d\U0001f469\u200d\U0001f467, e\u0301\u0302\u0303, \U0001f600 \ufeff"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) + b"\nPK\x05\x06" + b"\x00" * 18
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + bytes(range(128, 256))


def case(name, factory, counts, status="invalid", *, exact=True, **options):
    """``counts``: the expected counts (exactly, unless ``exact`` False: then these codes at least these often)."""
    return pytest.param(factory, counts, status, exact, options, id=name)


CASES = [
    # --- encodings ------------------------------------------------------------------------------------------
    case("utf8-lone-continuation", framed(in_content(b"a\x80b")), {"INVALID_UTF8": 1}),
    case("utf8-overlong", framed(in_content(b"slash \xc0\xaf")), {"INVALID_UTF8": 1}),
    case("utf8-surrogate-bytes", framed(in_content(b"\xed\xa0\x80")), {"INVALID_UTF8": 1}),
    case(
        "utf8-truncated-at-eof",
        raw(GOOD + GOOD2 + b'{"messages": [{"role": "user", "content": "\xe2\x82'),
        {"INVALID_UTF8": 1},
    ),
    case("utf8-invalid-outside-string", framed(b'{"messages"\xff: []}'), {"INVALID_UTF8": 1}),
    case("latin1-file", framed(in_content("café".encode("latin-1"))), {"INVALID_UTF8": 1}),
    case("escaped-lone-surrogate", framed(in_content(b"\\ud800")), {"INVALID_JSON": 1}),
    case("utf8-bom", raw(b"\xef\xbb\xbf" + GOOD + GOOD2), {"BOM_PRESENT": 1}, "valid"),
    case("utf8-bom-on-line-2", raw(GOOD + b"\xef\xbb\xbf" + GOOD2), {"INVALID_JSON": 1}),
    case("utf16-le-bom", utf16("utf-16-le", b"\xff\xfe"), {"INVALID_UTF8": 1}, exact=False),
    case("utf16-be-bom", utf16("utf-16-be", b"\xfe\xff"), {"INVALID_UTF8": 1}, exact=False),
    # --- line endings and NULs ------------------------------------------------------------------------------
    case("crlf", raw((GOOD + GOOD2).replace(b"\n", b"\r\n")), {"CRLF_LINE_ENDINGS": 1}, "valid"),
    case(
        "lone-cr-separators",
        raw(GOOD.rstrip() + b"\r" + GOOD2.rstrip() + b"\r"),
        {"INVALID_JSON": 1, "CRLF_LINE_ENDINGS": 1},  # the final CR reads as a CRLF ending
        min_examples=0,
    ),
    case("cr-as-json-whitespace", raw(GOOD.replace(b": [", b":\r[") + GOOD2), {}, "valid"),
    case("escaped-nul-in-content", framed(in_content(b"a\\u0000b")), {}, "valid"),
    case("raw-nul-in-string", framed(in_content(b"a\x00b")), {"INVALID_JSON": 1}),
    case("raw-nul-line", framed(b"\x00" * 64), {"INVALID_JSON": 1}),
    case("raw-control-in-string", framed(in_content(b"bell\x07 esc\x1b")), {"INVALID_JSON": 1}),
    case("escaped-controls-in-content", framed(in_content(b"bell\\u0007 esc\\u001b tab\\t")), {}, "valid"),
    # --- sizes ----------------------------------------------------------------------------------------------
    case("line-just-over-4mib", long_line(4 * MIB + 1), {"LINE_TOO_LONG": 1}),
    case("line-20mb", long_line(20 * MIB), {"LINE_TOO_LONG": 1}),
    case("over-max-bytes", raw((GOOD + GOOD2) * 10), {"FILE_TOO_LARGE": 1}, max_bytes=250),
    # --- nesting and numbers --------------------------------------------------------------------------------
    case("nested-100k-arrays", deep_arrays(100_000), {"INVALID_JSON": 1}),
    case("nested-100k-objects", framed(b'{"a":' * 100_000 + b"1" + b"}" * 100_000), {"INVALID_JSON": 1}),
    case("nested-5000-in-weight", deep_in("weight", 5000), {"INVALID_JSON": 1}),
    case("nested-950-in-weight", deep_in("weight", 950), {"INVALID_WEIGHT": 1}),
    case("nested-950-in-role", deep_in("role", 950), {"UNKNOWN_ROLE": 1}),
    case("weight-1e400", framed(spliced("weight", b"1e400")), {"INVALID_JSON": 1}),
    case("weight-10k-digits", framed(spliced("weight", b"9" * 10_000)), {"INVALID_JSON": 1}),
    case("content-10k-digits", framed(spliced("content", b"1" + b"0" * 9_999)), {"INVALID_JSON": 1}),
    case("weight-nan", framed(spliced("weight", b"NaN")), {"INVALID_JSON": 1}),
    case("weight-infinity", framed(spliced("weight", b"-Infinity")), {"INVALID_JSON": 1}),
    # --- duplicate keys: the last value wins ----------------------------------------------------------------
    case("duplicate-messages-last-valid", framed(b'{"messages": [], ' + message_line()[1:]), {}, "valid"),
    case("duplicate-messages-last-bad", framed(GOOD.rstrip()[:-1] + b', "messages": {}}'), {"MISSING_MESSAGES": 1}),
    case(
        "duplicate-role-last-bad",
        framed(
            b'{"messages": [{"role": "user", "role": "bot", "content": "Q"}, {"role": "assistant", "content": "A"}]}'
        ),
        {"UNKNOWN_ROLE": 1},
    ),
    # --- wrong types ----------------------------------------------------------------------------------------
    case("messages-object", framed(b'{"messages": {"role": "user", "content": "Q"}}'), {"MISSING_MESSAGES": 1}),
    case("messages-string", framed(b'{"messages": "Q then A"}'), {"MISSING_MESSAGES": 1}),
    case("messages-number", framed(b'{"messages": 42}'), {"MISSING_MESSAGES": 1}),
    case("messages-empty", framed(b'{"messages": []}'), {"EMPTY_MESSAGES": 1}, exact=False),
    case(
        "message-not-object",
        framed(b'{"messages": ["Q", {"role": "assistant", "content": "A"}]}'),
        {"NOT_AN_OBJECT": 1},
    ),
    case("role-number", framed(message_line(assistant={"role": 7})), {"UNKNOWN_ROLE": 1}),
    case("role-null", framed(message_line(assistant={"role": None})), {"MISSING_FIELD": 1}),
    case("content-list", framed(message_line(assistant={"content": ["A", "B"]})), {"CONTENT_NOT_STRING": 1}),
    case("content-object", framed(message_line(assistant={"content": {"text": "A"}})), {"CONTENT_NOT_STRING": 1}),
    case("content-null", framed(message_line(assistant={"content": None})), {"MISSING_FIELD": 1}),
    case("weight-string", framed(message_line(assistant={"weight": "1"})), {"INVALID_WEIGHT": 1}),
    case("weight-true", framed(message_line(assistant={"weight": True})), {"INVALID_WEIGHT": 1}),
    case("weight-2", framed(message_line(assistant={"weight": 2})), {"INVALID_WEIGHT": 1}),
    case("weight-minus-1", framed(message_line(assistant={"weight": -1})), {"INVALID_WEIGHT": 1}),
    case("weight-half", framed(message_line(assistant={"weight": 0.5})), {"INVALID_WEIGHT": 1}),
    case("weight-on-user", framed(message_line(user={"weight": 1})), {"INVALID_WEIGHT": 1}),
    # --- other file types renamed .jsonl --------------------------------------------------------------------
    case("zip-header", raw(ZIP), {"INVALID_UTF8": 1}, exact=False),
    case("png-header", raw(PNG), {"INVALID_UTF8": 1}, exact=False),
    case("gzip-of-valid", raw(gzip.compress((GOOD + GOOD2) * 5)), {"INVALID_UTF8": 1}, exact=False),
    case("pdf-header", raw(PDF), {"INVALID_UTF8": 1}, exact=False),
    case("elf-header", raw(ELF), {"INVALID_UTF8": 1}, exact=False),
    # --- empty-ish files ------------------------------------------------------------------------------------
    case("empty", raw(b""), {"EMPTY_FILE": 1}),
    case("whitespace-only", raw(b"   \t  \f \v "), {"EMPTY_FILE": 1}),
    case("only-newlines", raw(b"\n" * 1000), {"EMPTY_FILE": 1}),
    case("only-crlf", raw(b"\r\n" * 10), {"EMPTY_FILE": 1, "CRLF_LINE_ENDINGS": 1}),
    # --- top-level shapes -----------------------------------------------------------------------------------
    case(
        "array-of-objects",
        raw(b"[" + GOOD.rstrip() + b", " + GOOD2.rstrip() + b"]\n"),
        {"NOT_AN_OBJECT": 1, "TOO_FEW_EXAMPLES": 1},
    ),
    case("string-line", framed(b'"{\\"messages\\": []}"'), {"NOT_AN_OBJECT": 1}),
    case("null-line", framed(b"null"), {"NOT_AN_OBJECT": 1}),
    case("number-and-bool-lines", framed(b"42\ntrue"), {"NOT_AN_OBJECT": 2}),
    case("trailing-garbage", framed(GOOD.rstrip() + b" trailing"), {"INVALID_JSON": 1}),
    case("truncated-object", framed(GOOD[:40]), {"INVALID_JSON": 1}),
    case(
        "mixed-formats",
        framed(b'{"conversation_id": "c1", "turns": [{"role": "user", "content": "Hi"}]}'),
        {"MIXED_FORMATS": 1},
    ),
    # --- keys and counts ------------------------------------------------------------------------------------
    case("5000-unknown-keys", many_keys(5000), {"UNKNOWN_KEY": 5000}, "valid"),
    case("10k-error-lines", many_errors(10_000), {"UNKNOWN_ROLE": 10_000, "TOO_FEW_EXAMPLES": 1}),
    case(
        "proto-constructor-keys",
        framed(message_line(assistant={"__proto__": {}, "constructor": 1})),
        {"UNKNOWN_KEY": 2},
        "valid",
    ),
    case("top-level-proto-key", framed(message_line(__proto__={"admin": True})), {"UNKNOWN_KEY": 1}, "valid"),
    # --- unicode and long strings ---------------------------------------------------------------------------
    case(
        "unicode-edge-cases",
        framed(message_line(user={"content": UNICODE}, assistant={"content": UNICODE[::-1]})),
        {},
        "valid",
    ),
    case("role-1mb-string", framed(message_line(assistant={"role": "x" * MIB})), {"UNKNOWN_ROLE": 1}),
    case("role-rtl-lookalike", framed(message_line(assistant={"role": "\u202etnatsissa"})), {"UNKNOWN_ROLE": 1}),
]


def report_dict(report: ValidationReport) -> dict:
    data = report.as_dict()
    data.pop("duration_seconds")
    return data


def validate_file(path: Path, **options) -> ValidationReport:
    with path.open("rb") as stream:
        return validate_stream(stream, **options)


def test_corpus_is_large_and_uses_known_codes():
    assert len(CASES) >= 40
    for param in CASES:
        assert set(param.values[1]) <= set(CODES), param.id


@pytest.mark.parametrize(("factory", "counts", "status", "exact", "options"), CASES)
def test_hostile_file_is_reported_not_raised(factory, counts, status, exact, options, tmp_path, monkeypatch):
    options = {"min_examples": 1, **options}
    path = tmp_path / "hostile.jsonl"
    factory(path)

    report = validate_file(path, **options)

    assert isinstance(report, ValidationReport)
    if exact:
        assert report.counts == counts
    else:
        assert {code: report.counts.get(code, 0) >= n for code, n in counts.items()} == dict.fromkeys(counts, True)
    assert report.status == status
    assert sum(report.counts.values()) == report.error_count + report.warning_count
    assert len(report.issues) == min(200, sum(report.counts.values()))
    assert report.issues_truncated == (sum(report.counts.values()) > 200)

    monkeypatch.setattr("datasets.validation.parallel.PARALLEL_MIN_BYTES", 0)
    size = path.stat().st_size
    parallel = validate_ranges(functools.partial(open_file_range, path), size, workers=2, **options)
    assert report_dict(parallel) == report_dict(report)


def test_binary_headers_yield_no_examples(tmp_path):
    for data in (ZIP, PNG, gzip.compress(GOOD * 5), PDF, ELF):
        report = validate_stream(io.BytesIO(data), min_examples=1)
        assert report.status == "invalid"
        assert report.statistics["examples"] == 0
        assert set(report.counts) <= {
            "INVALID_UTF8",
            "INVALID_JSON",
            "NOT_AN_OBJECT",
            "TOO_FEW_EXAMPLES",
            "CRLF_LINE_ENDINGS",
        }


def test_issue_log_is_capped_with_exact_counts(tmp_path):
    path = tmp_path / "errors.jsonl"
    many_errors(10_000)(path)
    report = validate_file(path, min_examples=1)
    assert report.counts == {"UNKNOWN_ROLE": 10_000, "TOO_FEW_EXAMPLES": 1}
    assert report.issues_truncated is True
    assert len(report.issues) == 200
    assert report.issues[0].code == "TOO_FEW_EXAMPLES"  # the file-level verdict is always stored, first
    assert [i.line for i in report.issues[1:]] == list(range(1, 200))

    path = tmp_path / "keys.jsonl"
    many_keys(5000)(path)
    report = validate_file(path, min_examples=1)
    assert (report.counts, len(report.issues), report.issues_truncated) == ({"UNKNOWN_KEY": 5000}, 200, True)


def test_deep_nesting_message_is_readable(tmp_path):
    path = tmp_path / "deep.jsonl"
    deep_arrays(100_000)(path)
    (issue,) = validate_file(path, min_examples=1).issues
    assert (issue.line, issue.code) == (2, "INVALID_JSON")
    assert "too deeply" in issue.message


def test_nesting_at_the_decoder_limit_never_raises():
    """Values nested just shallow enough to decode must not crash the message wording (``repr`` recursion);
    where that edge lies depends on the stack depth, so every depth around the interpreter's limit is tried.
    """
    seen = set()
    for depth in range(600, 1001):
        for field in ("weight", "role"):
            line = spliced(field, b"[" * depth + b"]" * depth)
            report = validate_stream(io.BytesIO(GOOD + line + b"\n" + GOOD2), min_examples=1)
            (code,) = report.counts
            seen.add(code)
    assert seen <= {"INVALID_WEIGHT", "UNKNOWN_ROLE", "INVALID_JSON"}
    assert preview(_nested(5000)) == "a list"


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _peak_during(path: Path) -> tuple[ValidationReport, int]:
    tracemalloc.start()
    try:
        report = validate_file(path, min_examples=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return report, peak


def test_memory_bound_20mb_single_line(tmp_path):
    path = tmp_path / "long.jsonl"
    long_line(20 * MIB)(path)
    assert path.stat().st_size > 20 * MIB
    report, peak = _peak_during(path)
    assert report.counts == {"LINE_TOO_LONG": 1}
    assert report.statistics["examples"] == 2
    assert peak < 40 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_memory_bound_30mb_of_small_hostile_lines(tmp_path):
    hostile = [
        in_content(b"a\x80b"),
        b"[" * 200 + b"]" * 200,
        spliced("weight", b"1e400"),
        message_line(assistant={"role": "robot" * 100}),
        message_line(assistant={"content": ["x" * 300]}),
        message_line(assistant={"weight": "1"}, extra="y" * 200),
        b"null",
        b"\x00" * 100,
    ]
    block = b"\n".join(hostile) + b"\n"
    path = tmp_path / "many.jsonl"
    repeats = 30 * MIB // len(block) + 1
    with path.open("wb") as out:
        for _ in range(repeats):
            out.write(block)
    assert path.stat().st_size > 30 * MIB
    report, peak = _peak_during(path)
    assert report.counts["INVALID_UTF8"] == repeats
    assert report.counts["NOT_AN_OBJECT"] == 2 * repeats
    assert report.statistics["examples"] == 0
    assert len(report.issues) == 200
    assert peak < 40 * MIB, f"peak {peak / MIB:.1f} MiB"


# --- through the real services (the worker path) ---------------------------------------------------------------

WORKER_CASES = [
    pytest.param(
        b"\xef\xbb\xbf" + (GOOD + GOOD2) * 6 + b'{"messages": "x\xc0\xaf"}\n', "INVALID_UTF8", id="bom-and-bad-utf8"
    ),
    pytest.param((GOOD + GOOD2) * 6 + b"[" * 100_000 + b"]" * 100_000 + b"\n", "INVALID_JSON", id="deep-nesting"),
    pytest.param(PNG + b"\n" + gzip.compress(GOOD * 20), "INVALID_UTF8", id="png-and-gzip"),
    pytest.param(
        (GOOD + GOOD2).replace(b"\n", b"\r\n") * 6 + message_line(assistant={"weight": 0.5}) + b"\r\n",
        "INVALID_WEIGHT",
        id="crlf-bad-weight",
    ),
    pytest.param(b"\n \t\n\n", "EMPTY_FILE", id="blank-lines"),  # a 0-byte upload is refused earlier
]


@pytest.mark.django_db
@pytest.mark.parametrize(("data", "code"), WORKER_CASES)
def test_hostile_file_through_the_services(data, code, local_storage, owner_user, django_capture_on_commit_callbacks):
    pending = dataset_create(owner=owner_user, name="Hostile", file_name="hostile.jsonl", file_size=len(data))
    response = Client().post(urlsplit(pending.instructions.url).path, {"file": ContentFile(data, name="hostile.jsonl")})
    assert response.status_code in (200, 204)
    with django_capture_on_commit_callbacks(execute=False):
        dataset = dataset_confirm(dataset=pending.dataset, actor=owner_user)
    assert dataset.status == "validating"

    result = dataset_validate(dataset_id=dataset.pk)

    assert result is not None
    result.refresh_from_db()
    assert result.status == "invalid"
    assert result.issue_counts.get(code, 0) >= 1, result.issue_counts
