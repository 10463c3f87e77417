"""Workspace backup (export_workspace) and restore (restore_workspace)."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command

from brightrun.errors import ApplicationError
from brightrun.storage import file_storage, owned_key
from brightrun.workspace import workspace_export, workspace_restore
from conversations.models import Conversation, ReviewAction, Turn
from tests.factories import ConversationFactory, TrainingFileFactory, TrainingFileMemberFactory
from tests.training_files.helpers import trainable, vertical
from training_files.models import TrainingFile, TrainingFileMember, TrainingFileVersion

pytestmark = pytest.mark.django_db


def _workspace(owner):
    vertical()
    convs = [trainable(owner), trainable(owner, exchanges=2)]
    ReviewAction.objects.create(
        owner=owner,
        conversation=convs[0],
        actor=owner,
        action="approve",
        from_status="pending_review",
        to_status="approved",
        reason_codes=["clear"],
        comment="good",
    )
    tf = TrainingFileFactory(owner=owner, name="Spring set")
    for conv in convs:
        TrainingFileMemberFactory(training_file=tf, owner=owner, conversation=conv)
    storage = file_storage()
    files = {}
    for fmt, name in (("chat-jsonl", "spring-v1.chat.jsonl"), ("v4-json", "spring-v1.v4.json")):
        content = f"{fmt} content of {tf.pk}\n".encode()
        key = owned_key(owner.pk, "training-files", str(tf.pk), "v1", name)
        storage.save(key, ContentFile(content))
        files[fmt] = {"key": key, "filename": name, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    version = TrainingFileVersion.objects.create(
        owner=owner,
        training_file=tf,
        number=1,
        status="ready",
        member_ids=[str(c.pk) for c in convs],
        conversation_count=2,
        files=files,
        created_by=owner,
    )
    TrainingFile.objects.filter(pk=tf.pk).update(current_version=version)
    return convs, tf, version


def _wipe(owner):
    TrainingFile.objects.filter(owner=owner).delete()
    Conversation.objects.filter(owner=owner).delete()


def test_export_then_restore_for_another_user_keeps_ids_history_and_files(
    owner_user, other_user, local_storage, tmp_path
):
    convs, tf, version = _workspace(owner_user)
    turns_before = {str(t.pk): (t.conversation_id, t.index, t.content) for t in Turn.objects.all()}
    action_before = ReviewAction.objects.get()
    archive = tmp_path / "ws.zip"

    manifest = workspace_export(owner=owner_user, path=archive)
    assert manifest["format"] == "brightrun-workspace" and manifest["version"] == 1
    assert manifest["owner"] == "owner"
    assert manifest["counts"]["conversations"] == 2 and manifest["counts"]["turns"] == 10
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
    assert {"manifest.json", "scaffolding.json", "conversations.jsonl", "training_files.jsonl"} <= names
    assert f"files/{tf.pk}/v1/spring-v1.chat.jsonl" in names

    _wipe(owner_user)
    assert not Conversation.objects.exists()

    summary = workspace_restore(path=archive, owner=other_user)
    assert summary["created"]["conversations"] == 2
    assert summary["created"]["turns"] == 10
    assert summary["created"]["review_actions"] == 1
    assert summary["created"]["version_files"] == 2
    assert summary["conflicts"] == []

    assert set(Conversation.objects.filter(owner=other_user).values_list("pk", flat=True)) == {c.pk for c in convs}
    assert {str(t.pk): (t.conversation_id, t.index, t.content) for t in Turn.objects.all()} == turns_before
    assert set(Turn.objects.values_list("owner", flat=True)) == {other_user.pk}
    action = ReviewAction.objects.get()
    assert action.pk == action_before.pk and action.owner == other_user
    assert action.actor == owner_user  # the username exists here, so it is kept
    assert action.created_at == action_before.created_at
    assert (action.from_status, action.to_status, action.comment) == ("pending_review", "approved", "good")

    restored_tf = TrainingFile.objects.get(pk=tf.pk)
    assert restored_tf.owner == other_user and restored_tf.current_version_id == version.pk
    assert TrainingFileMember.objects.filter(training_file=restored_tf).count() == 2
    restored = TrainingFileVersion.objects.get(pk=version.pk)
    storage = file_storage()
    for fmt, entry in restored.files.items():
        assert entry["key"] == owned_key(other_user.pk, "training-files", str(tf.pk), "v1", entry["filename"])
        with storage.open(entry["key"], "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == entry["sha256"] == version.files[fmt]["sha256"]


def test_restore_twice_creates_nothing_the_second_time(owner_user, other_user, local_storage, tmp_path):
    _workspace(owner_user)
    archive = tmp_path / "ws.zip"
    workspace_export(owner=owner_user, path=archive)
    _wipe(owner_user)
    first = workspace_restore(path=archive, owner=other_user)
    assert first["total_created"] > 0
    second = workspace_restore(path=archive, owner=other_user)
    assert second["total_created"] == 0
    assert second["total_updated"] == 0
    assert second["unchanged"]["conversations"] == 2


def test_unknown_actor_is_mapped_to_the_restoring_owner(owner_user, other_user, local_storage, tmp_path):
    from tests.factories import UserFactory

    _workspace(owner_user)
    ghost = UserFactory(username="ghost")
    ReviewAction.objects.update(actor=ghost)
    archive = tmp_path / "ws.zip"
    workspace_export(owner=owner_user, path=archive)
    _wipe(owner_user)
    ghost.delete()
    summary = workspace_restore(path=archive, owner=other_user)
    assert summary["unknown_users"] == ["ghost"]
    assert ReviewAction.objects.get().actor == other_user


def test_same_owner_restore_into_place_is_a_no_op(owner_user, local_storage, tmp_path):
    _workspace(owner_user)
    archive = tmp_path / "ws.zip"
    workspace_export(owner=owner_user, path=archive)
    summary = workspace_restore(path=archive, owner=owner_user)
    assert summary["total_created"] == 0 and summary["total_updated"] == 0


def test_not_an_archive(other_user, tmp_path):
    bogus = tmp_path / "bogus.zip"
    bogus.write_bytes(b"not a zip at all")
    with pytest.raises(ApplicationError) as exc:
        workspace_restore(path=bogus, owner=other_user)
    assert exc.value.code == "not_a_workspace_archive"

    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format": "something-else", "version": 1}))
    with pytest.raises(ApplicationError) as exc:
        workspace_restore(path=foreign, owner=other_user)
    assert exc.value.code == "not_a_workspace_archive"

    no_manifest = tmp_path / "empty.zip"
    with zipfile.ZipFile(no_manifest, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(ApplicationError) as exc:
        workspace_restore(path=no_manifest, owner=other_user)
    assert exc.value.code == "not_a_workspace_archive"


def test_unsupported_version(other_user, tmp_path):
    archive = tmp_path / "v9.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format": "brightrun-workspace", "version": 9}))
    with pytest.raises(ApplicationError) as exc:
        workspace_restore(path=archive, owner=other_user)
    assert exc.value.code == "unsupported_version"


def test_tampered_file_fails_its_checksum_and_rolls_back(owner_user, other_user, local_storage, tmp_path):
    _workspace(owner_user)
    archive = tmp_path / "ws.zip"
    workspace_export(owner=owner_user, path=archive)
    _wipe(owner_user)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith(".v4.json"):
                data = b"tampered"
            dst.writestr(item, data)
    with pytest.raises(ApplicationError) as exc:
        workspace_restore(path=tampered, owner=other_user)
    assert exc.value.code == "checksum_mismatch"
    assert not Conversation.objects.exists() and not TrainingFile.objects.exists()


def test_id_conflict_aborts_without_partial_rows(owner_user, other_user, local_storage, tmp_path):
    convs, _, _ = _workspace(owner_user)
    archive = tmp_path / "ws.zip"
    workspace_export(owner=owner_user, path=archive)
    # Keep one conversation of the original owner: its id clashes for other_user.
    TrainingFile.objects.filter(owner=owner_user).delete()
    Conversation.objects.exclude(pk=convs[1].pk).delete()
    before = (Conversation.objects.count(), Turn.objects.count(), ReviewAction.objects.count())
    with pytest.raises(ApplicationError) as exc:
        workspace_restore(path=archive, owner=other_user)
    assert exc.value.code == "id_conflict"
    assert (Conversation.objects.count(), Turn.objects.count(), ReviewAction.objects.count()) == before
    assert not Conversation.objects.filter(owner=other_user).exists()
    assert not TrainingFile.objects.exists()


def test_management_commands(owner_user, other_user, local_storage, tmp_path, capsys):
    ConversationFactory(owner=owner_user)
    archive = tmp_path / "cmd.zip"
    call_command("export_workspace", "--owner", "owner", "--out", str(archive))
    Conversation.objects.all().delete()
    call_command("restore_workspace", str(archive), "--owner", "other")
    out = capsys.readouterr().out
    assert '"total_created"' in out
    assert Conversation.objects.get().owner == other_user
    bogus = tmp_path / "x.zip"
    bogus.write_bytes(b"junk")
    with pytest.raises(CommandError, match="not_a_workspace_archive"):
        call_command("restore_workspace", str(bogus), "--owner", "other")
    with pytest.raises(CommandError, match="No user"):
        call_command("restore_workspace", str(archive), "--owner", "nobody")
