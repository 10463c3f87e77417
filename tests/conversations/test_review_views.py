"""Conversation pages: list with filters and bulk actions, detail, review queue and detail, quality."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conversations.models import Conversation, NearDuplicateGroup, ReviewAction
from tests.factories import (
    ConversationFactory,
    EmotionalArcFactory,
    PersonaFactory,
    TrainingTopicFactory,
    TurnFactory,
)

pytestmark = pytest.mark.django_db

LIST = reverse("conversations:conversation_list")
QUEUE = reverse("conversations:review_queue")


def _with_turns(owner, **kwargs) -> Conversation:
    conversation = ConversationFactory(owner=owner, **kwargs)
    TurnFactory(conversation=conversation, index=1, role="user", content="I keep avoiding my 401k statements.")
    TurnFactory(conversation=conversation, index=2, role="assistant", content="That is common; let us look together.")
    return conversation


def _titles(response) -> set[str]:
    return {c.title for c in response.context["page"].object_list}


# --- list ----------------------------------------------------------------------------------


def test_list_filters_return_the_right_rows(owner_user, other_user, web_client_for):
    persona, arc, topic = PersonaFactory(key="p_a"), EmotionalArcFactory(key="arc_a"), TrainingTopicFactory(key="t_a")
    a = ConversationFactory(
        owner=owner_user,
        title="Alpha",
        persona=persona,
        emotional_arc=arc,
        training_topic=topic,
        status="approved",
        quality_score=4.6,
        quality_tier="seed_dataset",
        tier="scenario",
    )
    b = ConversationFactory(
        owner=owner_user, title="Beta", quality_score=3.0, quality_tier="experimental", is_flagged=True
    )
    c = ConversationFactory(owner=owner_user, title="Gamma")
    ConversationFactory(owner=other_user, title="Theirs", status="approved")
    client = web_client_for(owner_user)

    assert _titles(client.get(LIST)) == {a.title, b.title, c.title}
    assert _titles(client.get(LIST, {"status": "approved"})) == {a.title}
    assert _titles(client.get(LIST, {"tier": "scenario"})) == {a.title}
    assert _titles(client.get(LIST, {"persona": "p_a", "arc": "arc_a", "topic": "t_a"})) == {a.title}
    assert _titles(client.get(LIST, {"quality_min": "3.5"})) == {a.title}
    assert _titles(client.get(LIST, {"quality_min": "2", "quality_max": "3.5"})) == {b.title}
    assert _titles(client.get(LIST, {"quality_tier": "unscored"})) == {c.title}
    assert _titles(client.get(LIST, {"flagged": "1"})) == {b.title}
    assert _titles(client.get(LIST, {"flagged": "0"})) == {a.title, c.title}


def test_list_search_matches_title_and_turns_once(owner_user, web_client_for):
    hit = _with_turns(owner_user, title="Budget talk")
    TurnFactory(conversation=hit, index=3, role="user", content="Also my 401k rollover.")
    ConversationFactory(owner=owner_user, title="Rollover questions")
    ConversationFactory(owner=owner_user, title="Unrelated")
    response = web_client_for(owner_user).get(LIST, {"q": "rollover"})
    titles = [c.title for c in response.context["page"].object_list]
    assert sorted(titles) == ["Budget talk", "Rollover questions"]  # each once, though two turns match
    assert _titles(web_client_for(owner_user).get(LIST, {"q": "401K"})) == {"Budget talk"}


def test_list_invalid_filter_is_reported_not_a_500(owner_user, web_client_for):
    ConversationFactory(owner=owner_user, title="Kept")
    response = web_client_for(owner_user).get(LIST, {"quality_min": "lots", "status": "nonsense"})
    assert response.status_code == 200
    assert _titles(response) == {"Kept"}
    assert "Enter a number" in response.content.decode()


def test_list_empty_states(owner_user, web_client_for):
    client = web_client_for(owner_user)
    assert "No conversations yet" in client.get(LIST).content.decode()
    ConversationFactory(owner=owner_user)
    assert "No conversations match these filters" in client.get(LIST, {"status": "rejected"}).content.decode()


def test_list_pagination_keeps_filters(owner_user, web_client_for):
    ConversationFactory.create_batch(27, owner=owner_user, status="approved")
    page = web_client_for(owner_user).get(LIST, {"status": "approved"}).content.decode()
    assert "status=approved&amp;page=2" in page
    second = web_client_for(owner_user).get(LIST, {"status": "approved", "page": 2})
    assert len(second.context["page"].object_list) == 2


def test_list_query_ceiling(owner_user, reviewer, web_client_for, django_assert_max_num_queries):
    for _ in range(3):
        _with_turns(owner_user, is_flagged=True)
    client = web_client_for(owner_user)
    with django_assert_max_num_queries(9):
        response = client.get(LIST)
    assert len(response.context["page"].object_list) == 3
    ConversationFactory.create_batch(3, owner=reviewer)
    client = web_client_for(reviewer)
    with django_assert_max_num_queries(9):
        assert len(client.get(LIST).context["page"].object_list) == 3


def test_list_bulk_controls_and_script(owner_user, reviewer, web_client_for):
    ConversationFactory(owner=owner_user)
    ConversationFactory(owner=reviewer)
    owner_page = web_client_for(owner_user).get(LIST).content.decode()
    assert 'value="enrich"' in owner_page and 'value="approve"' not in owner_page
    assert "data-select-all" in owner_page and "js/review.js" in owner_page
    assert 'value="approve"' in web_client_for(reviewer).get(LIST).content.decode()


def test_list_htmx_request_gets_the_fragment(owner_user, web_client_for):
    ConversationFactory(owner=owner_user, title="Only")
    response = web_client_for(owner_user).get(LIST, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "Only" in body and "<html" not in body
    assert "HX-Request" in response["Vary"]


# --- detail --------------------------------------------------------------------------------


def test_detail_is_honest_about_missing_scores(owner_user, web_client_for):
    conversation = _with_turns(owner_user)
    page = web_client_for(owner_user).get(reverse("conversations:conversation_detail", args=[conversation.pk]))
    body = page.content.decode()
    assert "unscored" in body and "not judged" in body and "Not validated yet" in body
    assert "No review actions yet" in body


def test_detail_shows_scores_report_flags_and_history(owner_user, reviewer, web_client_for):
    conversation = _with_turns(
        owner_user,
        status="needs_revision",
        structure_score=7.4,
        judge_scores={"empathy": {"score": 4, "rationale": "Warm and specific."}},
        judge_mean=4.0,
        quality_score=4.0,
        quality_tier="production",
        is_flagged=True,
        flag_reasons=["truncation_suspected"],
        enriched_key="users/x/enriched.json",
        validation_report={
            "valid": False,
            "blockers": [
                {
                    "code": "INTENSITY_OUT_OF_RANGE",
                    "path": "turns[2].emotional_context.intensity",
                    "message": "Intensity 1.4 is outside 0–1.",
                    "suggestion": "Clamp it.",
                }
            ],
            "warnings": [
                {"code": "SHORT_CONTENT", "path": "turns[1].content", "message": "Short.", "suggestion": "Expand."}
            ],
        },
    )
    ReviewAction.objects.create(
        owner=owner_user,
        conversation=conversation,
        actor=reviewer,
        action="needs_revision",
        from_status="pending_review",
        to_status="needs_revision",
        comment="Tighten turn 2.",
    )
    body = web_client_for(owner_user).get(reverse("conversations:conversation_detail", args=[conversation.pk]))
    body = body.content.decode()
    for text in [
        "7.4",
        "Warm and specific.",
        "Production",
        "INTENSITY_OUT_OF_RANGE",
        "turns[2].emotional_context.intensity",
        "Clamp it.",
        "SHORT_CONTENT",
        "truncation_suspected",
        "Tighten turn 2.",
        "reviewer",
        "Resubmit for review",
        reverse("conversations:conversation_enriched", args=[conversation.pk]),
        reverse("conversations:turn_edit", args=[conversation.pk, 2]),
        reverse("conversations:conversation_regenerate", args=[conversation.pk]),
        "data-confirm=",
    ]:
        assert text in body, text


def test_detail_query_ceiling(owner_user, web_client_for, django_assert_max_num_queries):
    conversation = _with_turns(owner_user)
    for index in range(3, 9):
        TurnFactory(conversation=conversation, index=index, role="user" if index % 2 else "assistant")
    ReviewAction.objects.create(
        owner=owner_user,
        conversation=conversation,
        action="approve",
        from_status="pending_review",
        to_status="approved",
    )
    client = web_client_for(owner_user)
    with django_assert_max_num_queries(10):
        assert client.get(reverse("conversations:conversation_detail", args=[conversation.pk])).status_code == 200


def test_detail_is_owner_only(owner_user, other_user, reviewer, web_client_for):
    conversation = _with_turns(owner_user)
    url = reverse("conversations:conversation_detail", args=[conversation.pk])
    assert web_client_for(other_user).get(url).status_code == 404
    assert web_client_for(reviewer).get(url).status_code == 404


# --- review queue and review detail --------------------------------------------------------


def test_review_queue_is_reviewer_only(owner_user, web_client_for):
    response = web_client_for(owner_user).get(QUEUE)
    assert response.status_code == 403
    assert "You need the reviewer role" in response.content.decode()


def test_review_queue_order_and_shortcuts(owner_user, other_user, reviewer, web_client_for):
    now = timezone.now()
    old_low = ConversationFactory(owner=owner_user, title="old-low", quality_score=2.0)
    new_low = ConversationFactory(owner=other_user, title="new-low", quality_score=2.0)
    high = ConversationFactory(owner=owner_user, title="high", quality_score=4.8)
    unscored = ConversationFactory(owner=owner_user, title="unscored")
    flagged = ConversationFactory(owner=other_user, title="flagged", quality_score=4.9, is_flagged=True)
    ConversationFactory(owner=owner_user, title="done", status="approved")
    for age, conversation in enumerate([new_low, old_low]):
        Conversation.objects.filter(pk=conversation.pk).update(created_at=now - timedelta(days=age + 1))
    TurnFactory(conversation=high, index=1, content="Let me explain the match.")

    response = web_client_for(reviewer).get(QUEUE)
    assert [c.title for c in response.context["page"].object_list] == [
        flagged.title,
        old_low.title,
        new_low.title,
        high.title,
        unscored.title,
    ]
    body = response.content.decode()
    assert "js/review.js" in body and "<kbd>J</kbd>" in body
    assert "Let me explain the match." in body and "<details>" in body
    assert reverse("conversations:review_action", args=[high.pk]) in body
    assert reverse("conversations:review_detail", args=[high.pk]) in body
    assert 'value="reject"' in body and "Choose a reason" in body


def test_review_queue_query_ceiling(owner_user, reviewer, web_client_for, django_assert_max_num_queries):
    for _ in range(3):
        _with_turns(owner_user)
    client = web_client_for(reviewer)
    with django_assert_max_num_queries(9):
        response = client.get(QUEUE)
    assert len(response.context["page"].object_list) == 3


def test_review_detail_for_a_reviewer_on_another_users_conversation(owner_user, other_user, reviewer, web_client_for):
    conversation = _with_turns(owner_user, title="Theirs to review")
    url = reverse("conversations:review_detail", args=[conversation.pk])
    page = web_client_for(reviewer).get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Theirs to review" in body and "js/review.js" in body
    assert reverse("conversations:review_action", args=[conversation.pk]) in body
    assert reverse("conversations:turn_edit", args=[conversation.pk, 1]) not in body  # read-only turns
    assert web_client_for(other_user).get(url).status_code == 404
    owner = web_client_for(owner_user).get(url)
    assert owner.status_code == 302
    assert owner["Location"] == reverse("conversations:conversation_detail", args=[conversation.pk])


# --- quality -------------------------------------------------------------------------------


def test_quality_page_aggregates_own_conversations(owner_user, other_user, reviewer, web_client_for):
    persona, arc = PersonaFactory(name="Avoider"), EmotionalArcFactory(name="Confusion to clarity")
    topics = [TrainingTopicFactory(), TrainingTopicFactory()]
    approved = [
        ConversationFactory(
            owner=owner_user,
            persona=persona,
            emotional_arc=arc,
            training_topic=t,
            status="approved",
            quality_score=4.0,
            quality_tier="production",
        )
        for t in topics
    ]
    ConversationFactory(owner=owner_user, persona=persona, emotional_arc=arc, status="rejected", quality_score=2.0)
    ConversationFactory(owner=owner_user, persona=persona, emotional_arc=arc)
    ConversationFactory(owner=other_user, persona=persona, emotional_arc=arc, status="approved")
    ReviewAction.objects.create(
        owner=owner_user, conversation=approved[0], actor=reviewer, action="approve", from_status="pending_review"
    )
    response = web_client_for(owner_user).get(reverse("conversations:quality"))
    assert response.status_code == 200
    context = response.context
    assert context["total"] == 4
    tiers = {value: n for value, _, n in context["tiers"]}
    assert tiers["production"] == 2 and tiers["unscored"] == 2 and tiers["seed_dataset"] == 0
    persona_rows = dict(context["breakdowns"])["Persona"]
    assert persona_rows == [
        {
            "persona__name": "Avoider",
            "total": 4,
            "reviewed": 3,
            "approved": 2,
            "mean_quality": pytest.approx(10 / 3),
            "label": "Avoider",
            "approval_rate": pytest.approx(2 / 3),
        }
    ]
    cells = dict(context["coverage"]["rows"])[persona]
    assert cells[context["coverage"]["arcs"].index(arc)] == 2
    assert [(r["actor__username"], r["n"]) for r in context["throughput"]] == [("reviewer", 1)]
    assert "67%" in response.content.decode()


# --- mutations (call the review, regenerate and enrichment services) ----------------------


def test_review_action_approves_and_rejects_with_reason(owner_user, reviewer, web_client_for):
    first, second = _with_turns(owner_user), _with_turns(owner_user)
    client = web_client_for(reviewer)
    response = client.post(
        reverse("conversations:review_action", args=[first.pk]), {"action": "approve", "next": QUEUE + "?page=1"}
    )
    assert response.status_code == 302 and response["Location"] == QUEUE + "?page=1"
    first.refresh_from_db()
    assert first.status == "approved"
    assert ReviewAction.objects.filter(conversation=first, actor=reviewer, action="approve").exists()

    response = client.post(reverse("conversations:review_action", args=[second.pk]), {"action": "reject"}, follow=True)
    second.refresh_from_db()
    assert second.status == "pending_review"  # a reject needs a reason: an error message, not a 500
    assert any(m.level_tag == "error" for m in response.context["messages"])

    from conversations.services.review import REJECT_REASONS

    client.post(
        reverse("conversations:review_action", args=[second.pk]),
        {"action": "reject", "reason_codes": [REJECT_REASONS[0]], "comment": "Off tone."},
    )
    second.refresh_from_db()
    assert second.status == "rejected"


def test_review_action_is_404_for_a_non_reviewer_other_user(owner_user, other_user, web_client_for):
    conversation = _with_turns(owner_user)
    url = reverse("conversations:review_action", args=[conversation.pk])
    assert web_client_for(other_user).post(url, {"action": "approve"}).status_code == 404
    assert web_client_for(other_user).get(url).status_code == 405
    conversation.refresh_from_db()
    assert conversation.status == "pending_review"


def test_owner_resubmits_after_revision(owner_user, web_client_for):
    conversation = _with_turns(owner_user, status="needs_revision")
    url = reverse("conversations:conversation_review", args=[conversation.pk])
    response = web_client_for(owner_user).post(url, {"action": "resubmit"})
    assert response["Location"] == reverse("conversations:conversation_detail", args=[conversation.pk])
    conversation.refresh_from_db()
    assert conversation.status == "pending_review"


def test_turn_edit_keeps_the_original_and_shows_a_diff(owner_user, web_client_for):
    conversation = _with_turns(owner_user)
    client = web_client_for(owner_user)
    response = client.post(
        reverse("conversations:turn_edit", args=[conversation.pk, 2]), {"content": "That is common; let us plan."}
    )
    assert response.status_code == 302
    turn = conversation.turns.get(index=2)
    assert turn.content == "That is common; let us plan."
    assert turn.original_content == "That is common; let us look together."
    body = client.get(reverse("conversations:conversation_detail", args=[conversation.pk])).content.decode()
    assert "edited" in body and "<del>" in body and "<ins>" in body
    assert client.get(reverse("conversations:turn_edit", args=[conversation.pk, 2])).status_code == 405
    missing = client.post(reverse("conversations:turn_edit", args=[conversation.pk, 99]), {"content": "x"})
    assert missing.status_code == 404


def test_regenerate_and_enrich_enqueue_their_tasks(owner_user, web_client_for, django_capture_on_commit_callbacks):
    conversation = _with_turns(owner_user)
    client = web_client_for(owner_user)
    detail = reverse("conversations:conversation_detail", args=[conversation.pk])
    regenerate = reverse("conversations:conversation_regenerate", args=[conversation.pk])
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(regenerate, {"from_turn": "2"}, follow=True)
    assert response.redirect_chain[-1][0] == detail and len(callbacks) == 1
    assert "Regeneration from turn 2 started" in response.content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(regenerate, {"from_turn": "3"}, follow=True)
    assert not callbacks and "not an assistant turn" in response.content.decode()
    assert "Choose the turn" in client.post(regenerate, {}, follow=True).content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("conversations:conversation_enrich", args=[conversation.pk]), follow=True)
    assert response.redirect_chain[-1][0] == detail and len(callbacks) == 1
    assert "Enrichment queued." in response.content.decode()


def test_enriched_download_redirects_only_when_enriched(owner_user, web_client_for):
    plain = _with_turns(owner_user)
    client = web_client_for(owner_user)
    response = client.get(reverse("conversations:conversation_enriched", args=[plain.pk]), follow=True)
    assert response.redirect_chain == [(reverse("conversations:conversation_detail", args=[plain.pk]), 302)]
    assert "no enriched JSON yet" in response.content.decode()


def test_bulk_review_reports_per_item_results(owner_user, other_user, reviewer, web_client_for):
    pending = [_with_turns(owner_user), _with_turns(other_user)]
    done = _with_turns(owner_user, status="approved", title="Already approved")
    back = LIST + "?status=pending_review"
    response = web_client_for(reviewer).post(
        reverse("conversations:conversation_bulk"),
        {"action": "approve", "ids": [str(c.pk) for c in [*pending, done]], "next": back},
    )
    assert response.status_code == 302 and response["Location"] == back
    assert all(Conversation.objects.get(pk=c.pk).status == "approved" for c in pending)
    text = [str(m) for m in response.wsgi_request._messages]
    assert any("Already approved" in m for m in text)
    assert any("2 conversations" in m for m in text)


def test_bulk_review_needs_the_reviewer_role_and_enrich_is_owner_scoped(
    owner_user, other_user, web_client_for, django_capture_on_commit_callbacks
):
    mine, theirs = _with_turns(owner_user), _with_turns(other_user)
    bulk = reverse("conversations:conversation_bulk")
    response = web_client_for(owner_user).post(bulk, {"action": "approve", "ids": [str(mine.pk)]}, follow=True)
    mine.refresh_from_db()
    assert mine.status == "pending_review"
    assert "Choose an action you may take." in response.content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        response = web_client_for(owner_user).post(
            bulk, {"action": "enrich", "ids": [str(mine.pk), str(theirs.pk), "nope"]}
        )
    assert response["Location"] == LIST and len(callbacks) == 1
    assert [str(m) for m in response.wsgi_request._messages] == ["Enrichment queued for 1 conversation."]
    assert (
        "Select at least one"
        in web_client_for(owner_user).post(bulk, {"action": "enrich"}, follow=True).content.decode()
    )


def test_duplicate_group_side_by_side(owner_user, web_client_for):
    group = NearDuplicateGroup.objects.create(owner=owner_user)
    a = _with_turns(owner_user, duplicate_group=group, title="First copy")
    b = ConversationFactory(owner=owner_user, duplicate_group=group, title="Second copy")
    TurnFactory(conversation=b, index=2, role="assistant", content="Near-identical advice here.")
    body = web_client_for(owner_user).get(reverse("conversations:conversation_detail", args=[a.pk])).content.decode()
    assert "Near-duplicate group" in body and "Second copy" in body and "Near-identical advice here." in body


# --- navigation ----------------------------------------------------------------------------


def test_navigation_shows_review_only_to_reviewers(owner_user, reviewer, web_client_for):
    assert QUEUE not in web_client_for(owner_user).get(LIST).content.decode().split("</nav>")[0]
    reviewer_nav = web_client_for(reviewer).get(LIST).content.decode().split("</nav>")[0]
    assert QUEUE in reviewer_nav and reverse("conversations:quality") in reviewer_nav


def test_a_refused_review_keeps_the_input_and_shows_the_error_beside_the_field(owner_user, reviewer, web_client_for):
    conversation = _with_turns(owner_user)
    action = reverse("conversations:review_action", args=[conversation.pk])
    client = web_client_for(reviewer)
    response = client.post(action, {"action": "reject", "comment": "Off tone.", "next": QUEUE + "?page=2"})
    assert response.status_code == 400
    body = response.content.decode()
    assert f'id="reason-error-{conversation.pk}"' in body and "needs at least one reason code" in body
    assert 'value="Off tone."' in body  # the comment survives
    assert f'name="next" value="{QUEUE}?page=2"' in body  # and where to go after the next try
    assert 'data-confirm="Reject' in body  # rejecting asks first
    response = client.post(action, {"action": "approve", "reviewer_score": "9"})
    body = response.content.decode()
    assert response.status_code == 400 and f'id="score-error-{conversation.pk}"' in body and 'value="9"' in body
    conversation.refresh_from_db()
    assert conversation.status == "pending_review"


def test_conversation_list_folds_the_rarer_filters(owner_user, web_client_for):
    client = web_client_for(owner_user)
    assert '<details class="more-filters">' in client.get(LIST).content.decode()
    assert '<details class="more-filters" open>' in client.get(LIST, {"tier": "template"}).content.decode()
    assert '<details class="more-filters">' in client.get(LIST, {"status": "approved"}).content.decode()
