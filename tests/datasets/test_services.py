"""Dataset lifecycle services: upload, confirm, import, validate, sweep, cleanup (SPEC §9)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from brightrun.errors import ApplicationError
from brightrun.models import Notification
from brightrun.storage import file_storage
from datasets.models import Dataset, DatasetValidation
from datasets.services import (
    dataset_confirm,
    dataset_create,
    dataset_delete,
    dataset_import,
    dataset_revalidate,
    dataset_validate,
    datasets_cleanup_deleted,
    datasets_sweep,
)
from tests.datasets.conftest import chat_jsonl

pytestmark = pytest.mark.django_db(transaction=False)


def _create(owner, data: bytes, **kwargs):
    kwargs.setdefault("name", "Planner set")
    kwargs.setdefault("file_name", "train.jsonl")
    return dataset_create(owner=owner, file_size=len(data), **kwargs)


def _upload_local(pending, data: bytes) -> int:
    path = urlsplit(pending.instructions.url).path
    response = Client().post(path, {"file": ContentFile(data, name="train.jsonl")})
    return response.status_code


def _upload_s3(pending, data: bytes) -> int:
    instructions = pending.instructions
    response = requests.post(
        instructions.url, data=instructions.fields, files={"file": ("train.jsonl", data)}, timeout=10
    )
    return response.status_code


def _upload(storage_kind: str, pending, data: bytes) -> int:
    return (_upload_s3 if storage_kind == "s3" else _upload_local)(pending, data)


def _tasks(callbacks) -> list[str]:
    return [getattr(cb, "__qualname__", str(cb)) for cb in callbacks]


def test_upload_confirm_validate_ready(any_storage, owner_user, django_capture_on_commit_callbacks):
    data = chat_jsonl(12)
    pending = _create(owner_user, data)
    dataset = pending.dataset
    assert dataset.status == "uploading"
    assert dataset.storage_key.startswith(f"users/{owner_user.pk}/datasets/{dataset.pk}/")
    assert _upload(any_storage, pending, data) in (200, 204)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        dataset = dataset_confirm(dataset=dataset, actor=owner_user)
    assert dataset.status == "validating"
    assert dataset.size == len(data)
    assert len(callbacks) == 1

    result = dataset_validate(dataset_id=dataset.pk)
    assert result is not None and result.status == "ready"
    assert result.example_count == 12
    assert result.trainable_pairs == 12
    assert result.error_count == 0
    assert result.format == "chat"
    run = DatasetValidation.objects.get(dataset=dataset)
    assert run.status == "completed" and run.result == "valid"
    note = Notification.objects.get(owner=owner_user, type="dataset_ready")
    assert str(dataset.pk) in note.link


def test_confirm_twice_enqueues_once(local_storage, owner_user, django_capture_on_commit_callbacks):
    data = chat_jsonl(12)
    pending = _create(owner_user, data)
    assert _upload_local(pending, data) == 204
    with django_capture_on_commit_callbacks(execute=False) as first:
        dataset_confirm(dataset=pending.dataset, actor=owner_user)
    with django_capture_on_commit_callbacks(execute=False) as second:
        again = dataset_confirm(dataset=pending.dataset, actor=owner_user)
    assert len(first) == 1
    assert second == []
    assert again.status == "validating"


def test_create_over_the_limit_stores_nothing(local_storage, owner_user, settings):
    settings.DATASET_MAX_BYTES = 1000
    with pytest.raises(ApplicationError) as exc:
        dataset_create(owner=owner_user, name="Big", file_name="big.jsonl", file_size=1001)
    assert exc.value.code == "file_too_large"
    assert not Dataset.objects.exists()


def test_local_signed_upload_refuses_over_the_limit(local_storage, owner_user, settings):
    settings.DATASET_MAX_BYTES = 2000
    pending = dataset_create(owner=owner_user, name="Small", file_name="s.jsonl", file_size=100)
    assert _upload_local(pending, b"x" * 2500) == 413
    assert not file_storage().exists(pending.dataset.storage_key)


def test_s3_policy_limits_size_and_key(s3_storage, owner_user, settings):
    settings.DATASET_MAX_BYTES = 5000
    pending = dataset_create(owner=owner_user, name="Policy", file_name="p.jsonl", file_size=100)
    policy = json.loads(base64.b64decode(pending.instructions.fields["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 5000] in conditions
    assert {"key": pending.dataset.storage_key} in conditions
    assert pending.instructions.fields["key"] == pending.dataset.storage_key


def test_confirm_rejects_an_oversized_object_and_deletes_it(s3_storage, owner_user, settings):
    """S3 refuses it by policy; S3-compatible servers that do not (moto) are caught at confirm."""
    settings.DATASET_MAX_BYTES = 3000
    pending = dataset_create(owner=owner_user, name="Sneaky", file_name="s.jsonl", file_size=100)
    _upload_s3(pending, b"y" * 4000)
    with pytest.raises(ApplicationError) as exc:
        dataset_confirm(dataset=pending.dataset, actor=owner_user)
    assert exc.value.code == "file_too_large"
    assert not file_storage().exists(pending.dataset.storage_key)
    pending.dataset.refresh_from_db()
    assert pending.dataset.status == "uploading"


def test_confirm_without_upload(local_storage, owner_user):
    pending = dataset_create(owner=owner_user, name="Nothing", file_name="n.jsonl", file_size=10)
    with pytest.raises(ApplicationError) as exc:
        dataset_confirm(dataset=pending.dataset, actor=owner_user)
    assert exc.value.code == "upload_missing"


def test_other_user_cannot_confirm(local_storage, owner_user, other_user):
    pending = dataset_create(owner=owner_user, name="Mine", file_name="m.jsonl", file_size=10)
    with pytest.raises(ApplicationError) as exc:
        dataset_confirm(dataset=pending.dataset, actor=other_user)
    assert exc.value.status_code == 404


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"name": " "}, "invalid_name"),
        ({"file_name": "../"}, "invalid_file_name"),
        ({"format": "csv"}, "invalid_format"),
        ({"context_tokens": 12}, "invalid_context_tokens"),
    ],
)
def test_create_rejects_bad_input(local_storage, owner_user, kwargs, code):
    with pytest.raises(ApplicationError) as exc:
        _create(owner_user, b"{}", **kwargs)
    assert exc.value.code == code


def test_file_name_is_sanitised(local_storage, owner_user):
    pending = _create(owner_user, b"{}", file_name="C:\\Users\\me\\my data (1).jsonl")
    assert pending.dataset.file_name == "my_data_1_.jsonl"
    assert pending.dataset.storage_key.endswith("/my_data_1_.jsonl")


def test_invalid_file_reports_lines_and_notifies(local_storage, owner_user):
    data = chat_jsonl(11) + b'{"messages": [{"role": "user", "content": "only a question"}]}\n'
    pending = _create(owner_user, data)
    _upload_local(pending, data)
    dataset = dataset_confirm(dataset=pending.dataset, actor=owner_user)
    result = dataset_validate(dataset_id=dataset.pk)
    assert result.status == "invalid"
    assert result.error_count >= 1
    run = result.validations.get()
    lines = {issue["line"] for issue in run.issues if issue["severity"] == "error"}
    assert lines == {12}
    assert Notification.objects.filter(owner=owner_user, type="dataset_invalid", priority="high").exists()


def test_validate_runs_once_per_claim(local_storage, owner_user):
    data = chat_jsonl(12)
    pending = _create(owner_user, data)
    _upload_local(pending, data)
    dataset = dataset_confirm(dataset=pending.dataset, actor=owner_user)
    assert dataset_validate(dataset_id=dataset.pk) is not None
    assert dataset_validate(dataset_id=dataset.pk) is None  # a duplicate delivery finds nothing to do
    assert DatasetValidation.objects.filter(dataset=dataset).count() == 1


def test_missing_object_fails_then_gives_up(local_storage, owner_user, settings, django_capture_on_commit_callbacks):
    settings.DATASET_VALIDATION_MAX_ATTEMPTS = 2
    data = chat_jsonl(12)
    pending = _create(owner_user, data)
    _upload_local(pending, data)
    dataset = dataset_confirm(dataset=pending.dataset, actor=owner_user)
    file_storage().delete(dataset.storage_key)

    assert dataset_validate(dataset_id=dataset.pk) is None  # first attempt fails, released for the sweeper
    dataset.refresh_from_db()
    assert dataset.status == "validating" and dataset.validation_started_at is None
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert datasets_sweep().requeued == 1
    assert len(callbacks) == 1

    final = dataset_validate(dataset_id=dataset.pk)
    assert final is not None and final.status == "invalid"
    assert "could not be read" in final.error
    assert list(final.validations.values_list("status", flat=True)) == ["failed", "failed"]
    assert Notification.objects.filter(owner=owner_user, type="dataset_invalid").count() == 1


def test_sweeper_requeues_stuck_and_expires_unconfirmed(local_storage, owner_user, django_capture_on_commit_callbacks):
    now = timezone.now()
    stuck = Dataset.objects.create(
        owner=owner_user,
        name="Stuck",
        file_name="s.jsonl",
        storage_key=f"users/{owner_user.pk}/datasets/stuck/s.jsonl",
        status="validating",
        validation_enqueued_at=now - timedelta(hours=1),
        validation_started_at=now - timedelta(hours=1),
        validation_attempts=1,
    )
    Dataset.objects.filter(pk=stuck.pk).update(updated_at=now - timedelta(minutes=16))  # no heartbeat since
    alive = Dataset.objects.create(
        owner=owner_user,
        name="Long but alive",
        file_name="a.jsonl",
        storage_key=f"users/{owner_user.pk}/datasets/alive/a.jsonl",
        status="validating",
        validation_enqueued_at=now - timedelta(hours=1),
        validation_started_at=now - timedelta(hours=1),
        validation_attempts=1,
    )  # its run's heartbeat touched updated_at just now: never validated twice
    fresh = Dataset.objects.create(
        owner=owner_user,
        name="Fresh",
        file_name="f.jsonl",
        storage_key=f"users/{owner_user.pk}/datasets/fresh/f.jsonl",
        status="validating",
        validation_enqueued_at=now,
    )
    partial_key = f"users/{owner_user.pk}/datasets/old/o.jsonl"
    file_storage().save(partial_key, ContentFile(b"partial"))
    old_upload = Dataset.objects.create(
        owner=owner_user,
        name="Old upload",
        file_name="o.jsonl",
        storage_key=partial_key,
        status="uploading",
        upload_expires_at=now - timedelta(minutes=1),
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = datasets_sweep()
    assert (result.requeued, result.expired) == (1, 1)
    assert len(callbacks) == 1
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    alive.refresh_from_db()
    assert alive.validation_started_at == now - timedelta(hours=1) and alive.validation_attempts == 1
    old_upload.refresh_from_db()
    assert stuck.validation_started_at is None and stuck.validation_enqueued_at > now
    assert fresh.validation_enqueued_at == now
    assert old_upload.status == "deleted" and old_upload.file_removed_at is not None
    assert not file_storage().exists(partial_key)
    with django_capture_on_commit_callbacks(execute=False):
        assert datasets_sweep() == type(result)(requeued=0, expired=0)


def test_sweeper_gives_up_after_max_attempts(local_storage, owner_user, settings):
    settings.DATASET_VALIDATION_MAX_ATTEMPTS = 3
    dataset = Dataset.objects.create(
        owner=owner_user,
        name="Crashy",
        file_name="c.jsonl",
        storage_key=f"users/{owner_user.pk}/datasets/c/c.jsonl",
        status="validating",
        validation_started_at=timezone.now() - timedelta(hours=2),
        validation_attempts=3,
    )
    Dataset.objects.filter(pk=dataset.pk).update(updated_at=timezone.now() - timedelta(hours=2))
    datasets_sweep()
    dataset.refresh_from_db()
    assert dataset.status == "invalid"
    assert "3 attempts" in dataset.error
    assert Notification.objects.filter(owner=owner_user, type="dataset_invalid").exists()


def test_delete_is_soft_and_cleanup_removes_the_file_after_30_days(local_storage, owner_user):
    data = chat_jsonl(12)
    pending = _create(owner_user, data)
    _upload_local(pending, data)
    dataset = dataset_delete(dataset=pending.dataset, actor=owner_user)
    assert dataset.status == "deleted" and dataset.deleted_at is not None
    assert not Dataset.objects.for_user(owner_user).visible().exists()
    assert datasets_cleanup_deleted() == 0
    assert file_storage().exists(dataset.storage_key)
    assert datasets_cleanup_deleted(now=timezone.now() + timedelta(days=31)) == 1
    assert not file_storage().exists(dataset.storage_key)
    assert datasets_cleanup_deleted(now=timezone.now() + timedelta(days=32)) == 0
    with pytest.raises(ApplicationError) as exc:
        dataset_confirm(dataset=dataset, actor=owner_user)
    assert exc.value.code == "dataset_deleted"


def test_import_of_a_training_file_version_validates_clean(built_version, owner_user):
    """Round trip: the platform's own chat JSONL is a valid dataset (SPEC §14: no self-rejecting validator)."""
    dataset = dataset_import(owner=owner_user, training_file=built_version.training_file_id, version=1)
    assert dataset.status == "validating"
    assert dataset.source == "import" and dataset.training_file_version == built_version
    assert dataset.storage_key != built_version.files["chat-jsonl"]["key"]
    assert dataset.size == built_version.files["chat-jsonl"]["size"]
    result = dataset_validate(dataset_id=dataset.pk)
    run = result.validations.get()
    assert result.status == "ready", run.issues
    assert result.error_count == 0 and result.warning_count == 0, run.issues
    assert result.example_count == built_version.conversation_count
    assert result.trainable_pairs == built_version.training_pair_count


def test_import_of_another_users_file_is_not_found(built_version, other_user):
    with pytest.raises(ApplicationError) as exc:
        dataset_import(owner=other_user, training_file=built_version.training_file_id)
    assert exc.value.code == "training_file_not_found"
    assert exc.value.status_code == 404


def test_revalidate_with_a_context_length(local_storage, owner_user, django_capture_on_commit_callbacks):
    data = chat_jsonl(12)
    pending = _create(owner_user, data)
    _upload_local(pending, data)
    dataset = dataset_confirm(dataset=pending.dataset, actor=owner_user)
    dataset_validate(dataset_id=dataset.pk)
    dataset.refresh_from_db()
    with pytest.raises(ApplicationError):
        dataset_revalidate(
            dataset=Dataset.objects.get(pk=dataset.pk, status="ready"), actor=owner_user, context_tokens=5
        )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        dataset = dataset_revalidate(dataset=dataset, actor=owner_user, context_tokens=256, context_model="tiny")
    assert len(callbacks) == 1
    assert dataset.status == "validating" and dataset.context_tokens == 256
    result = dataset_validate(dataset_id=dataset.pk)
    assert result.status == "ready"
    assert result.validations.count() == 2
