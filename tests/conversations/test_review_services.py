"""Review services: the state machine, reasons, four-eyes, bulk review, turn edits and diffs (SPEC §6)."""

from __future__ import annotations

import pytest

from brightrun.errors import ApplicationError
from conversations.models import Conversation, ReviewAction
from conversations.services import review
from tests.factories import ConversationFactory, TurnFactory

STATUSES = list(Conversation.Status.values)
ACTIONS = list(review.ACTION_TARGETS)
ALLOWED = {
    ("pending_review", "approve"): "approved",
    ("pending_review", "reject"): "rejected",
    ("pending_review", "needs_revision"): "needs_revision",
    ("needs_revision", "resubmit"): "pending_review",
    ("approved", "retract"): "pending_review",
    ("approved", "archive"): "archived",
    ("rejected", "archive"): "archived",
}


def _reasons(action):
    return {"reject": ["off_voice"], "retract": ["approved_in_error"]}.get(action)


def _conversation(owner, status="pending_review", turns=2):
    conversation = ConversationFactory(owner=owner, status=status, turn_count=turns, exchange_count=turns // 2)
    for i in range(1, turns + 1):
        TurnFactory(
            conversation=conversation,
            index=i,
            role="user" if i % 2 else "assistant",
            content=f"Turn {i} says something sensible about the budget plan.",
        )
    return conversation


def test_transitions_follow_spec():
    assert review.TRANSITIONS == {
        "pending_review": {"approved", "rejected", "needs_revision"},
        "needs_revision": {"pending_review"},
        "approved": {"pending_review", "archived"},
        "rejected": {"archived"},
        "archived": set(),
    }
    assert set(review.REJECT_REASONS) >= {"off_voice", "factual_error", "unsafe_advice", "truncated", "other"}


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("status", STATUSES)
def test_every_transition(status, action, owner_user, reviewer):
    conversation = _conversation(owner_user, status)
    expected = ALLOWED.get((status, action))
    if expected is None:
        with pytest.raises(ApplicationError) as err:
            review.conversation_review(
                conversation=conversation, actor=reviewer, action=action, reason_codes=_reasons(action)
            )
        assert err.value.code == "invalid_transition"
        conversation.refresh_from_db()
        assert conversation.status == status
        assert not ReviewAction.objects.exists()
        return
    row = review.conversation_review(
        conversation=conversation, actor=reviewer, action=action, reason_codes=_reasons(action), comment="ok"
    )
    conversation.refresh_from_db()
    assert conversation.status == expected
    assert conversation.reviewed_at is not None
    assert (row.owner_id, row.actor_id, row.action, row.from_status, row.to_status, row.comment) == (
        owner_user.pk,
        reviewer.pk,
        action,
        status,
        expected,
        "ok",
    )
    assert row.reason_codes == (_reasons(action) or [])


def test_invalid_action(owner_user, reviewer):
    with pytest.raises(ApplicationError) as err:
        review.conversation_review(conversation=_conversation(owner_user), actor=reviewer, action="edit")
    assert err.value.code == "invalid_action"


@pytest.mark.parametrize("action", ["reject", "retract"])
def test_reason_required(action, owner_user, reviewer):
    conversation = _conversation(owner_user, "pending_review" if action == "reject" else "approved")
    with pytest.raises(ApplicationError) as err:
        review.conversation_review(conversation=conversation, actor=reviewer, action=action)
    assert err.value.code == "reason_required"
    with pytest.raises(ApplicationError) as err:
        review.conversation_review(conversation=conversation, actor=reviewer, action=action, reason_codes=["nope"])
    assert err.value.code == "invalid_reason"


def test_reject_takes_only_reject_reasons(owner_user, reviewer):
    with pytest.raises(ApplicationError) as err:
        review.conversation_review(
            conversation=_conversation(owner_user), actor=reviewer, action="reject", reason_codes=["approved_in_error"]
        )
    assert err.value.code == "invalid_reason"


def test_four_eyes(reviewer, settings):
    settings.ALLOW_SELF_REVIEW = False
    own = _conversation(reviewer)
    with pytest.raises(ApplicationError) as err:
        review.conversation_review(conversation=own, actor=reviewer, action="approve")
    assert err.value.code == "self_review"
    own.refresh_from_db()
    assert own.status == "pending_review"
    settings.ALLOW_SELF_REVIEW = True
    review.conversation_review(conversation=own, actor=reviewer, action="approve")
    own.refresh_from_db()
    assert own.status == "approved"


@pytest.mark.parametrize("action", ["approve", "reject", "needs_revision", "retract", "archive"])
def test_owner_without_permission_cannot_review(action, owner_user):
    conversation = _conversation(owner_user)
    with pytest.raises(ApplicationError) as err:
        review.conversation_review(
            conversation=conversation, actor=owner_user, action=action, reason_codes=_reasons(action)
        )
    assert err.value.code == "not_a_reviewer"


def test_owner_may_resubmit_own_conversation(owner_user, other_user):
    conversation = _conversation(owner_user, "needs_revision")
    with pytest.raises(ApplicationError) as err:
        review.conversation_review(conversation=conversation, actor=other_user, action="resubmit")
    assert err.value.code == "not_a_reviewer"
    row = review.conversation_review(conversation=conversation, actor=owner_user, action="resubmit")
    assert (row.from_status, row.to_status) == ("needs_revision", "pending_review")


def test_inactive_reviewer_is_not_a_reviewer(reviewer):
    reviewer.is_active = False
    reviewer.save()
    assert not review.is_reviewer(reviewer)


@pytest.mark.parametrize("score", [0, 6, "4", True])
def test_invalid_score(score, owner_user, reviewer):
    with pytest.raises(ApplicationError) as err:
        review.conversation_review(
            conversation=_conversation(owner_user), actor=reviewer, action="approve", reviewer_score=score
        )
    assert err.value.code == "invalid_score"


def test_reviewer_score_is_saved_and_rescored(owner_user, reviewer):
    conversation = _conversation(owner_user)
    review.conversation_review(conversation=conversation, actor=reviewer, action="approve", reviewer_score=5)
    conversation.refresh_from_db()
    assert conversation.reviewer_score == 5
    assert conversation.quality_score == 5  # conversation_rescore ran: reviewer score wins


def test_stale_status_is_not_forced(owner_user, reviewer):
    conversation = _conversation(owner_user)
    Conversation.objects.filter(pk=conversation.pk).update(status="approved")  # another reviewer, meanwhile
    with pytest.raises(ApplicationError) as err:
        review.conversation_review(conversation=conversation, actor=reviewer, action="reject", reason_codes=["other"])
    assert err.value.code == "invalid_transition"


def test_bulk_review_reports_and_skips(owner_user, other_user, reviewer):
    pending = _conversation(owner_user)
    theirs = _conversation(other_user)
    approved = _conversation(owner_user, "approved")
    results = review.conversations_bulk_review(
        conversations=[pending, approved, theirs], actor=reviewer, action="approve"
    )
    assert [(r.conversation_id, r.ok, r.code) for r in results] == [
        (str(pending.pk), True, ""),
        (str(approved.pk), False, "invalid_transition"),
        (str(theirs.pk), True, ""),
    ]
    approved.refresh_from_db()
    assert approved.status == "approved"
    assert ReviewAction.objects.count() == 2


def test_bulk_review_by_non_reviewer_changes_nothing(owner_user):
    conversation = _conversation(owner_user)
    results = review.conversations_bulk_review(conversations=[conversation], actor=owner_user, action="approve")
    assert [(r.ok, r.code) for r in results] == [(False, "not_a_reviewer")]


@pytest.mark.parametrize("status", ["needs_revision", "approved", "rejected"])
def test_turn_edit_reopens_and_keeps_first_original(status, owner_user, reviewer):
    conversation = _conversation(owner_user, status)
    turn = conversation.turns.get(index=2)
    generated = turn.content
    review.turn_edit(turn=turn, actor=reviewer, content="A better answer. It explains the plan step by step.")
    turn = review.turn_edit(turn=turn, actor=owner_user, content="The final answer. It is clear and complete.")
    turn.refresh_from_db()
    conversation.refresh_from_db()
    assert turn.original_content == generated
    assert turn.content == "The final answer. It is clear and complete."
    assert turn.edited_by == owner_user and turn.edited_at is not None
    assert conversation.status == "pending_review"
    edit = ReviewAction.objects.get(conversation=conversation, action="edit")
    assert (edit.from_status, edit.to_status, edit.actor) == (status, "pending_review", reviewer)
    assert conversation.structure_score is not None  # rescored


def test_turn_edit_rules(owner_user, other_user, reviewer):
    conversation = _conversation(owner_user)
    turn = conversation.turns.get(index=1)
    with pytest.raises(ApplicationError) as err:
        review.turn_edit(turn=turn, actor=owner_user, content="   ")
    assert err.value.code == "empty_content"
    with pytest.raises(ApplicationError) as err:
        review.turn_edit(turn=turn, actor=other_user, content="Mine now.")
    assert err.value.code == "not_a_reviewer"
    review.turn_edit(turn=turn, actor=owner_user, content="Pending stays pending.")
    conversation.refresh_from_db()
    assert conversation.status == "pending_review"
    assert not ReviewAction.objects.exists()


def test_turn_diff(owner_user):
    turn = _conversation(owner_user).turns.get(index=2)
    assert review.turn_diff(turn) == [{"op": "equal", "text": turn.content}]
    turn.original_content = "Save ten percent of your pay each month."
    turn.content = "Save fifteen percent of your pay each month."
    parts = review.turn_diff(turn)
    assert {"op": "delete", "text": "ten"} in parts and {"op": "insert", "text": "fifteen"} in parts
    assert "".join(p["text"] for p in parts if p["op"] != "delete") == turn.content
    assert "".join(p["text"] for p in parts if p["op"] != "insert") == turn.original_content
