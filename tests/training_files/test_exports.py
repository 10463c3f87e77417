"""Conversation exports (SPEC §8): formats, scopes, status transitions, expiry, download, API."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.files.storage import FileSystemStorage
from django.urls import reverse
from django.utils import timezone

from brightrun.errors import ApplicationError
from brightrun.storage import file_storage, owned_key
from training_files.models import Export
from training_files.services import export_create, export_download, export_render, exports_expire
from training_files.services.schema import full_v4_validate


def _read(export) -> bytes:
    with file_storage().open(export.storage_key, "rb") as handle:
        return handle.read()


def _export(owner, capture, **kwargs):
    kwargs.setdefault("scope", "all_approved")
    with capture(execute=False) as callbacks:
        export = export_create(owner=owner, **kwargs)
    assert len(callbacks) == 1
    assert export.status == "queued"
    return export


@pytest.fixture
def three(owner_user, make_trainable):
    return [make_trainable(owner_user, exchanges=n) for n in (2, 3, 4)]


@pytest.mark.parametrize("fmt", ["chat-jsonl", "v4-jsonl", "v4-json", "csv", "markdown"])
def test_every_format_renders(fmt, owner_user, three, local_storage, django_capture_on_commit_callbacks):
    export = _export(owner_user, django_capture_on_commit_callbacks, fmt=fmt, options={"include_quality": True})
    export = export_render(export=export)
    assert export.status == "completed", export.error
    assert export.conversation_count == 3
    assert export.storage_key == owned_key(owner_user.pk, "exports", str(export.pk), export.filename)
    raw = _read(export)
    assert export.size == len(raw)
    if fmt == "csv":
        text = raw.decode("utf-8")
        assert text.startswith("\ufeff")
        rows = list(csv.DictReader(io.StringIO(text[1:])))
        assert len(rows) == 2 * (2 + 3 + 4) == export.row_count
        assert {
            "conversation_id",
            "title",
            "persona",
            "arc",
            "topic",
            "turn_index",
            "intensity",
            "quality_score",
        } <= set(rows[0])
        assert rows[0]["turn_index"] == "1" and rows[0]["role"] == "user" and rows[0]["primary_emotion"] == "worry"
    elif fmt == "markdown":
        text = raw.decode("utf-8")
        assert text.count("\n## ") == 3 and "**1. user**" in text
    elif fmt == "v4-json":
        doc = json.loads(raw)
        assert full_v4_validate(doc) == []
        assert doc["training_file_metadata"]["total_training_pairs"] == 9 == export.row_count
    else:
        lines = [json.loads(line) for line in raw.decode().splitlines()]
        assert len(lines) == (3 if fmt == "chat-jsonl" else 10)
        if fmt == "v4-jsonl":
            assert lines[0]["_meta"]["total_pairs"] == 9


def test_scopes_select_only_the_owners_conversations(
    owner_user, other_user, make_trainable, local_storage, django_capture_on_commit_callbacks
):
    approved = make_trainable(owner_user, exchanges=1)
    pending = make_trainable(owner_user, exchanges=1, status="pending_review")
    make_trainable(other_user, exchanges=1)

    def ids(export):
        export = export_render(export=export)
        assert export.status == "completed", export.error
        rows = list(csv.DictReader(io.StringIO(_read(export).decode("utf-8")[1:])))
        return {row["conversation_id"] for row in rows}

    capture = django_capture_on_commit_callbacks
    assert ids(_export(owner_user, capture, fmt="csv")) == {str(approved.pk)}
    selected = _export(owner_user, capture, fmt="csv", scope="selected", conversation_ids=[pending.pk])
    assert ids(selected) == {str(pending.pk)}
    filtered = _export(owner_user, capture, fmt="csv", scope="filter", filters={"status": "pending_review"})
    assert ids(filtered) == {str(pending.pk)}


def test_create_refuses_bad_input_and_creates_nothing(owner_user, other_user, make_trainable):
    theirs = make_trainable(other_user, exchanges=1)
    mine = make_trainable(owner_user, exchanges=1)
    cases = [
        ({"scope": "all_approved", "fmt": "xlsx"}, "unknown_format"),
        ({"scope": "selected", "fmt": "csv", "conversation_ids": []}, "empty_selection"),
        ({"scope": "selected", "fmt": "csv", "conversation_ids": [mine.pk, theirs.pk]}, "not_found"),
        ({"scope": "filter", "fmt": "csv", "filters": {"persona": "nobody"}}, "empty_selection"),
        ({"scope": "all_approved", "fmt": "csv", "options": {"include_everything": True}}, "invalid_options"),
    ]
    for kwargs, code in cases:
        with pytest.raises(ApplicationError) as caught:
            export_create(owner=owner_user, **kwargs)
        assert caught.value.code == code
    assert not Export.objects.exists()


def test_status_transitions_and_idempotent_render(owner_user, three, local_storage, django_capture_on_commit_callbacks):
    export = _export(owner_user, django_capture_on_commit_callbacks, fmt="chat-jsonl")
    with pytest.raises(ApplicationError) as caught:
        export_download(export=export)
    assert caught.value.code == "export_not_ready"
    export = export_render(export=export)
    assert export.status == "completed" and export.started_at and export.completed_at
    sha = export.sha256
    assert export_render(export=export).sha256 == sha  # a second run leaves it alone


class PartialWriteStorage(FileSystemStorage):
    """Writes the object, then fails like a connection dropped before the upload was acknowledged."""

    def _save(self, name, content):
        super()._save(name, content)
        raise OSError("connection reset by peer")


def test_failure_marks_failed_and_deletes_the_partial_object(
    owner_user, three, local_storage, settings, tmp_path, django_capture_on_commit_callbacks
):
    export = _export(owner_user, django_capture_on_commit_callbacks, fmt="csv")
    location = tmp_path / "partial"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": f"{__name__}.PartialWriteStorage", "OPTIONS": {"location": str(location)}},
    }
    export = export_render(export=export)
    assert export.status == "failed"
    assert "connection reset" in export.error
    assert export.storage_key == ""
    assert not [p for p in location.rglob("*") if p.is_file()]


def test_download_counts_and_expiry_cleanup(owner_user, three, local_storage, django_capture_on_commit_callbacks):
    export = export_render(export=_export(owner_user, django_capture_on_commit_callbacks, fmt="markdown"))
    result = export_download(export=export)
    assert result["url"] and result["expires_at"] <= export.expires_at
    export_download(export=export)
    export.refresh_from_db()
    assert export.download_count == 2
    key = export.storage_key
    assert file_storage().exists(key)

    assert exports_expire(now=timezone.now()) == 0
    assert exports_expire(now=export.expires_at + timedelta(seconds=1)) == 1
    export.refresh_from_db()
    assert export.status == "expired" and not file_storage().exists(key)
    with pytest.raises(ApplicationError) as caught:
        export_download(export=export)
    assert caught.value.code == "export_expired"
    assert exports_expire(now=export.expires_at + timedelta(days=1)) == 0


def test_past_expiry_download_is_refused_before_cleanup(
    owner_user, three, local_storage, django_capture_on_commit_callbacks
):
    export = export_render(export=_export(owner_user, django_capture_on_commit_callbacks, fmt="csv"))
    Export.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    export.refresh_from_db()
    with pytest.raises(ApplicationError) as caught:
        export_download(export=export)
    assert caught.value.code == "export_expired"
    assert Export.objects.get(pk=export.pk).download_count == 0


def test_api_create_list_download(
    owner_user, other_user, api_client_for, three, local_storage, django_capture_on_commit_callbacks
):
    client = api_client_for(owner_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            reverse("export-list"),
            {"scope": "selected", "format": "v4-jsonl", "conversations": [str(three[0].pk)]},
            format="json",
        )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "queued" and len(callbacks) == 1
    export = Export.objects.get(pk=response.json()["id"])
    download = reverse("export-download", kwargs={"pk": export.pk})
    assert client.get(download).json()["code"] == "export_not_ready"
    export_render(export=export)
    body = client.get(download).json()
    assert set(body) == {"url", "expires_at"}
    assert api_client_for(other_user).get(download).status_code == 404
    assert api_client_for(other_user).get(reverse("export-list")).json()["results"] == []
    assert len(client.get(reverse("export-list")).json()["results"]) == 1


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"scope": "all_approved", "format": "xlsx"}, "invalid_choice"),
        ({"scope": "selected", "format": "csv", "conversations": []}, "empty_selection"),
        ({"scope": "selected", "format": "csv", "conversations": ["not-a-uuid"]}, "invalid"),
        ({"scope": "everything", "format": "csv"}, "invalid_choice"),
    ],
)
def test_api_bad_input_is_400_with_a_code(owner_user, api_client_for, three, payload, code):
    response = api_client_for(owner_user).post(reverse("export-list"), payload, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert not Export.objects.exists()


def test_api_refuses_other_users_conversations(owner_user, other_user, api_client_for, make_trainable):
    theirs = make_trainable(other_user, exchanges=1)
    response = api_client_for(owner_user).post(
        reverse("export-list"), {"scope": "selected", "format": "csv", "conversations": [str(theirs.pk)]}, format="json"
    )
    assert response.status_code == 400 and response.json()["code"] == "not_found"
    assert not Export.objects.exists()


def test_export_list_query_ceiling(owner_user, api_client_for, three, django_assert_max_num_queries):
    for fmt in ("csv", "markdown", "chat-jsonl"):
        Export.objects.create(owner=owner_user, scope="all_approved", format=fmt)
    client = api_client_for(owner_user)
    with django_assert_max_num_queries(6):
        assert len(client.get(reverse("export-list")).json()["results"]) == 3
