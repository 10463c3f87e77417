"""Message-level checks shared by every format, and the example digest.

``check_messages`` walks one example's messages once: structure (objects, roles, string content), order
(optional system first, then user/assistant alternating), weights, and the size figures the statistics need.
It is the hot path of validation: the common case (every message exactly ``{role, content}``, in order) is
recognised by a few C-level passes over the whole list (``_fast``); anything else takes the per-message walk,
which finds and words each problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datasets.validation.codes import CODES, FORMAT_SEVERITY, Severity
from datasets.validation.report import Issue, make_issue

#: ``path(index, field)`` → the issue path of message ``index`` (``field`` None: the message itself).
PathFn = Callable[[int, "str | None"], str]


@dataclass(frozen=True, slots=True)
class Rules:
    """What a format allows in its messages."""

    name: str
    message_keys: frozenset[str]
    weights: bool  # whether a ``weight`` key is honoured (else it is an unknown key)


@dataclass(slots=True)
class Checked:
    """A line's messages after a successful check, and their size figures (characters of content)."""

    messages: list[dict[str, Any]]
    chars: int
    assistant_chars: int  # of trainable assistant messages (weight ≠ 0)
    trainable: int
    roles: list[str] | None = None  # set by the fast path, which has them at hand for the digest
    contents: list[str] | None = None


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, for messages ("a string", "null", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def preview(value: Any, limit: int = 40) -> str:
    """A short repr of a user value for messages (never the whole of a long string)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # nested deeper than repr allows; an int past the digit limit
        return json_type(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_NO_OVERRIDES: dict[str, Severity] = {}


class LineIssues:
    """The issues of one line; ``errors`` tells whether the line is unusable."""

    __slots__ = ("errors", "format", "issues", "line", "severity")

    def __init__(self, line: int, fmt: str | None = None) -> None:
        self.line = line
        self.format = fmt
        self.issues: list[Issue] = []
        self.errors = 0
        self.severity = FORMAT_SEVERITY.get(fmt, _NO_OVERRIDES) if fmt else _NO_OVERRIDES

    def add(self, code: str, path: str, message: str, suggestion: str | None = None) -> None:
        """Record ``code`` at ``path`` with its effective severity for this line's format."""
        severity = self.severity.get(code) or CODES[code]
        if severity is Severity.ERROR:
            self.errors += 1
        self.issues.append(make_issue(self.line, code, path, message, suggestion, severity))


def _message_detail(
    m: dict[str, Any], i: int, rules: Rules, path: PathFn, report: LineIssues
) -> tuple[Any, Any, Any, bool]:
    """The slow path for a message that is not exactly ``{role: str, content: str}``.

    Reports unknown keys, missing fields, non-string content and bad weights; returns ``(role, content,
    weight, ok)`` where ``ok`` is False when the message has an error of its own.
    """
    errors = report.errors
    for key in m:
        if key not in rules.message_keys:
            report.add("UNKNOWN_KEY", path(i, key), f"{path(i, key)} is not a known message key and is ignored.")
    role = m.get("role")
    if role is None:
        state = "missing" if "role" not in m else "null"
        report.add("MISSING_FIELD", path(i, "role"), f"{path(i, 'role')} is {state}; every message needs a role.")
    content = m.get("content")
    if content is None:
        state = "missing" if "content" not in m else "null"
        report.add(
            "MISSING_FIELD",
            path(i, "content"),
            f"{path(i, 'content')} is {state}; every message needs its text.",
            "Add the message text as a string in 'content'.",
        )
    elif type(content) is not str:
        report.add(
            "CONTENT_NOT_STRING",
            path(i, "content"),
            f"{path(i, 'content')} is {json_type(content)}, not a string.",
        )
    weight = None
    if rules.weights and "weight" in m:
        weight = m["weight"]
        if type(weight) is not int or weight not in (0, 1):
            report.add(
                "INVALID_WEIGHT",
                path(i, "weight"),
                f"{path(i, 'weight')} is {preview(weight)}; a weight must be the integer 0 or 1.",
            )
        elif role != "assistant":
            report.add(
                "INVALID_WEIGHT",
                path(i, "weight"),
                f"{path(i, 'weight')} is set on a {preview(role)} message; only assistant messages take a weight.",
                "Remove the weight from non-assistant messages (they are never trained on).",
            )
    return role, content, weight, report.errors == errors


_PATTERNS: dict[tuple[int, bool], list[str]] = {}


def _pattern(n: int, system: bool) -> list[str] | None:
    """The roles of a well-formed n-message conversation (optional system, user/assistant, ends assistant)."""
    key = (n, system)
    pattern = _PATTERNS.get(key)
    if pattern is None:
        turns = n - system
        if turns < 2 or turns % 2 or n > 4096:
            return None
        pattern = _PATTERNS[key] = ["system"] * system + ["user", "assistant"] * (turns // 2)
    return pattern


def _fast(msgs: list[Any]) -> Checked | None:
    """The common case in a few C-level passes: every message exactly ``{role: str, content: str}``, non-blank,
    roles in order. None when anything differs; the full check then finds and words the problem.
    """
    n = len(msgs)
    try:
        roles = [m["role"] for m in msgs]
        contents = [m["content"] for m in msgs]
        system = roles[0] == "system"
        if (
            roles != _pattern(n, system)
            or sum(map(len, msgs)) != 2 * n
            or not all(contents)
            or any(map(str.isspace, contents))  # TypeError unless every content is a string
        ):
            return None
    except (TypeError, KeyError):
        return None
    chars = sum(map(len, contents))
    assistant_chars = sum(map(len, contents[1 + system :: 2]))
    return Checked(msgs, chars, assistant_chars, (n - system) // 2, roles, contents)


def check_messages(
    msgs: list[Any],
    rules: Rules,
    path: PathFn,
    report: LineIssues,
    *,
    check_end: bool = True,
    trainable_from: int = 0,
) -> Checked | None:
    """Check one example's messages; the normalized messages and sizes, or None when there is an error.

    Assistant messages before ``trainable_from`` are context only (weight 0): the v4 history. ``check_end``
    False skips the end checks (the caller already reported why the end is missing).
    """
    if trainable_from == 0 and msgs:
        checked = _fast(msgs)
        if checked is not None:
            return checked
    out: list[dict[str, Any]] = []
    expected = "user"
    prev: str | None = None  # the last user/assistant role seen
    last: str | None = None  # the last valid role seen (system included)
    has_assistant = False
    # Once a message's role is unknown, the order of the rest cannot be judged; its own issue is enough.
    ordered = True
    chars = assistant_chars = trainable = 0
    errors = report.errors
    for i, m in enumerate(msgs):
        if type(m) is not dict:
            ordered = False
            report.add(
                "NOT_AN_OBJECT",
                path(i, None),
                f"{path(i, None)} is {json_type(m)}; each message must be an object with 'role' and 'content'.",
                'Write each message as {"role": "user", "content": "..."}.',
            )
            continue
        role = m.get("role")
        content = m.get("content")
        weight = None
        if len(m) != 2 or type(content) is not str or type(role) is not str:
            role, content, weight, fine = _message_detail(m, i, rules, path, report)
            message = {"role": role, "content": content}
            if weight is not None:
                message["weight"] = weight
        else:
            fine = True
            message = m
        if role == "user" or role == "assistant":
            if role != expected and ordered:
                if prev is None:
                    text = (
                        f"{path(i, 'role')} is 'assistant' before any 'user' message; after the optional system "
                        "message a conversation starts with 'user'."
                    )
                else:
                    text = f"{path(i, 'role')} is '{role}' after another '{role}'; roles must alternate user/assistant."
                report.add("ROLES_NOT_ALTERNATING", path(i, "role"), text)
            expected = "assistant" if role == "user" else "user"
            prev = last = role
        elif role == "system":
            if i != 0 and ordered:
                report.add(
                    "SYSTEM_NOT_FIRST",
                    path(i, "role"),
                    f"{path(i, 'role')} is 'system' but only the first message may be a system message.",
                )
            last = role
        else:
            ordered = False
            if role is None:
                continue
            report.add(
                "UNKNOWN_ROLE",
                path(i, "role"),
                f"{path(i, 'role')} is {preview(role)}; the role must be 'system', 'user' or 'assistant'.",
            )
        if not fine or type(content) is not str:
            continue
        if not content or content.isspace():
            report.add("EMPTY_CONTENT", path(i, "content"), f"{path(i, 'content')} is empty or only whitespace.")
            continue
        chars += len(content)
        if role == "assistant":
            has_assistant = True
            if i < trainable_from:
                message = {"role": role, "content": content, "weight": 0}
            elif weight != 0:
                trainable += 1
                assistant_chars += len(content)
        out.append(message)
    if check_end and ordered and report.errors == errors:
        if not has_assistant:
            report.add(
                "NO_ASSISTANT_MESSAGE",
                path(-1, None),
                "the conversation has no assistant message, so there is nothing to train on.",
            )
        elif last != "assistant":
            report.add(
                "LAST_NOT_ASSISTANT",
                path(len(msgs) - 1, "role"),
                f"{path(len(msgs) - 1, 'role')} is '{last}'; the conversation must end with an assistant message.",
            )
    if report.errors != errors:
        return None
    return Checked(out, chars, assistant_chars, trainable)
