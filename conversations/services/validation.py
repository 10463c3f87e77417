"""Validation of a stored conversation, the first step of enrichment (SPEC §5.2 step 1).

Pure apart from reading the conversation's turns; never raises on bad data: every problem becomes an issue
``{"code", "path", "message", "suggestion"}``. Paths use 0-based indexes into the turns in conversation order
(``turns[2].emotional_context.intensity``) and the field names of the generated JSON, so a report reads the
same for a stored conversation as for a raw response.

Blockers stop the enrichment chain (status ``validation_failed``); warnings are kept in the report and, for
suspected truncation, raise a flag later (``quality.conversation_rescore``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from conversations.models import Conversation, Turn
from conversations.services.acceptance import truncation_findings

#: Content shorter than this (after stripping) is a SHORT_CONTENT warning.
SHORT_CONTENT_CHARS = 10
#: Intensities at or beyond these bounds (but inside 0..1) are an EXTREME_INTENSITY warning.
EXTREME_LOW, EXTREME_HIGH = 0.05, 0.95
ROLES = frozenset(Turn.Role.values)

_METADATA_BLOCKERS = (
    ("client_persona", "MISSING_CLIENT_PERSONA", "the client persona"),
    ("session_context", "MISSING_SESSION_CONTEXT", "the session context"),
    ("conversation_phase", "MISSING_CONVERSATION_PHASE", "the conversation phase"),
)


def _issue(code: str, path: str, message: str, suggestion: str) -> dict[str, str]:
    return {"code": code, "path": path, "message": message, "suggestion": suggestion}


def conversation_turns(conversation: Conversation) -> list[Turn]:
    """The conversation's turns in order (one query)."""
    return list(conversation.turns.order_by("index"))


def _blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip()


def conversation_validate(*, conversation: Conversation, turns: Sequence[Turn] | None = None) -> dict[str, Any]:
    """Check a stored conversation; returns ``{"valid", "blockers", "warnings"}``.

    ``turns`` (in order) may be passed to avoid a query or to validate unsaved edits. Read-only; safe to call
    from any context (services, admin, tasks); the caller decides what to store.
    """
    turns = list(turns) if turns is not None else conversation_turns(conversation)
    blockers: list[dict[str, str]] = []
    warnings: list[dict[str, str]] = []

    meta = conversation.conversation_metadata if isinstance(conversation.conversation_metadata, dict) else {}
    for name, code, label in _METADATA_BLOCKERS:
        if _blank(meta.get(name)):
            blockers.append(
                _issue(
                    code,
                    f"conversation_metadata.{name}",
                    f"{label.capitalize()} is missing.",
                    f"Fill in {label} in the conversation metadata, or regenerate the conversation.",
                )
            )
    if _blank(meta.get("expected_outcome")):
        warnings.append(
            _issue(
                "MISSING_EXPECTED_OUTCOME",
                "conversation_metadata.expected_outcome",
                "The expected outcome is missing.",
                "Describe what the client should leave the conversation with.",
            )
        )

    if not turns:
        blockers.append(
            _issue("MISSING_TURNS", "turns", "The conversation has no turns.", "Regenerate the conversation.")
        )
        return {"valid": False, "blockers": blockers, "warnings": warnings}
    if len(turns) < 2:
        blockers.append(
            _issue(
                "INSUFFICIENT_TURNS",
                "turns",
                f"At least 2 turns (one exchange) are required, got {len(turns)}.",
                "Regenerate the conversation so it has at least one user turn and one assistant reply.",
            )
        )

    previous_role = None
    for i, turn in enumerate(turns):
        base = f"turns[{i}]"
        role = turn.role
        if role not in ROLES:
            blockers.append(
                _issue(
                    "INVALID_ROLE",
                    f"{base}.role",
                    f"Role {role!r} is not 'user' or 'assistant'.",
                    "Set the role to 'user' (client) or 'assistant' (consultant).",
                )
            )
        elif i == 0 and role != Turn.Role.USER:
            warnings.append(
                _issue(
                    "ROLE_NOT_ALTERNATING",
                    f"{base}.role",
                    "The conversation starts with an assistant turn.",
                    "Start with the client's message; an assistant turn with no user turn before it yields no "
                    "training pair.",
                )
            )
        elif role == previous_role:
            warnings.append(
                _issue(
                    "ROLE_NOT_ALTERNATING",
                    f"{base}.role",
                    f"Two {role} turns in a row (turns {i} and {i + 1}).",
                    "Merge the two turns or regenerate from this turn so roles alternate.",
                )
            )
        previous_role = role

        content = turn.content if isinstance(turn.content, str) else ""
        if not content.strip():
            blockers.append(
                _issue("MISSING_CONTENT", f"{base}.content", "The turn has no content.", "Write the turn's text.")
            )
        elif len(content.strip()) < SHORT_CONTENT_CHARS:
            warnings.append(
                _issue(
                    "SHORT_CONTENT",
                    f"{base}.content",
                    f"The turn has only {len(content.strip())} characters.",
                    f"Expand the turn to at least {SHORT_CONTENT_CHARS} characters.",
                )
            )

        if _blank(turn.primary_emotion):
            blockers.append(
                _issue(
                    "MISSING_PRIMARY_EMOTION",
                    f"{base}.emotional_context.primary_emotion",
                    "The turn has no primary emotion.",
                    "Label the speaker's main emotion (for example 'anxiety' or 'relief').",
                )
            )

        intensity = turn.intensity
        path = f"{base}.emotional_context.intensity"
        if intensity is None or not isinstance(intensity, int | float) or not math.isfinite(intensity):
            blockers.append(
                _issue(
                    "INTENSITY_OUT_OF_RANGE",
                    path,
                    f"The intensity is missing or not a number ({intensity!r}).",
                    "Set an intensity between 0 and 1.",
                )
            )
        elif not 0 <= intensity <= 1:
            blockers.append(
                _issue(
                    "INTENSITY_OUT_OF_RANGE",
                    path,
                    f"The intensity {intensity} is outside 0..1.",
                    "Set an intensity between 0 and 1.",
                )
            )
        elif intensity <= EXTREME_LOW or intensity >= EXTREME_HIGH:
            warnings.append(
                _issue(
                    "EXTREME_INTENSITY",
                    path,
                    f"The intensity {intensity} is at the extreme of the scale.",
                    "Check that the emotion really is this weak or this strong.",
                )
            )

    for finding in truncation_findings([{"role": t.role, "content": t.content} for t in turns]):
        warnings.append(
            _issue(
                "TRUNCATION_SUSPECTED",
                finding.path,
                f"The assistant turn looks cut off ({finding.code}): {finding.message}",
                "Edit the turn to finish it, or regenerate from this turn.",
            )
        )

    return {"valid": not blockers, "blockers": blockers, "warnings": warnings}
