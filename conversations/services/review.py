"""Review of conversations (SPEC §6): the one state machine, bulk review, turn edits and their diff.

Every interface (API, web UI, admin) goes through these functions. A status change is a
compare-and-set (``filter(pk=…, status=FROM).update(status=TO)``) inside a transaction, so two
reviewers acting at once never both win, and every change writes a :class:`ReviewAction` row
(owner = the conversation's owner, actor = who acted).

Who may act: reviewers (active users with ``conversations.review_conversation``) on any
conversation; the owner only to ``resubmit`` their own ``needs_revision`` conversation and to
edit its turns. Four-eyes: a reviewer cannot approve a conversation they own unless
``settings.ALLOW_SELF_REVIEW`` is on.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from brightrun.errors import ApplicationError
from conversations.models import Conversation, ReviewAction, Turn

Status = Conversation.Status
Action = ReviewAction.Action

#: Target status of each review action (``conversation_review``). Edits and regenerations are
#: recorded as ``edit``/``regenerate`` actions by their own services.
ACTION_TARGETS: dict[str, str] = {
    "approve": "approved",
    "reject": "rejected",
    "needs_revision": "needs_revision",
    "retract": "pending_review",
    "archive": "archived",
    "resubmit": "pending_review",
}

#: The statuses each action may start from. Two actions can share a target (retract and
#: resubmit both lead to pending_review) but not a source, which is why legality is decided
#: per action and not only by the (from, to) pair.
ACTION_SOURCES: dict[str, frozenset[str]] = {
    "approve": frozenset({Status.PENDING_REVIEW}),
    "reject": frozenset({Status.PENDING_REVIEW}),
    "needs_revision": frozenset({Status.PENDING_REVIEW}),
    "retract": frozenset({Status.APPROVED}),
    "archive": frozenset({Status.APPROVED, Status.REJECTED}),
    "resubmit": frozenset({Status.NEEDS_REVISION}),
}

#: SPEC §6 state machine: status → statuses it may move to. ``archived`` is terminal.
TRANSITIONS: dict[str, frozenset[str]] = {
    status: frozenset(ACTION_TARGETS[a] for a, sources in ACTION_SOURCES.items() if status in sources)
    for status in Status.values
}

#: Stable reason codes of a rejection, in display order (clients switch on them).
REJECT_REASONS: list[str] = [
    "off_voice",  # does not sound like the brand / consultant voice
    "factual_error",  # contains a factual or financial error
    "unsafe_advice",  # gives unsafe or non-compliant advice
    "truncated",  # a turn is cut off
    "wrong_arc",  # does not follow the emotional arc
    "repetitive",  # repetitive or formulaic
    "other",  # anything else; explain in the comment
]

#: Further codes accepted on the other actions (a retract must give at least one).
OTHER_REASONS: list[str] = [
    "approved_in_error",  # approved by mistake
    "policy_change",  # the guidelines changed since approval
]

#: Every accepted reason code.
REASON_CODES: list[str] = [*REJECT_REASONS, *OTHER_REASONS]

#: Actions that need at least one reason code.
REASON_REQUIRED = frozenset({"reject", "retract"})

#: Statuses an edit or a regeneration sends back to pending_review.
REOPENED_BY_CHANGE = frozenset({Status.NEEDS_REVISION, Status.APPROVED, Status.REJECTED})


def is_reviewer(user: Any) -> bool:
    """True for an active user holding ``conversations.review_conversation`` (group or direct)."""
    return bool(
        user is not None and getattr(user, "is_active", False) and user.has_perm("conversations.review_conversation")
    )


def _is_owner(user: Any, conversation: Conversation) -> bool:
    return bool(user is not None and getattr(user, "is_active", False) and conversation.owner_id == user.pk)


def _clean_reasons(action: str, reason_codes: Any) -> list[str]:
    codes = list(dict.fromkeys(reason_codes or []))
    allowed = REJECT_REASONS if action == "reject" else REASON_CODES
    bad = [c for c in codes if not isinstance(c, str) or c not in allowed]
    if bad:
        raise ApplicationError(
            f"Unknown reason code(s) for {action}: {', '.join(map(str, bad))}. Use one of: {', '.join(allowed)}.",
            code="invalid_reason",
        )
    if action in REASON_REQUIRED and not codes:
        raise ApplicationError(f"A {action} needs at least one reason code.", code="reason_required")
    return codes


def _clean_score(score: Any) -> float | None:
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, int | float) or not 1 <= score <= 5:
        raise ApplicationError("reviewer_score must be a number from 1 to 5.", code="invalid_score")
    return float(score)


def _record(
    *,
    conversation: Conversation,
    actor: Any,
    action: str,
    from_status: str,
    to_status: str,
    reason_codes: list[str] | None = None,
    comment: str = "",
) -> ReviewAction:
    return ReviewAction.objects.create(
        owner_id=conversation.owner_id,
        conversation=conversation,
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        from_status=from_status,
        to_status=to_status,
        reason_codes=reason_codes or [],
        comment=comment or "",
    )


def _rescore(conversation: Conversation) -> None:
    # Written by the quality engineer; imported here so review does not depend on it at import time.
    from conversations.services.quality import conversation_rescore

    conversation_rescore(conversation=conversation)


@transaction.atomic
def conversation_review(
    *,
    conversation: Conversation,
    actor: AbstractBaseUser,
    action: str,
    reason_codes: list[str] | None = None,
    comment: str = "",
    reviewer_score: float | None = None,
) -> ReviewAction:
    """Apply one review ``action`` to ``conversation`` and record it.

    Callers resolve ``conversation`` in ``Conversation.objects.unscoped_review_scope(actor)``; this
    function re-checks who may act (it is also called from the admin, tasks and the shell).
    The status change is a compare-and-set from the status read here: when another reviewer
    changed it meanwhile the call fails with ``invalid_transition`` and nothing is written.
    A ``reviewer_score`` (1–5) is saved and the quality scores are recomputed.

    Error codes: ``invalid_action``, ``not_a_reviewer``, ``invalid_score``, ``invalid_reason``,
    ``reason_required``, ``self_review``, ``invalid_transition``.
    """
    if action not in ACTION_TARGETS:
        raise ApplicationError(
            f"Unknown review action {action!r}. Use one of: {', '.join(ACTION_TARGETS)}.", code="invalid_action"
        )
    reviewer = is_reviewer(actor)
    if not reviewer and not (action == "resubmit" and _is_owner(actor, conversation)):
        raise ApplicationError("Only reviewers may do this.", code="not_a_reviewer", status_code=403)
    score = _clean_score(reviewer_score)
    if score is not None and not reviewer:
        raise ApplicationError("Only reviewers may score a conversation.", code="not_a_reviewer", status_code=403)
    codes = _clean_reasons(action, reason_codes)
    if action == "approve" and _is_owner(actor, conversation) and not settings.ALLOW_SELF_REVIEW:
        raise ApplicationError(
            "You cannot approve your own conversation; another reviewer must (four-eyes rule).", code="self_review"
        )

    from_status = Conversation.objects.filter(pk=conversation.pk).values_list("status", flat=True).first()
    to_status = ACTION_TARGETS[action]
    if from_status not in ACTION_SOURCES[action]:
        raise ApplicationError(
            f"Cannot {action} a conversation that is {from_status}.",
            code="invalid_transition",
            errors={"from_status": from_status, "action": action},
        )
    now = timezone.now()
    fields: dict[str, Any] = {"status": to_status, "reviewed_at": now, "updated_at": now}
    if score is not None:
        fields["reviewer_score"] = score
    if not Conversation.objects.filter(pk=conversation.pk, status=from_status).update(**fields):
        raise ApplicationError(
            "The conversation changed while you were reviewing it; reload and try again.", code="invalid_transition"
        )
    for name, value in fields.items():
        setattr(conversation, name, value)
    row = _record(
        conversation=conversation,
        actor=actor,
        action=action,
        from_status=from_status,
        to_status=to_status,
        reason_codes=codes,
        comment=comment,
    )
    if score is not None:
        _rescore(conversation)
    return row


@dataclass(frozen=True)
class BulkResult:
    conversation_id: str
    ok: bool
    code: str = ""
    message: str = ""


def conversations_bulk_review(
    *,
    conversations: Any,
    actor: AbstractBaseUser,
    action: str,
    reason_codes: list[str] | None = None,
    comment: str = "",
) -> list[BulkResult]:
    """Apply ``action`` to each conversation independently; returns one result per conversation, in order.

    Each conversation is its own transaction: an illegal transition (or any other rule break)
    is skipped and reported with its code, never forced, and does not undo the others.
    """
    results = []
    for conversation in conversations:
        try:
            conversation_review(
                conversation=conversation, actor=actor, action=action, reason_codes=reason_codes, comment=comment
            )
        except ApplicationError as exc:
            results.append(BulkResult(str(conversation.pk), False, exc.code, exc.message))
        else:
            results.append(BulkResult(str(conversation.pk), True, "", ACTION_TARGETS[action]))
    return results


@transaction.atomic
def turn_edit(*, turn: Turn, actor: AbstractBaseUser, content: str) -> Turn:
    """Replace a turn's content as its owner or a reviewer (SPEC §6).

    The generated text is kept in ``original_content`` the first time only. An edit of a
    needs_revision, approved or rejected conversation sends it back to pending_review (with an
    ``edit`` review action); archived conversations are final (``invalid_transition``). The
    conversation row is locked while editing; quality scores are recomputed afterwards.
    Saving the same text again changes nothing.
    """
    conversation = Conversation.objects.select_for_update().get(pk=turn.conversation_id)
    if not (is_reviewer(actor) or _is_owner(actor, conversation)):
        raise ApplicationError("Only the owner or a reviewer may edit turns.", code="not_a_reviewer", status_code=403)
    if conversation.status == Status.ARCHIVED:
        raise ApplicationError("An archived conversation cannot be edited.", code="invalid_transition")
    content = (content or "").strip()
    if not content:
        raise ApplicationError("A turn cannot be empty.", code="empty_content")
    turn = Turn.objects.select_for_update().get(pk=turn.pk)
    if content == turn.content:
        return turn
    now = timezone.now()
    if turn.original_content is None:
        turn.original_content = turn.content
    turn.content = content
    turn.edited_by = actor
    turn.edited_at = now
    turn.save(update_fields=["content", "original_content", "edited_by", "edited_at", "updated_at"])
    from_status = conversation.status
    if from_status in REOPENED_BY_CHANGE:
        Conversation.objects.filter(pk=conversation.pk, status=from_status).update(
            status=Status.PENDING_REVIEW, updated_at=now
        )
        conversation.status = Status.PENDING_REVIEW
        _record(
            conversation=conversation,
            actor=actor,
            action=Action.EDIT,
            from_status=from_status,
            to_status=Status.PENDING_REVIEW,
            comment=f"turn {turn.index} edited",
        )
    _rescore(conversation)
    return turn


_WORDS = re.compile(r"\s+|[^\s]+")


def turn_diff(turn: Turn) -> list[dict[str, str]]:
    """Word-level diff of ``original_content`` → ``content`` for the UI.

    A list of ``{"op": "equal" | "insert" | "delete", "text": …}`` in reading order (whitespace
    kept, so joining the non-deleted parts gives the current text). An unedited turn is one
    ``equal`` part.
    """
    if turn.original_content is None or turn.original_content == turn.content:
        return [{"op": "equal", "text": turn.content}]
    old = _WORDS.findall(turn.original_content)
    new = _WORDS.findall(turn.content)
    parts: list[dict[str, str]] = []

    def add(op: str, words: list[str]) -> None:
        text = "".join(words)
        if not text:
            return
        if parts and parts[-1]["op"] == op:
            parts[-1]["text"] += text
        else:
            parts.append({"op": op, "text": text})

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag == "equal":
            add("equal", old[i1:i2])
        else:
            add("delete", old[i1:i2])
            add("insert", new[j1:j2])
    return parts
