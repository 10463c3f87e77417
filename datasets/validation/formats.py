"""The three accepted line formats: how a line is recognised and how it becomes messages.

- ``chat``: ``{"messages": [{"role", "content", "weight"?, "name"?}], "metadata"?: {...}}`` (``name`` is accepted
  and not passed on to training).
- ``brightrun-v4``: one training pair per line (SPEC §7.2), after an optional ``{"_meta": {...}}`` first line.
  Messages are ``[system(system_prompt) if not blank] + conversation_history + [user(current_user_input),
  assistant(target_response)]``; assistant messages of the history are context (weight 0), so each line
  trains exactly one reply. Issue paths name the real field (``conversation_history[2].role``,
  ``target_response``).
- ``turns`` (legacy): ``{"conversation_id": str, "turns": [{"role", "content"}]}``.

A line *looks like* a format when it has that format's list key (``messages``, ``turns``) or, for v4, any of
``current_user_input``, ``target_response``, ``conversation_history``.
"""

from __future__ import annotations

from typing import Any

from datasets.validation.checks import Checked, LineIssues, PathFn, Rules, check_messages, json_type

CHAT, V4, TURNS = "chat", "brightrun-v4", "turns"
FORMATS = (CHAT, V4, TURNS)
V4_META = "brightrun-v4 header"

CHAT_KEYS = frozenset({"messages", "metadata"})
V4_KEYS = frozenset(
    {
        "id",
        "conversation_id",
        "turn_number",
        "conversation_metadata",
        "system_prompt",
        "conversation_history",
        "current_user_input",
        "emotional_context",
        "target_response",
        "training_metadata",
    }
)
V4_SIGNATURE = ("current_user_input", "target_response", "conversation_history")
TURNS_KEYS = frozenset({"conversation_id", "turns", "metadata"})

RULES = {
    CHAT: Rules(CHAT, frozenset({"role", "content", "weight", "name"}), weights=True),
    TURNS: Rules(TURNS, frozenset({"role", "content", "weight", "name"}), weights=True),
    V4: Rules(V4, frozenset({"turn", "role", "content", "emotional_state"}), weights=False),
}

SHAPES = (
    'chat {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}, '
    'brightrun-v4 {"id", "conversation_id", "conversation_history": [...], "current_user_input", '
    '"target_response"} or turns {"conversation_id": "...", "turns": [{"role", "content"}, ...]}'
)


def looks_like(obj: dict[str, Any]) -> str | None:
    """The format ``obj`` looks like (``V4_META`` for a v4 header line), or None."""
    if "messages" in obj:
        return CHAT
    if "turns" in obj:
        return TURNS
    if "_meta" in obj:
        return V4_META
    for key in V4_SIGNATURE:
        if key in obj:
            return V4
    return None


def is_format(obj: dict[str, Any], fmt: str) -> bool:
    """Whether ``obj`` carries ``fmt``'s signature key (checked before :func:`looks_like`, for speed)."""
    if fmt == CHAT:
        return "messages" in obj
    if fmt == TURNS:
        return "turns" in obj
    return any(key in obj for key in V4_SIGNATURE)


def _unknown_keys(obj: dict[str, Any], known: frozenset[str], fmt: str, report: LineIssues) -> None:
    if obj.keys() <= known:
        return
    for key in obj:
        if key not in known:
            report.add("UNKNOWN_KEY", key, f"'{key}' is not a known {fmt} key and is ignored.")


def _list_path(name: str) -> PathFn:
    def path(i: int, key: str | None) -> str:
        if i < 0:
            return name
        return f"{name}[{i}]" if key is None else f"{name}[{i}].{key}"

    return path


_CHAT_PATH = _list_path("messages")
_TURNS_PATH = _list_path("turns")


def _message_list(obj: dict[str, Any], key: str, report: LineIssues, *, allow_empty: bool = False) -> list | None:
    value = obj.get(key)
    if type(value) is list:
        if value or allow_empty:
            return value
        report.add("EMPTY_MESSAGES", key, f"'{key}' is an empty list; an example needs messages.")
        return None
    if value is None:
        state = "missing" if key not in obj else "null"
        report.add(
            "MISSING_MESSAGES",
            key,
            f"'{key}' is {state}; every line needs its list of messages.",
            f'Add \'{key}\' as a list of {{"role", "content"}} objects.',
        )
    else:
        report.add(
            "MISSING_MESSAGES",
            key,
            f"'{key}' is {json_type(value)}, not a list of messages.",
            f'Make \'{key}\' a list of {{"role", "content"}} objects.',
        )
    return None


def check_chat(obj: dict[str, Any], report: LineIssues) -> Checked | None:
    """A chat line's messages, or None when the line has an error."""
    if len(obj) != 1 and not obj.keys() <= CHAT_KEYS:
        _unknown_keys(obj, CHAT_KEYS, CHAT, report)
    metadata = obj.get("metadata")
    if metadata is not None and type(metadata) is not dict:
        report.add(
            "NOT_AN_OBJECT",
            "metadata",
            f"'metadata' is {json_type(metadata)}; it must be an object.",
            "Make 'metadata' an object ({...}) or leave it out.",
        )
    msgs = _message_list(obj, "messages", report)
    if msgs is None:
        return None
    checked = check_messages(msgs, RULES[CHAT], _CHAT_PATH, report)
    return checked if report.errors == 0 else None


def check_turns(obj: dict[str, Any], report: LineIssues) -> Checked | None:
    """A legacy turns line's messages, or None when the line has an error."""
    _unknown_keys(obj, TURNS_KEYS, TURNS, report)
    _required(obj, "conversation_id", report)
    msgs = _message_list(obj, "turns", report)
    if msgs is None:
        return None
    checked = check_messages(msgs, RULES[TURNS], _TURNS_PATH, report)
    return checked if report.errors == 0 else None


def _required(obj: dict[str, Any], key: str, report: LineIssues) -> bool:
    value = obj.get(key)
    if value is None or value == "":
        state = "missing" if key not in obj else ("null" if value is None else "empty")
        report.add(
            "MISSING_FIELD",
            key,
            f"'{key}' is {state}; it is required in this format.",
            f"Add a non-empty '{key}' to every line.",
        )
        return False
    return True


def _v4_text(obj: dict[str, Any], key: str, report: LineIssues) -> bool:
    """A required v4 text field: present, a string (emptiness is checked with the messages)."""
    if not _required(obj, key, report):
        return False
    if type(obj[key]) is not str:
        report.add("CONTENT_NOT_STRING", key, f"'{key}' is {json_type(obj[key])}, not a string.")
        return False
    return True


def check_v4(obj: dict[str, Any], report: LineIssues) -> Checked | None:
    """A v4 pair line's messages, or None when the line has an error."""
    if not obj.keys() <= V4_KEYS:
        _unknown_keys(obj, V4_KEYS, V4, report)
    _required(obj, "id", report)
    _required(obj, "conversation_id", report)
    has_input = _v4_text(obj, "current_user_input", report)
    has_target = _v4_text(obj, "target_response", report)
    history = _message_list(obj, "conversation_history", report, allow_empty=True)
    system = obj.get("system_prompt")
    msgs: list[Any] = []
    if system is not None and type(system) is not str:
        report.add("CONTENT_NOT_STRING", "system_prompt", f"'system_prompt' is {json_type(system)}, not a string.")
    elif system and not system.isspace():
        msgs.append({"role": "system", "content": system})
    offset = len(msgs)
    if history is not None:
        msgs.extend(history)
    target_index = len(msgs) + 1
    if has_input:
        msgs.append({"role": "user", "content": obj["current_user_input"]})
    if has_target:
        msgs.append({"role": "assistant", "content": obj["target_response"]})

    def path(i: int, key: str | None) -> str:
        if i < 0:
            return "target_response"
        if i < offset:
            return "system_prompt"
        if i - offset < len(history or ()):
            base = f"conversation_history[{i - offset}]"
            return base if key is None else f"{base}.{key}"
        return "current_user_input" if has_input and i == len(msgs) - 1 - has_target else "target_response"

    errors = report.errors
    checked = check_messages(
        msgs, RULES[V4], path, report, check_end=has_input and has_target, trainable_from=target_index
    )
    if report.errors != errors:
        _explain_repeated_input(obj, history, report)
    return checked if report.errors == 0 else None


def _explain_repeated_input(obj: dict[str, Any], history: list | None, report: LineIssues) -> None:
    # The earlier product repeated the current user turn at the end of the history (SPEC §14); say so plainly.
    if not history or type(history[-1]) is not dict or history[-1].get("role") != "user":
        return
    for issue in report.issues:
        if issue.code == "ROLES_NOT_ALTERNATING" and issue.path == "current_user_input":
            repeated = history[-1].get("content") == obj.get("current_user_input")
            issue.message = (
                f"current_user_input follows conversation_history[{len(history) - 1}], which is also a user "
                + ("turn with the same text, so the user turn appears twice." if repeated else "turn.")
            )
            issue.suggestion = (
                "End conversation_history with an assistant turn (or leave it empty); the current user turn "
                "belongs only in current_user_input."
            )


def check_v4_meta(obj: dict[str, Any], report: LineIssues) -> None:
    """The optional v4 header line: ``{"_meta": {...}}``."""
    if type(obj["_meta"]) is not dict:
        report.add("NOT_AN_OBJECT", "_meta", f"'_meta' is {json_type(obj['_meta'])}; it must be an object.")
    for key in obj:
        if key != "_meta":
            report.add("UNKNOWN_KEY", key, f"'{key}' is not a known key of the _meta header line and is ignored.")


CHECKERS = {CHAT: check_chat, V4: check_v4, TURNS: check_turns}
