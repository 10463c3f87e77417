"""The conversation page while a regeneration runs: a note that polls, then a reload once it has ended."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from conversations.services.regenerate import _lock_key
from tests.factories import ConversationFactory, TurnFactory

pytestmark = pytest.mark.django_db

NOTE = "A regeneration is running"
POLL = {"poll": "regeneration"}


def test_detail_polls_while_a_regeneration_runs_then_reloads(
    owner_user, other_user, web_client_for, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(owner=owner_user)
    TurnFactory(conversation=conversation, index=1, role="user", content="I keep avoiding my 401k statements.")
    TurnFactory(conversation=conversation, index=2, role="assistant", content="That is common; let us look.")
    cache.delete(_lock_key(conversation.pk))
    client = web_client_for(owner_user)
    detail = reverse("conversations:conversation_detail", args=[conversation.pk])
    assert NOTE not in client.get(detail).content.decode()

    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("conversations:conversation_regenerate", args=[conversation.pk]), {"from_turn": "2"})
    page = client.get(detail).content.decode()
    assert NOTE in page and "?poll=regeneration" in page
    running = client.get(detail, POLL, HTTP_HX_REQUEST="true")
    assert running.status_code == 204 and not running.has_header("HX-Refresh")
    assert web_client_for(other_user).get(detail, POLL, HTTP_HX_REQUEST="true").status_code == 404

    cache.delete(_lock_key(conversation.pk))  # what the task does when the regeneration ends
    done = client.get(detail, POLL, HTTP_HX_REQUEST="true")
    assert done.status_code == 204 and done["HX-Refresh"] == "true"
    assert NOTE not in client.get(detail).content.decode()
    assert client.get(detail, POLL).status_code == 200  # without HTMX the parameter is ignored: the page
