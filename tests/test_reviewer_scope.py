"""Reviewer scope (SPEC §2), tested apart from the owner contract of tests/test_isolation.py.

A reviewer may read and act on any owner's conversation through the review routes, and nothing more: every other
owned route (training files, datasets, jobs, models, notifications, tokens, batches, even the conversation routes
outside review) answers a reviewer who is not the owner exactly as it answers any other user — 404.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import ConversationFactory, TurnFactory
from tests.isolation import OBJECT_ROUTES, ObjectRoute
from tests.test_isolation import _call, _client

#: Routes a reviewer reaches on another owner's conversation (SPEC §2: "read any conversation in the review queue
#: and act on it through review services"; SPEC §6: approve, reject, edit, regenerate). They answer the reviewer
#: as they answer the owner. Every other owned route is owner-only.
REVIEWER_ROUTES: frozenset[str] = frozenset(
    {
        "conversation-review",
        "conversation-turns",
        "conversation-regenerate",
        "conversation-review-history",
        "conversations:review_detail",
        "conversations:review_action",
    }
)

OWNER_ONLY = [route for route in OBJECT_ROUTES if route.name not in REVIEWER_ROUTES]


@pytest.mark.parametrize("route", OWNER_ONLY, ids=str)
def test_reviewer_gets_404_on_other_owners_objects(
    route: ObjectRoute, owner_user, reviewer, api_client_for, web_client_for
):
    obj = route.make(owner_user)
    client = _client(route.kind, reviewer, api_client_for, web_client_for)
    response = _call(client, route, reverse(route.name, kwargs=route.url_kwargs(obj)))
    assert response.status_code == 404, response.content[:500]


#: Where the reviewer's answer differs from the owner's: the review page renders for a reviewer; an owner who is
#: not a reviewer is sent to their own conversation page.
REVIEWER_STATUS: dict[str, tuple[int, ...]] = {"conversations:review_detail": (200,)}

REVIEW_ROUTES = [route for route in OBJECT_ROUTES if route.name in REVIEWER_ROUTES]


def test_every_reviewer_route_is_in_the_contract():
    assert {route.name for route in REVIEW_ROUTES} == REVIEWER_ROUTES


@pytest.mark.parametrize("route", REVIEW_ROUTES, ids=str)
def test_reviewer_routes_reach_other_owners_conversations(
    route: ObjectRoute, owner_user, reviewer, api_client_for, web_client_for
):
    obj = route.make(owner_user)
    client = _client(route.kind, reviewer, api_client_for, web_client_for)
    response = _call(client, route, reverse(route.name, kwargs=route.url_kwargs(obj)))
    assert response.status_code in REVIEWER_STATUS.get(route.name, route.owner_status), response.content[:500]


@pytest.mark.parametrize("route", REVIEW_ROUTES, ids=str)
def test_review_routes_stay_404_for_non_reviewers(
    route: ObjectRoute, owner_user, other_user, api_client_for, web_client_for
):
    obj = route.make(owner_user)
    client = _client(route.kind, other_user, api_client_for, web_client_for)
    assert _call(client, route, reverse(route.name, kwargs=route.url_kwargs(obj))).status_code == 404


@pytest.mark.parametrize("route", ["review-queue-detail"])
def test_review_queue_detail_is_for_reviewers_only(route, owner_user, other_user, reviewer, api_client_for):
    conversation = ConversationFactory(owner=owner_user, status="pending_review")
    TurnFactory(conversation=conversation)
    url = reverse(route, kwargs={"pk": conversation.pk})
    assert api_client_for(reviewer).get(url).status_code == 200
    assert api_client_for(other_user).get(url).status_code == 404


def test_review_queue_list_is_refused_to_non_reviewers(owner_user, other_user, reviewer, api_client_for):
    ConversationFactory(owner=owner_user, status="pending_review")
    url = reverse("review-queue-list")
    assert api_client_for(reviewer).get(url).status_code == 200
    refused = api_client_for(other_user).get(url)
    assert refused.status_code == 403 and refused.json()["code"] == "not_a_reviewer"
