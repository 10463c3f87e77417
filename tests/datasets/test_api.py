"""Datasets API (SPEC §9, §13.1)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from brightrun.storage import file_storage
from datasets.services import dataset_validate
from tests.datasets.conftest import chat_jsonl
from tests.factories import DatasetFactory, DatasetValidationFactory

pytestmark = pytest.mark.django_db


def test_create_upload_confirm_report(local_storage, owner_user, api_client_for, django_capture_on_commit_callbacks):
    client = api_client_for(owner_user)
    data = chat_jsonl(12)
    response = client.post(
        "/api/v1/datasets/",
        {"name": "Planner", "file_name": "train.jsonl", "file_size": len(data), "format": "auto"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "uploading"
    upload = body["upload"]
    assert upload["method"] == "POST" and upload["file_field"] == "file"
    assert upload["max_bytes"] > 0 and upload["expires_at"]
    assert set(upload) >= {"url", "fields", "headers"}

    posted = Client().post(urlsplit(upload["url"]).path, {upload["file_field"]: ContentFile(data, name="t.jsonl")})
    assert posted.status_code == 204

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        confirmed = client.post(f"/api/v1/datasets/{body['id']}/confirm/")
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "validating"
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=False) as again:
        assert client.post(f"/api/v1/datasets/{body['id']}/confirm/").status_code == 200
    assert again == []

    not_yet = client.get(f"/api/v1/datasets/{body['id']}/validation-report/")
    assert not_yet.status_code == 409 and not_yet.json()["code"] == "report_not_ready"

    dataset_validate(dataset_id=body["id"])
    detail = client.get(f"/api/v1/datasets/{body['id']}/").json()
    assert detail["status"] == "ready"
    assert detail["statistics"]["examples"] == 12
    assert detail["issue_counts"] == {}
    report = client.get(f"/api/v1/datasets/{body['id']}/validation-report/").json()
    assert report["result"] == "valid" and report["issues"] == [] and report["format"] == "chat"

    download = client.get(f"/api/v1/datasets/{body['id']}/download/").json()
    assert download["size"] == len(data)
    assert Client().get(urlsplit(download["url"]).path).status_code == 200


def test_create_over_limit_is_a_clear_400(local_storage, owner_user, api_client_for, settings):
    settings.DATASET_MAX_BYTES = 100
    response = api_client_for(owner_user).post(
        "/api/v1/datasets/", {"name": "Big", "file_name": "b.jsonl", "file_size": 101}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "file_too_large"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"name": "x", "file_name": "a.jsonl"}, "required"),
        ({"name": "x", "file_name": "a.jsonl", "file_size": "big"}, "invalid"),
        ({"name": "x", "file_name": "a.jsonl", "file_size": 10, "format": "xml"}, "invalid_choice"),
        ({"name": "x", "file_name": "a.jsonl", "file_size": 10, "context_tokens": 3}, "min_value"),
        ({"name": "x", "file_name": "slides.pdf", "file_size": 10}, "unsupported_file_type"),
        ({"name": "x", "file_name": "photo.png", "file_size": 10}, "unsupported_file_type"),
    ],
)
def test_create_bad_input(local_storage, owner_user, api_client_for, payload, code):
    response = api_client_for(owner_user).post("/api/v1/datasets/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_report_lists_issues_with_lines(local_storage, owner_user, api_client_for):
    dataset = DatasetFactory(owner=owner_user, status="invalid", error_count=1, issue_counts={"INVALID_JSON": 1})
    DatasetValidationFactory(
        dataset=dataset,
        result="invalid",
        error_count=1,
        counts={"INVALID_JSON": 1},
        issues=[
            {
                "line": 5,
                "code": "INVALID_JSON",
                "severity": "error",
                "path": "$",
                "message": "Line 5 is not JSON.",
                "suggestion": "Write one JSON object per line.",
            }
        ],
    )
    report = api_client_for(owner_user).get(f"/api/v1/datasets/{dataset.pk}/validation-report/").json()
    assert report["issues"][0]["line"] == 5
    assert report["counts"] == {"INVALID_JSON": 1}


def test_list_filters_search_and_query_ceiling(owner_user, other_user, api_client_for, django_assert_max_num_queries):
    DatasetFactory(owner=owner_user, name="Alpha planner", status="ready")
    DatasetFactory(owner=owner_user, name="Beta", status="invalid")
    DatasetFactory(owner=owner_user, name="Gone", status="deleted")
    DatasetFactory(owner=other_user, name="Alpha theirs")
    client = api_client_for(owner_user)
    with django_assert_max_num_queries(6):
        rows = client.get("/api/v1/datasets/").json()["results"]
    assert sorted(r["name"] for r in rows) == ["Alpha planner", "Beta"]
    assert [r["name"] for r in client.get("/api/v1/datasets/?status=invalid").json()["results"]] == ["Beta"]
    assert [r["name"] for r in client.get("/api/v1/datasets/?q=alpha").json()["results"]] == ["Alpha planner"]


def test_delete_soft_deletes(local_storage, owner_user, api_client_for):
    dataset = DatasetFactory(owner=owner_user)
    file_storage().save(dataset.storage_key, ContentFile(b"{}"))
    client = api_client_for(owner_user)
    assert client.delete(f"/api/v1/datasets/{dataset.pk}/").status_code == 204
    dataset.refresh_from_db()
    assert dataset.status == "deleted"
    assert file_storage().exists(dataset.storage_key)  # removed by the cleanup task after 30 days
    assert client.get(f"/api/v1/datasets/{dataset.pk}/").status_code == 404


def test_import_endpoint(built_version, owner_user, other_user, api_client_for, django_capture_on_commit_callbacks):
    payload = {"training_file": str(built_version.training_file_id), "version": 1}
    assert api_client_for(other_user).post("/api/v1/datasets/import/", payload, format="json").status_code == 404
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_client_for(owner_user).post("/api/v1/datasets/import/", payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "validating" and body["source"] == "import"
    assert body["training_file_version"]["number"] == 1
    assert len(callbacks) == 1
    missing = api_client_for(owner_user).post("/api/v1/datasets/import/", {**payload, "version": 9}, format="json")
    assert missing.status_code == 404 and missing.json()["code"] == "version_not_found"


def test_revalidate_endpoint(owner_user, api_client_for, django_capture_on_commit_callbacks):
    dataset = DatasetFactory(owner=owner_user, status="ready")
    client = api_client_for(owner_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(f"/api/v1/datasets/{dataset.pk}/revalidate/", {"context_tokens": 4096}, format="json")
    assert response.status_code == 202
    assert response.json()["context_tokens"] == 4096
    assert len(callbacks) == 1
    busy = client.post(f"/api/v1/datasets/{dataset.pk}/revalidate/", {}, format="json")
    assert busy.status_code == 400 and busy.json()["code"] == "not_validated_yet"


def test_fresh_upload_instructions_only_while_uploading(local_storage, owner_user, api_client_for):
    client = api_client_for(owner_user)
    uploading = DatasetFactory(owner=owner_user, status="uploading")
    assert client.post(f"/api/v1/datasets/{uploading.pk}/upload/").json()["upload"]["url"]
    ready = DatasetFactory(owner=owner_user, status="ready")
    response = client.post(f"/api/v1/datasets/{ready.pk}/upload/")
    assert response.status_code == 400 and response.json()["code"] == "not_uploading"


def test_schema_documents_the_dataset_routes(api_client_for, owner_user):
    schema = api_client_for(owner_user).get(reverse("api-schema"), {"format": "json"}).json()
    for path in (
        "/api/v1/datasets/",
        "/api/v1/datasets/{id}/confirm/",
        "/api/v1/datasets/{id}/validation-report/",
        "/api/v1/datasets/import/",
    ):
        assert path in schema["paths"]
