"""Review API: review/turn/regenerate/history/bulk actions, their scope, and the review queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.api.generation import ConversationViewSet
from conversations.api.review import ConversationReviewMixin
from conversations.models import Conversation
from tests.factories import ConversationFactory, GenerationBatchFactory, NotificationFactory, TurnFactory


def _conversation(owner, status="pending_review", turns=4, **kwargs):
    conversation = ConversationFactory(
        owner=owner, status=status, turn_count=turns, exchange_count=turns // 2, **kwargs
    )
    for i in range(1, turns + 1):
        TurnFactory(
            conversation=conversation,
            index=i,
            role="user" if i % 2 else "assistant",
            content=f"Turn {i} says something sensible about the budget plan.",
        )
    return conversation


def test_viewset_includes_the_mixin():
    assert issubclass(ConversationViewSet, ConversationReviewMixin)


def test_reviewer_reviews_other_users_conversation_but_nothing_else(owner_user, reviewer, api_client_for):
    conversation = _conversation(owner_user)
    batch = GenerationBatchFactory(owner=owner_user)
    notification = NotificationFactory(owner=owner_user)
    client = api_client_for(reviewer)
    response = client.post(
        f"/api/v1/conversations/{conversation.pk}/review/",
        {"action": "reject", "reason_codes": ["off_voice"], "comment": "too salesy", "reviewer_score": 2},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["action"], body["from_status"], body["to_status"], body["conversation_status"]) == (
        "reject",
        "pending_review",
        "rejected",
        "rejected",
    )
    assert body["actor"] == "reviewer"
    assert client.get(f"/api/v1/conversations/{conversation.pk}/review-history/").json()[0]["action"] == "reject"
    assert client.get(f"/api/v1/conversations/{conversation.pk}/").status_code == 404
    assert client.get(f"/api/v1/generation-batches/{batch.pk}/").status_code == 404
    assert client.get(f"/api/v1/notifications/{notification.pk}/").status_code == 404
    assert client.post(f"/api/v1/conversations/{conversation.pk}/enrich/").status_code == 404
    assert client.get(f"/api/v1/conversations/{conversation.pk}/enriched/").status_code == 404


def test_other_user_gets_404_and_owner_gets_codes(owner_user, other_user, api_client_for):
    conversation = _conversation(owner_user)
    url = f"/api/v1/conversations/{conversation.pk}/review/"
    assert api_client_for(other_user).post(url, {"action": "approve"}, format="json").status_code == 404
    response = api_client_for(owner_user).post(url, {"action": "approve"}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "not_a_reviewer")


def test_api_error_codes(owner_user, reviewer, api_client_for):
    conversation = _conversation(owner_user, "approved")
    client = api_client_for(reviewer)
    url = f"/api/v1/conversations/{conversation.pk}/review/"
    assert client.post(url, {"action": "approve"}, format="json").json()["code"] == "invalid_transition"
    assert client.post(url, {"action": "retract"}, format="json").json()["code"] == "reason_required"
    response = client.post(url, {"action": "retract", "reason_codes": ["approved_in_error"]}, format="json")
    assert response.status_code == 200
    assert response.json()["conversation_status"] == "pending_review"


def test_owner_resubmits_through_api(owner_user, api_client_for):
    conversation = _conversation(owner_user, "needs_revision")
    response = api_client_for(owner_user).post(
        f"/api/v1/conversations/{conversation.pk}/review/", {"action": "resubmit"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["conversation_status"] == "pending_review"


def test_turn_edit_api(owner_user, reviewer, other_user, api_client_for):
    conversation = _conversation(owner_user, "needs_revision")
    url = f"/api/v1/conversations/{conversation.pk}/turns/2/"
    assert api_client_for(other_user).patch(url, {"content": "x"}, format="json").status_code == 404
    response = api_client_for(reviewer).patch(url, {"content": "A rewritten, kinder answer."}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["original_content"] == "Turn 2 says something sensible about the budget plan."
    assert body["conversation_status"] == "pending_review"
    assert any(p["op"] == "insert" for p in body["diff"])
    response = api_client_for(reviewer).patch(url, {"content": "  "}, format="json")
    assert response.json()["code"] == "empty_content"
    missing = f"/api/v1/conversations/{conversation.pk}/turns/99/"
    assert api_client_for(reviewer).patch(missing, {"content": "x"}, format="json").status_code == 404


def test_regenerate_api(owner_user, api_client_for, django_capture_on_commit_callbacks):
    conversation = _conversation(owner_user)
    client = api_client_for(owner_user)
    url = f"/api/v1/conversations/{conversation.pk}/regenerate/"
    for bad in (1, 3, 99):
        response = client.post(url, {"from_turn": bad}, format="json")
        assert (response.status_code, response.json()["code"]) == (400, "invalid_from_turn")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url, {"from_turn": 2}, format="json")
    assert response.status_code == 202
    assert len(callbacks) == 1
    response = client.post(url, {"from_turn": 2}, format="json")
    assert response.json()["code"] == "regeneration_in_progress"


def test_bulk_review_api(owner_user, other_user, reviewer, api_client_for):
    pending = _conversation(owner_user)
    theirs = _conversation(other_user)
    approved = _conversation(owner_user, "approved")
    unknown = "00000000-0000-4000-8000-000000000000"
    response = api_client_for(reviewer).post(
        "/api/v1/conversations/bulk-review/",
        {"ids": [str(pending.pk), str(approved.pk), unknown, str(theirs.pk)], "action": "approve"},
        format="json",
    )
    assert response.status_code == 200
    assert [(r["ok"], r["code"]) for r in response.json()] == [
        (True, ""),
        (False, "invalid_transition"),
        (False, "not_found"),
        (True, ""),
    ]
    # a non-reviewer sees other users' ids as not found, never forced
    response = api_client_for(owner_user).post(
        "/api/v1/conversations/bulk-review/",
        {"ids": [str(theirs.pk)], "action": "archive"},
        format="json",
    )
    assert [(r["ok"], r["code"]) for r in response.json()] == [(False, "not_found")]


def test_review_queue_order_and_access(owner_user, other_user, reviewer, api_client_for, django_assert_max_num_queries):
    now = timezone.now()

    def make(owner, age, **kwargs):
        c = ConversationFactory(owner=owner, **kwargs)
        Conversation.objects.filter(pk=c.pk).update(created_at=now - timedelta(hours=age))
        return c

    old_unscored = make(owner_user, 10)
    new_unscored = make(other_user, 1)
    low = make(owner_user, 2, quality_score=2.0)
    high = make(other_user, 3, quality_score=4.5)
    flagged_high = make(owner_user, 1, quality_score=4.8, is_flagged=True)
    flagged_low = make(other_user, 1, quality_score=1.5, is_flagged=True)
    make(owner_user, 20, status="approved")
    client = api_client_for(reviewer)
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/review-queue/")
    assert response.status_code == 200
    ids = [row["id"] for row in response.json()["results"]]
    assert ids == [str(c.pk) for c in (flagged_low, flagged_high, low, high, old_unscored, new_unscored)]
    detail = client.get(f"/api/v1/review-queue/{low.pk}/")
    assert detail.status_code == 200 and "turns" in detail.json()
    response = api_client_for(owner_user).get("/api/v1/review-queue/")
    assert (response.status_code, response.json()["code"]) == (403, "not_a_reviewer")
    assert api_client_for(owner_user).get(f"/api/v1/review-queue/{low.pk}/").status_code == 404
    assert api_client_for(None).get("/api/v1/review-queue/").status_code in (401, 403)


@pytest.mark.parametrize("name", ["approve", "reject", "needs_revision", "archive"])
def test_admin_actions_report_per_item(name, owner_user, web_client_for, django_user_model):
    admin = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    pending = _conversation(owner_user)
    approved = _conversation(owner_user, "approved")
    response = web_client_for(admin).post(
        "/admin/conversations/conversation/",
        {"action": name, "_selected_action": [str(pending.pk), str(approved.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    texts = [str(m) for m in response.context["messages"]]
    pending.refresh_from_db()
    approved.refresh_from_db()
    if name == "archive":
        assert approved.status == "archived" and pending.status == "pending_review"
        assert any(f"skipped {pending.pk}: invalid_transition" in t for t in texts)
    else:
        assert pending.status != "pending_review" and approved.status == "approved"
        assert any(f"skipped {approved.pk}: invalid_transition" in t for t in texts)
    if name == "reject":
        row = pending.review_actions.get()
        assert (row.reason_codes, row.comment) == (["other"], "rejected in the admin")


def test_admin_filters_and_search(owner_user, web_client_for, django_user_model):
    admin = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    conversation = _conversation(owner_user)
    client = web_client_for(admin)
    assert client.get("/admin/conversations/conversation/?has_duplicates=yes&q=budget").status_code == 200
    response = client.get(f"/admin/conversations/conversation/{conversation.pk}/change/")
    assert response.status_code == 200
