"""The validation report: issues (line, code, severity, path, message, suggestion), counts and statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datasets.validation.codes import CODES, SUGGESTIONS, Severity


@dataclass(slots=True)
class Issue:
    """One problem found by validation. ``line`` is 1-based, or None for file-level issues.

    ``severity`` is the effective severity (a format may soften a code, see ``codes.FORMAT_SEVERITY``);
    ``path`` names the field (``messages[3].role``), or is "" when the whole line or file is meant.
    """

    line: int | None
    code: str
    severity: Severity
    path: str
    message: str
    suggestion: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-serializable form, as stored in reports and returned by the API."""
        return {
            "line": self.line,
            "code": self.code,
            "severity": str(self.severity),
            "path": self.path,
            "message": self.message,
            "suggestion": self.suggestion,
        }


def make_issue(
    line: int | None,
    code: str,
    path: str,
    message: str,
    suggestion: str | None = None,
    severity: Severity | None = None,
) -> Issue:
    """An :class:`Issue` with the code's default severity and suggestion unless given."""
    return Issue(
        line=line,
        code=code,
        severity=severity or CODES[code],
        path=path,
        message=message,
        suggestion=suggestion or SUGGESTIONS[code],
    )


class IssueLog:
    """Counts every issue by code and keeps the first ``max_issues`` of them (memory stays bounded).

    File-level issues (known only at the end) go to the front of the stored list, evicting the last line issue
    when it is full, so the verdict's cause is always listed.
    """

    def __init__(self, max_issues: int) -> None:
        self.max_issues = max_issues
        self.issues: list[Issue] = []
        self.counts: dict[str, int] = {}
        self.error_count = 0
        self.warning_count = 0
        self.truncated = False

    def add(self, issue: Issue) -> None:
        """Count ``issue``; store it while fewer than ``max_issues`` are stored."""
        self.counts[issue.code] = self.counts.get(issue.code, 0) + 1
        if issue.severity is Severity.ERROR:
            self.error_count += 1
        else:
            self.warning_count += 1
        if len(self.issues) < self.max_issues:
            self.issues.append(issue)
        else:
            self.truncated = True

    def absorb(self, stored: list[Issue], counts: dict[str, int], error_count: int, warning_count: int) -> None:
        """Take over the issues of a later part of the file, found by another log: add its totals, and store from
        ``stored`` (the first of its issues, in order) while there is room.

        ``stored`` must hold at least ``max_issues`` issues unless it holds all of them, so that what this log
        stores is the first ``max_issues`` of the whole file. Only before any file-level issue.
        """
        for code, count in counts.items():
            self.counts[code] = self.counts.get(code, 0) + count
        self.error_count += error_count
        self.warning_count += warning_count
        self.issues.extend(stored[: self.max_issues - len(self.issues)])
        self.truncated = self.error_count + self.warning_count > len(self.issues)

    def add_file_issue(self, issue: Issue) -> None:
        """Count ``issue`` and store it after the file-level issues already stored, before the line issues."""
        self.add(issue)
        if self.max_issues == 0:
            return
        if self.issues and self.issues[-1] is issue:
            self.issues.pop()
        else:
            self.issues.pop()  # full (``add`` marked the log truncated): the last line issue makes room
        front = sum(1 for kept in self.issues if kept.line is None)
        self.issues.insert(front, issue)

    def ordered_counts(self) -> dict[str, int]:
        """Counts in the order of :data:`CODES` (stable output for the UI and tests)."""
        return {code: self.counts[code] for code in CODES if code in self.counts}


@dataclass
class ValidationReport:
    """Result of :func:`datasets.validation.validate_stream`; ``status`` is "invalid" iff there is an error."""

    status: str
    format: str | None
    counts: dict[str, int]
    error_count: int
    warning_count: int
    issues: list[Issue]
    issues_truncated: bool
    statistics: dict[str, Any]
    bytes: int
    lines: int
    duration_seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def is_valid(self) -> bool:
        return self.status == "valid"

    def as_dict(self) -> dict[str, Any]:
        """The JSON-serializable report (the shape stored on datasets and printed by ``validate_dataset --json``)."""
        return {
            "status": self.status,
            "format": self.format,
            "counts": dict(self.counts),
            "error_count": self.error_count,
            "warning_count": self.warning_count,
            "issues": [issue.as_dict() for issue in self.issues],
            "issues_truncated": self.issues_truncated,
            "statistics": self.statistics,
            "bytes": self.bytes,
            "lines": self.lines,
            "duration_seconds": self.duration_seconds,
            "settings": dict(self.settings),
        }
