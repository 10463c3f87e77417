"""Regenerate from turn N (SPEC §6) against the Claude-compatible test server, through the real SDK."""

from __future__ import annotations

import pytest

from brightrun.errors import ApplicationError
from conversations.models import Conversation, FailedGeneration, GenerationLog, ReviewAction
from conversations.services import batches
from conversations.services.regenerate import conversation_regenerate, conversation_regenerate_request
from conversations.services.review import turn_edit

pytestmark = pytest.mark.django_db


@pytest.fixture
def generated(owner_user, scaffolding, claude_server, run_batch, local_storage):
    """A conversation generated end to end (4 exchanges), then sent back for revision."""
    specs = batches.item_specs_from_items(
        [{"persona": "overwhelmed_avoider", "emotional_arc": "confusion_to_clarity", "training_topic": "ignored_401k"}],
        allow_incompatible=True,
    )
    run_batch(batches.generation_batch_create(owner=owner_user, specs=specs))
    conversation = Conversation.objects.get(owner=owner_user)
    Conversation.objects.filter(pk=conversation.pk).update(status="needs_revision")
    conversation.refresh_from_db()
    assert conversation.turns.count() >= 4
    return conversation


def _turns(conversation):
    return list(conversation.turns.order_by("index").values_list("index", "role", "content"))


def test_regenerate_keeps_turns_before_n(generated, owner_user, reviewer, claude_server):
    turn = generated.turns.get(index=1)
    turn_edit(turn=turn, actor=owner_user, content="I have a 401k I have never looked at. Where do I even start?")
    Conversation.objects.filter(pk=generated.pk).update(status="needs_revision")
    before = _turns(generated)
    calls = claude_server.count()
    assert conversation_regenerate(conversation_id=generated.pk, actor_id=reviewer.pk, from_turn=4) == "succeeded"
    generated.refresh_from_db()
    after = _turns(generated)
    assert after[:3] == before[:3]  # turns 1..N−1 exactly, the edit included
    assert after[3:] != before[3:]
    assert [r for _, r, _ in after] == ["user", "assistant"] * (len(after) // 2)
    assert generated.turn_count == len(after)
    assert generated.status == "pending_review"
    assert generated.turns.get(index=1).original_content is not None
    action = ReviewAction.objects.get(conversation=generated, action="regenerate")
    assert (action.from_status, action.to_status, action.actor) == ("needs_revision", "pending_review", reviewer)
    log = GenerationLog.objects.get(conversation=generated, purpose="regeneration")
    assert log.status == "success" and log.raw_response_key and log.owner_id == owner_user.pk
    assert claude_server.count() == calls + 1
    request = claude_server.message_requests[-1]["body"]
    assert request["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "reproduce turns 1 to 3" in request["messages"][0]["content"]
    assert generated.structure_score is not None  # rescored


def test_failure_leaves_conversation_unchanged(generated, owner_user, claude_server):
    before = _turns(generated)
    claude_server.enqueue("truncated")
    assert conversation_regenerate(conversation_id=generated.pk, actor_id=owner_user.pk, from_turn=2) == "failed"
    generated.refresh_from_db()
    assert _turns(generated) == before
    assert generated.status == "needs_revision"
    failure = FailedGeneration.objects.get(owner=owner_user)
    assert failure.failure_type == "truncation" and failure.item is None and failure.batch is None
    assert failure.raw_response_key and failure.log.purpose == "regeneration"
    assert not ReviewAction.objects.filter(action="regenerate").exists()


def test_api_error_is_a_failed_generation(generated, owner_user, claude_server):
    before = _turns(generated)
    claude_server.enqueue("unauthorized")
    assert conversation_regenerate(conversation_id=generated.pk, actor_id=owner_user.pk, from_turn=2) == "failed"
    assert _turns(generated) == before
    assert FailedGeneration.objects.get(owner=owner_user).failure_type == "api_error"
    assert GenerationLog.objects.get(purpose="regeneration").status == "failed"


def test_request_validates_and_enqueues(generated, owner_user, other_user, django_capture_on_commit_callbacks):
    for bad in (0, 1, 3, 999, "2"):
        with pytest.raises(ApplicationError) as err:
            conversation_regenerate_request(conversation=generated, actor=owner_user, from_turn=bad)
        assert err.value.code == "invalid_from_turn"
    with pytest.raises(ApplicationError) as err:
        conversation_regenerate_request(conversation=generated, actor=other_user, from_turn=2)
    assert err.value.code == "not_a_reviewer"
    with django_capture_on_commit_callbacks() as callbacks:
        conversation_regenerate_request(conversation=generated, actor=owner_user, from_turn=2)
    assert len(callbacks) == 1
    with pytest.raises(ApplicationError) as err:
        conversation_regenerate_request(conversation=generated, actor=owner_user, from_turn=2)
    assert err.value.code == "regeneration_in_progress"
    # the run ends the in-progress marker, successful or not
    conversation_regenerate(conversation_id=generated.pk, actor_id=owner_user.pk, from_turn=2)
    with django_capture_on_commit_callbacks():
        conversation_regenerate_request(conversation=generated, actor=owner_user, from_turn=2)
