"""The streaming validator: one pass over the lines, issues into a bounded log, examples into the statistics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import msgspec
from django.conf import settings

from datasets.validation.checks import LineIssues
from datasets.validation.digest import example_digest
from datasets.validation.formats import CHECKERS, FORMATS, SHAPES, V4, V4_META, check_v4_meta, is_format, looks_like
from datasets.validation.reader import MAX_LINE_BYTES, LineReader
from datasets.validation.report import IssueLog, ValidationReport, make_issue
from datasets.validation.stats import DigestSet, StatsCollector, estimate_tokens


@dataclass(slots=True)
class Example:
    """One valid line as training input.

    ``messages`` are ``{"role", "content"}`` (plus ``"weight"`` when given, and weight 0 on v4 history replies);
    ``digest`` is the SHA-256 of the normalized content (see :func:`datasets.validation.digest.reference_digest`);
    ``split`` is "train" or "validation". ``assistant_tokens``, ``trainable_pairs`` and ``duplicate`` feed
    the statistics.
    """

    line: int
    messages: list[dict[str, Any]]
    digest: bytes
    split: str
    estimated_tokens: int
    assistant_tokens: int = 0
    trainable_pairs: int = 0
    duplicate: bool = False


def split_of(digest: bytes, validation_percent: int) -> str:
    """The split of an example: "validation" when its digest, as a big-endian integer, mod 100 is below
    ``validation_percent``, else "train". Deterministic, and identical for duplicates.
    """
    return "validation" if int.from_bytes(digest, "big") % 100 < validation_percent else "train"


_NOTES = {
    "BOM_PRESENT": "the file starts with a UTF-8 byte order mark (BOM).",
    # Reported once, at the first CRLF line: the cause is the file's line-ending style, not each line.
    "CRLF_LINE_ENDINGS": "the file uses Windows (CRLF) line endings (first seen on this line).",
}
_DUPLICATE = "the line repeats the content of an earlier line."


def _check_options(fmt: str, validation_percent: int) -> None:
    if fmt != "auto" and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected 'auto' or one of {', '.join(FORMATS)}")
    if not 0 <= validation_percent <= 100:
        raise ValueError("validation_percent must be between 0 and 100")


class _Scan:
    """One pass over a stream: yields valid examples, sends every issue to ``log``.

    For a range of a file that does not start at its beginning (parallel validation): ``first_range`` False
    (no BOM, no v4 header: neither is on the file's first line), ``fmt`` the file's format and ``detected_at``
    the file line it was detected from. ``crlf_in_log`` False keeps the CRLF note out of ``log`` (the file's
    first CRLF line is then ``reader.crlf_line``; the merge reports it once).
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        fmt: str,
        validation_percent: int,
        max_bytes: int | None,
        context_tokens: int | None,
        log: IssueLog,
        detected_at: int | None = None,
        first_range: bool = True,
        crlf_in_log: bool = True,
    ) -> None:
        _check_options(fmt, validation_percent)
        self.log = log
        self.crlf_in_log = crlf_in_log
        self.reader = LineReader(stream, max_bytes=max_bytes, on_note=self._note, strip_bom=first_range)
        self.format: str | None = None if fmt == "auto" else fmt
        self.detected_at: int | None = None if fmt == "auto" else detected_at
        self.meta_allowed = first_range  # a v4 header is allowed on the first data line only
        self.validation_percent = validation_percent
        self.context_tokens = context_tokens
        self.data_lines = 0
        self.seen = DigestSet()

    def _note(self, code: str, lineno: int) -> None:
        if code == "CRLF_LINE_ENDINGS" and not self.crlf_in_log:
            return
        self.log.add(make_issue(lineno, code, "", _NOTES[code]))

    def _flush(self, report: LineIssues) -> None:
        add = self.log.add
        for issue in report.issues:
            add(issue)

    def _decode_error(self, lineno: int, line: bytes, exc: Exception) -> None:
        if isinstance(exc, RecursionError):
            # msgspec raises RecursionError (not DecodeError) on nesting deeper than the interpreter's limit.
            self.log.add(
                make_issue(
                    lineno, "INVALID_JSON", "", "the line nests arrays or objects too deeply to be read as JSON."
                )
            )
            return
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as bad:
            self.log.add(
                make_issue(
                    lineno,
                    "INVALID_UTF8",
                    "",
                    f"byte {bad.start + 1} of the line (0x{line[bad.start]:02x}) is not valid UTF-8.",
                )
            )
            return
        self.log.add(make_issue(lineno, "INVALID_JSON", "", f"the line is not valid JSON: {exc}."))

    def _mixed(self, kind: str, report: LineIssues) -> None:
        if kind == V4_META:
            text = "a '_meta' header line is only allowed as the first line of a brightrun-v4 file."
        else:
            origin = f"detected from line {self.detected_at}" if self.detected_at else "chosen for the dataset"
            text = f"the line is in the {kind} format, but the file's format is {self.format} ({origin})."
        report.add("MIXED_FORMATS", "", text)

    def _resolve(self, obj: dict[str, Any], lineno: int, report: LineIssues) -> str | None:
        """The format to check a line with when it lacks the file format's signature (or none is known yet).

        None when the line is settled here: a v4 header, a line of another format (MIXED_FORMATS), or a line
        that matches no format before one is known. Detects the file's format from the first line that has one.
        """
        fmt = self.format
        kind = looks_like(obj)
        if kind == V4_META:
            if self.meta_allowed and fmt in (None, V4):
                if fmt is None:
                    self.format, self.detected_at = V4, lineno
                check_v4_meta(obj, report)
            else:
                self._mixed(kind, report)
            return None
        if kind is None:
            if fmt is None:
                report.add(
                    "MISSING_MESSAGES",
                    "",
                    f"the line matches none of the accepted formats: {SHAPES}.",
                    'Convert the file to the chat format (one {"messages": [...]} object per line).',
                )
            # Otherwise checked as the file's format, which names what is missing.
            return fmt
        if fmt is None:
            self.format, self.detected_at = kind, lineno
            return kind
        self._mixed(kind, report)
        return None

    def __iter__(self) -> Iterator[Example]:
        decode = msgspec.json.Decoder().decode
        vp = self.validation_percent
        context = self.context_tokens
        seen_add = self.seen.add
        log_add = self.log.add
        data_lines = 0
        try:
            for lineno, line in self.reader:
                data_lines += 1
                if line is None:
                    log_add(make_issue(lineno, "LINE_TOO_LONG", "", f"the line is longer than {_MIB} MiB; skipped."))
                    self.meta_allowed = False
                    continue
                try:
                    obj = decode(line)
                except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
                    self._decode_error(lineno, line, exc)
                    self.meta_allowed = False
                    continue
                fmt = self.format
                report = LineIssues(lineno, fmt)
                if type(obj) is not dict:
                    report.add("NOT_AN_OBJECT", "", f"the line is a JSON {_kind(obj)}; each line must be an object.")
                    fmt = None
                elif fmt is None or not is_format(obj, fmt):
                    fmt = self._resolve(obj, lineno, report)
                    if fmt is not None and fmt != report.format:
                        report = LineIssues(lineno, fmt)
                self.meta_allowed = False
                checked = CHECKERS[fmt](obj, report) if fmt is not None and not report.errors else None
                if checked is None:
                    self._flush(report)
                    continue
                roles, contents = checked.roles, checked.contents
                if roles is None or contents is None:
                    roles = [m["role"] for m in checked.messages]
                    contents = [m["content"] for m in checked.messages]
                digest = example_digest(roles, contents)
                tokens = estimate_tokens(checked.chars)
                # The split is a function of the normalized content, so duplicates always land in the same
                # split and never leak between train and validation.
                example = Example(
                    lineno,
                    checked.messages,
                    digest,
                    split_of(digest, vp),
                    tokens,
                    estimate_tokens(checked.assistant_chars),
                    checked.trainable,
                    seen_add(digest),
                )
                if example.duplicate:
                    report.add("DUPLICATE_EXAMPLE", "", _DUPLICATE)
                if context is not None and tokens > context:
                    report.add(
                        "EXCEEDS_CONTEXT",
                        "",
                        f"the example has about {tokens:,} estimated tokens, more than the base model's context "
                        f"of {context:,}; it will be truncated.",
                    )
                if report.issues:
                    self._flush(report)
                yield example
        finally:
            self.data_lines = data_lines


_MIB = MAX_LINE_BYTES >> 20


def _kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _setting(value: int | None, name: str) -> int:
    return int(getattr(settings, name)) if value is None else value


def iter_examples(
    stream: BinaryIO,
    *,
    format: str = "auto",
    validation_percent: int | None = None,
    max_bytes: int | None = None,
) -> Iterator[Example]:
    """The valid examples of ``stream`` in file order, streaming: exactly the lines that
    :func:`validate_stream` counts as examples (no errors; warnings allowed), split the same way.

    Defaults come from ``DATASET_VALIDATION_PERCENT`` and ``DATASET_MAX_BYTES``. Safe to call from any context;
    reads the stream once.
    """
    scan = _Scan(
        stream,
        fmt=format,
        validation_percent=_setting(validation_percent, "DATASET_VALIDATION_PERCENT"),
        max_bytes=_setting(max_bytes, "DATASET_MAX_BYTES"),
        context_tokens=None,
        log=IssueLog(0),
    )
    yield from scan


def validate_stream(
    stream: BinaryIO,
    *,
    format: str = "auto",
    context_tokens: int | None = None,
    min_examples: int | None = None,
    validation_percent: int | None = None,
    max_bytes: int | None = None,
    max_issues: int = 200,
) -> ValidationReport:
    """Validate a JSONL dataset read from the binary file-like ``stream`` (anything with ``.read(n)``).

    Reads 1 MiB at a time and keeps no line beyond the one being checked, so memory does not grow with the
    file. Defaults come from ``DATASET_MIN_EXAMPLES``, ``DATASET_VALIDATION_PERCENT`` and
    ``DATASET_MAX_BYTES``. Raises ValueError for an unknown ``format`` or a ``validation_percent`` outside
    0-100; everything wrong with the data is in the report. One core; :func:`validate_ranges` gives the same
    report using several when the file can be read by byte ranges.
    """
    started = time.perf_counter()
    min_examples = _setting(min_examples, "DATASET_MIN_EXAMPLES")
    validation_percent = _setting(validation_percent, "DATASET_VALIDATION_PERCENT")
    max_bytes = _setting(max_bytes, "DATASET_MAX_BYTES")
    log = IssueLog(max_issues)
    scan = _Scan(
        stream,
        fmt=format,
        validation_percent=validation_percent,
        max_bytes=max_bytes,
        context_tokens=context_tokens,
        log=log,
    )
    stats = StatsCollector(validation_percent)
    add = stats.add
    for example in scan:
        add(example)
    reader = scan.reader
    _file_issues(
        log,
        stats,
        too_large=reader.too_large,
        data_lines=scan.data_lines,
        min_examples=min_examples,
        max_bytes=max_bytes,
    )
    return _report(
        log,
        stats,
        format=scan.format,
        size=reader.bytes_read,
        lines=reader.lines,
        started=started,
        settings_used={
            "min_examples": min_examples,
            "validation_percent": validation_percent,
            "context_tokens": context_tokens,
            "max_bytes": max_bytes,
        },
    )


def _report(
    log: IssueLog,
    stats: StatsCollector,
    *,
    format: str | None,
    size: int,
    lines: int,
    started: float,
    settings_used: dict[str, Any],
) -> ValidationReport:
    return ValidationReport(
        status="invalid" if log.error_count else "valid",
        format=format,
        counts=log.ordered_counts(),
        error_count=log.error_count,
        warning_count=log.warning_count,
        issues=log.issues,
        issues_truncated=log.truncated,
        statistics=stats.as_dict(),
        bytes=size,
        lines=lines,
        duration_seconds=round(time.perf_counter() - started, 4),
        settings=settings_used,
    )


def _file_issues(
    log: IssueLog, stats: StatsCollector, *, too_large: bool, data_lines: int, min_examples: int, max_bytes: int
) -> None:
    """File-level issues, known only at the end (stored ahead of the line issues)."""
    if too_large:
        log.add_file_issue(
            make_issue(
                None,
                "FILE_TOO_LARGE",
                "",
                f"the file is larger than the limit of {max_bytes:,} bytes; validation stopped there.",
            )
        )
    elif data_lines == 0:
        log.add_file_issue(
            make_issue(None, "EMPTY_FILE", "", "the file has no data lines (it is empty or only blank lines).")
        )
    elif stats.examples < min_examples:
        log.add_file_issue(
            make_issue(
                None,
                "TOO_FEW_EXAMPLES",
                "",
                f"the file has {stats.examples} valid example{'s' if stats.examples != 1 else ''}; at least "
                f"{min_examples} are required.",
            )
        )


# --- parallel validation over byte ranges ----------------------------------------------------------------------

#: Below this size :func:`validate_ranges` validates sequentially: starting processes would cost more than the
#: pass itself (about 0.2 s for 32 MB on one core).
