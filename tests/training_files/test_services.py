"""Gate, membership versions, failure handling, retry, the task and the command."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from brightrun.errors import ApplicationError
from conversations.models import NearDuplicateGroup
from tests.factories import ConversationFactory
from training_files import tasks
from training_files.models import TrainingFileVersion
from training_files.services import (
    build,
    training_file_build,
    training_file_build_retry,
    training_file_create,
    training_file_download,
    training_file_gate,
    training_file_members_update,
)


def test_gate_reasons(owner_user, other_user, make_trainable):
    ok = make_trainable(owner_user)
    pending = make_trainable(owner_user, status="pending_review")
    raw = make_trainable(owner_user, enrichment_status="enriched")
    truncated = make_trainable(owner_user, flag_reasons=["truncation_suspected"], is_flagged=True)
    theirs = make_trainable(other_user)
    group = NearDuplicateGroup.objects.create(owner=owner_user)
    dup_a = make_trainable(owner_user, duplicate_group=group)
    dup_b = make_trainable(owner_user, duplicate_group=group)
    ids = [ok.pk, pending.pk, raw.pk, truncated.pk, theirs.pk, "not-a-uuid", dup_a.pk, dup_b.pk]
    accepted, rejected = training_file_gate(conversations=ids, owner=owner_user)
    assert [c.pk for c in accepted] == [ok.pk, dup_a.pk]
    reasons = {r["conversation_id"]: r["reasons"] for r in rejected}
    assert reasons == {
        str(pending.pk): ["not_approved"],
        str(raw.pk): ["not_enriched"],
        str(truncated.pk): ["truncation_suspected"],
        str(theirs.pk): ["not_found"],
        "not-a-uuid": ["not_found"],
        str(dup_b.pk): ["duplicate_group"],
    }
    accepted, _ = training_file_gate(conversations=[dup_a.pk, dup_b.pk], owner=owner_user, allow_duplicates=True)
    assert len(accepted) == 2


def test_reviewer_approval_counts(owner_user, reviewer, make_trainable):
    conversation = make_trainable(owner_user)  # approved by anyone: the status is what counts
    accepted, rejected = training_file_gate(conversations=[conversation.pk], owner=owner_user)
    assert accepted == [conversation] and rejected == []


def test_create_rules(owner_user, make_trainable, django_capture_on_commit_callbacks):
    conversation = make_trainable(owner_user)
    with django_capture_on_commit_callbacks() as callbacks:
        training_file, _gate = training_file_create(owner=owner_user, name="F", conversation_ids=[conversation.pk])
    assert len(callbacks) == 1
    version = training_file.versions.get()
    assert version.number == 1 and version.status == "building" and version.member_ids == [str(conversation.pk)]
    assert training_file.current_version is None
    with pytest.raises(ApplicationError) as exc:
        training_file_create(owner=owner_user, name="F", conversation_ids=[conversation.pk])
    assert exc.value.code == "name_taken"
    pending = ConversationFactory(owner=owner_user)
    with pytest.raises(ApplicationError) as exc:
        training_file_create(owner=owner_user, name="G", conversation_ids=[pending.pk])
    assert exc.value.code == "no_eligible_conversations"
    assert exc.value.errors["rejected"][0]["reasons"] == ["not_approved", "not_enriched"]


def test_members_update_new_version_old_stays_downloadable(
    built, owner_user, make_trainable, django_capture_on_commit_callbacks
):
    training_file, conversations = built
    extra = make_trainable(owner_user)
    with django_capture_on_commit_callbacks() as callbacks:
        version, gate = training_file_members_update(
            training_file=training_file,
            actor=owner_user,
            add=[extra.pk, conversations[1].pk],
            remove=[conversations[0].pk],
        )
    assert len(callbacks) == 1
    assert version.number == 2 and version.status == "building"
    assert gate.rejected == [{"conversation_id": str(conversations[1].pk), "reasons": ["already_member"]}]
    assert sorted(version.member_ids) == sorted(str(c.pk) for c in (extra, conversations[1], conversations[2]))
    version = training_file_build(version=version)
    assert version.status == "ready"
    training_file.refresh_from_db()
    assert training_file.current_version == version
    old = training_file_download(training_file=training_file, fmt="v4-jsonl", version_number=1)
    new = training_file_download(training_file=training_file, fmt="v4-jsonl")
    assert old["version"] == 1 and new["version"] == 2 and old["sha256"] != new["sha256"]
    with pytest.raises(ApplicationError) as exc:
        training_file_members_update(training_file=training_file, actor=owner_user, add=[extra.pk])
    assert exc.value.code == "no_changes"


def test_failed_build_keeps_previous_version_and_retry_succeeds(
    built, owner_user, make_trainable, monkeypatch, django_capture_on_commit_callbacks, local_storage
):
    training_file, _conversations = built
    v1 = training_file.current_version
    calls = []
    real_store = build.store_file

    def failing_store(*, key, path, fmt):
        calls.append(key)
        if len(calls) == 2:
            raise OSError("disk full")
        real_store(key=key, path=path, fmt=fmt)

    monkeypatch.setattr(build, "store_file", failing_store)
    with django_capture_on_commit_callbacks(execute=False):
        v2, _ = training_file_members_update(
            training_file=training_file, actor=owner_user, add=[make_trainable(owner_user).pk]
        )
    v2 = training_file_build(version=v2)
    assert v2.status == "failed" and "disk full" in v2.error and v2.files == {}
    assert not any((local_storage / key).exists() for key in calls)  # partial objects deleted
    training_file.refresh_from_db()
    assert training_file.current_version == v1
    with pytest.raises(ApplicationError) as exc:
        training_file_download(training_file=training_file, fmt="chat-jsonl", version_number=2)
    assert exc.value.code == "version_not_ready"
    assert tasks.training_file_build_task(str(v2.pk)) is None  # a failed version is left alone

    monkeypatch.setattr(build, "store_file", real_store)
    with django_capture_on_commit_callbacks() as callbacks:
        v2 = training_file_build_retry(version=v2, actor=owner_user)
    assert v2.status == "building" and len(callbacks) == 1
    assert tasks.training_file_build_task(str(v2.pk)) == "ready"
    assert tasks.training_file_build_task(str(v2.pk)) is None  # idempotent
    training_file.refresh_from_db()
    assert training_file.current_version_id == v2.pk


def test_storage_location_under_a_regular_file_fails(
    built, owner_user, make_trainable, settings, tmp_path, django_capture_on_commit_callbacks
):
    training_file, _ = built
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocker / "media")},
        },
    }
    with django_capture_on_commit_callbacks(execute=False):
        v2, _ = training_file_members_update(
            training_file=training_file, actor=owner_user, add=[make_trainable(owner_user).pk]
        )
    v2 = training_file_build(version=v2)
    assert v2.status == TrainingFileVersion.Status.FAILED and v2.error
    training_file.refresh_from_db()
    assert training_file.current_version.number == 1


def test_download_codes(built):
    training_file, _ = built
    with pytest.raises(ApplicationError) as exc:
        training_file_download(training_file=training_file, fmt="csv")
    assert exc.value.code == "unknown_format"
    with pytest.raises(ApplicationError) as exc:
        training_file_download(training_file=training_file, fmt="v4-json", version_number=9)
    assert exc.value.code == "version_not_found"
    result = training_file_download(training_file=training_file, fmt="v4-json")
    assert result["url"].startswith("http://testserver/files/download/") and result["size"] > 0


def test_command(built, capsys):
    training_file, _ = built
    call_command("build_training_file", "--file", str(training_file.pk))
    out = capsys.readouterr().out
    assert "ready" in out and "sha256" in out and "training pairs: 9" in out
    with pytest.raises(CommandError):
        call_command("build_training_file", "--file", "nope")
