"""Enrichment: near-duplicate groups (SPEC §5.4) and the chain with its statuses and stored JSON (§5.2)."""

from __future__ import annotations

import json
import random

import pytest

from brightrun.errors import ApplicationError
from brightrun.storage import file_storage, owned_key
from conversations.models import Conversation, NearDuplicateGroup
from conversations.services import duplicates, enrichment, v4
from tests.claude_server import Behaviour
from tests.conversations.test_enrichment_scoring import RUBRIC, clean_turns, make_conversation, text

VOCABULARY = (
    "budget savings plan retirement match employer account balance interest payment goal month year fund "
    "income expense emergency cushion debt card rate step review number target habit priority family home "
    "future worry calm clear simple small progress choice option value cost risk market growth steady"
).split()


def prose(seed: int, words: int = 120) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCABULARY) for _ in range(words)) + "."


def dup_turns(seed: int, *, changed_word: str | None = None) -> list[tuple]:
    turns = []
    for e in range(3):
        body = prose(seed * 10 + e)
        if changed_word and e == 1:
            words = body.split()
            words[60] = changed_word
            body = " ".join(words)
        turns += [("user", text(2 * e, 100), "anxiety", 0.7), ("assistant", body, "warmth", 0.5)]
    return turns


# --- near-duplicates ----------------------------------------------------------------------------


def test_near_identical_conversations_of_one_owner_share_a_group(owner_user, other_user):
    a = make_conversation(owner_user, dup_turns(1))
    b = make_conversation(owner_user, dup_turns(1, changed_word="zebra"))
    different = make_conversation(owner_user, dup_turns(2))
    foreign = make_conversation(other_user, dup_turns(1))

    assert len(duplicates.conversation_minhash(conversation=a)) == 128
    assert duplicates.near_duplicates_assign(conversation=a) is None
    group = duplicates.near_duplicates_assign(conversation=b)
    assert group is not None and group.owner_id == owner_user.pk
    assert duplicates.near_duplicates_assign(conversation=different) is None
    assert duplicates.near_duplicates_assign(conversation=foreign) is None  # same text, another owner

    for c in (a, b, different, foreign):
        c.refresh_from_db()
    assert a.duplicate_group_id == b.duplicate_group_id == group.pk
    assert different.duplicate_group_id is None and foreign.duplicate_group_id is None
    assert foreign.minhash == a.minhash  # identical text, identical signature, still never compared
    assert list(duplicates.group_members(a)) == [a, b]
    assert list(duplicates.group_members(different)) == []

    # idempotent: running again keeps the one group
    assert duplicates.near_duplicates_assign(conversation=a) == group
    assert NearDuplicateGroup.objects.count() == 1


def test_groups_merge_and_dissolve(owner_user):
    a = make_conversation(owner_user, dup_turns(3))
    b = make_conversation(owner_user, dup_turns(3, changed_word="zebra"))
    duplicates.near_duplicates_assign(conversation=a)
    group = duplicates.near_duplicates_assign(conversation=b)
    a.refresh_from_db()
    assert a.duplicate_group_id == group.pk
    # a is edited into something else: it leaves, and a group of one is dissolved
    a.turns.filter(role="assistant").update(content=prose(99))
    assert duplicates.near_duplicates_assign(conversation=a) is None
    b.refresh_from_db()
    assert b.duplicate_group_id is None
    assert not NearDuplicateGroup.objects.exists()


def test_near_duplicate_of_approved_is_flagged(owner_user, settings):
    approved = make_conversation(owner_user, dup_turns(4), status=Conversation.Status.APPROVED)
    duplicates.near_duplicates_assign(conversation=approved)
    fresh = make_conversation(owner_user, dup_turns(4, changed_word="zebra"))
    duplicates.near_duplicates_assign(conversation=fresh)
    from conversations.services.quality import conversation_rescore

    conversation_rescore(conversation=fresh)
    fresh.refresh_from_db()
    assert "near_duplicate_of_approved" in fresh.flag_reasons and fresh.is_flagged


# --- the chain ----------------------------------------------------------------------------------


@pytest.fixture
def ready(owner_user, scaffolding, local_storage):
    return make_conversation(owner_user, clean_turns(3))


def _stored(conversation) -> dict:
    with file_storage().open(conversation.enriched_key) as fh:
        return json.loads(fh.read().decode("utf-8"))


def test_enrich_completes_and_stores_valid_v4_json(ready, settings):
    settings.JUDGE_ENABLED = False
    result = enrichment.conversation_enrich(conversation=ready)
    ready.refresh_from_db()
    assert result.enrichment_status == ready.enrichment_status == "completed"
    assert ready.enrichment_error == ""
    assert ready.validation_report["valid"] is True
    assert ready.structure_score is not None
    assert ready.judge_scores is None and ready.quality_score is None and ready.quality_tier == "unscored"
    assert ready.minhash and len(ready.minhash) == 128
    assert ready.enriched_key == owned_key(ready.owner_id, "conversations", str(ready.pk), "enriched-v4.json")
    assert ready.enriched_at is not None
    doc = _stored(ready)
    assert v4.individual_v4_validate(doc) == []
    assert [p["id"] for p in doc["training_pairs"]] == [f"{ready.pk}-e{n}" for n in (1, 2, 3)]
    assert doc["training_pairs"][0]["conversation_history"] == []
    url = enrichment.enriched_download_url(conversation=ready)
    assert url.startswith("http://testserver/") and ready.enriched_key not in url


def test_enrich_is_idempotent(ready, local_storage):
    enrichment.conversation_enrich(conversation=ready, judge=False)
    ready.refresh_from_db()
    first_key, first_doc = ready.enriched_key, _stored(ready)
    enrichment.conversation_enrich(conversation=ready, judge=False)
    ready.refresh_from_db()
    assert ready.enrichment_status == "completed"
    assert ready.enriched_key == first_key
    assert _stored(ready) == first_doc
    folder = local_storage / first_key.rsplit("/", 1)[0]
    assert [p.name for p in folder.iterdir()] == ["enriched-v4.json"]


def test_enrich_with_judge_uses_real_judge_scores(ready, claude_server, settings):
    settings.JUDGE_ENABLED = False
    claude_server.enqueue(Behaviour("json", body=RUBRIC))
    enrichment.conversation_enrich(conversation=ready, judge=True)
    ready.refresh_from_db()
    assert ready.enrichment_status == "completed"
    assert ready.judge_mean == 4.0 and ready.quality_score == 4.0 and ready.quality_tier == "production"
    assert _stored(ready)["training_pairs"][0]["training_metadata"]["quality_criteria"]["empathy_score"] == 5


def test_enrich_survives_a_failing_judge(ready, claude_server, settings):
    settings.ANTHROPIC_MAX_RETRIES = 0
    claude_server.enqueue("server_error")
    enrichment.conversation_enrich(conversation=ready, judge=True)
    ready.refresh_from_db()
    assert ready.enrichment_status == "completed"
    assert ready.judge_scores is None and ready.quality_tier == "unscored"


def test_validation_failure_is_final_and_stops_the_chain(owner_user, scaffolding, local_storage):
    turns = clean_turns(2)
    turns[1] = ("assistant", "", "warmth", 0.5)
    conversation = make_conversation(owner_user, turns)
    enrichment.conversation_enrich(conversation=conversation, judge=False)
    conversation.refresh_from_db()
    assert conversation.enrichment_status == "validation_failed"
    assert "MISSING_CONTENT at turns[1].content" in conversation.enrichment_error
    assert conversation.validation_report["valid"] is False
    assert conversation.structure_score is None and conversation.enriched_key == ""
    with pytest.raises(ApplicationError) as info:
        enrichment.enriched_download_url(conversation=conversation)
    assert info.value.code == "not_enriched"


def test_render_failure_sets_normalization_failed(ready, monkeypatch):
    enrichment.conversation_enrich(conversation=ready, judge=False)
    ready.refresh_from_db()
    assert ready.enriched_key

    def broken(*, conversation):
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(v4, "individual_v4", broken)
    enrichment.conversation_enrich(conversation=ready, judge=False)
    ready.refresh_from_db()
    assert ready.enrichment_status == "normalization_failed"
    assert "renderer exploded" in ready.enrichment_error
    assert ready.enriched_key == "" and ready.enriched_at is None  # a stale JSON is not served

    monkeypatch.undo()
    enrichment.conversation_enrich(conversation=ready, judge=False)  # re-runnable
    ready.refresh_from_db()
    assert ready.enrichment_status == "completed" and ready.enrichment_error == ""


def test_storage_failure_sets_normalization_failed(owner_user, scaffolding, settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocker / "media")},
        },
    }
    conversation = make_conversation(owner_user, clean_turns(3))
    enrichment.conversation_enrich(conversation=conversation, judge=False)
    conversation.refresh_from_db()
    assert conversation.enrichment_status == "normalization_failed"
    assert conversation.enrichment_error.startswith("storage:")


def test_enqueue_after_commit(owner_user, django_capture_on_commit_callbacks):
    conversations = [make_conversation(owner_user, clean_turns(1)) for _ in range(2)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        enrichment.conversation_enrich_enqueue(conversation=conversations[0])
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert enrichment.conversations_enrich_bulk(conversations=conversations) == 2
    assert len(callbacks) == 2
