"""The API refuses what its document does not allow: wrong JSON types, malformed pagination and filters, unknown
routes — each with a stable code, never silently ignored, never an HTML page."""

from __future__ import annotations

import pytest

from tests.factories import DatasetFactory, NotificationFactory


def test_wrong_json_type_is_refused_with_field_errors(owner_user, api_client_for, local_storage):
    response = api_client_for(owner_user).post(
        "/api/v1/datasets/", {"name": "x", "file_name": "a.jsonl", "file_size": 10, "context_model": 7}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"] == {"context_model": ["Must be of JSON type string."]}


def test_nested_wrong_type_and_nulls(owner_user, api_client_for):
    client = api_client_for(owner_user)
    response = client.post(
        "/api/v1/conversations/bulk-review/", {"ids": [7], "action": "approve", "comment": "ok"}, format="json"
    )
    assert response.status_code == 400 and response.json()["errors"] == {"ids.0": ["Must be of JSON type string."]}
    # A nullable field takes null (OpenAPI 3.0 ``nullable``); a valid body reaches the view.
    estimate = client.post(
        "/api/v1/generation-batches/estimate/",
        {"items": [], "selection": {"personas": [], "temperature": None}},
        format="json",
    )
    assert estimate.status_code == 400 and estimate.json()["code"] == "required", estimate.json()  # not a type error


def test_serializer_codes_are_kept_for_everything_but_types(owner_user, api_client_for, local_storage):
    client = api_client_for(owner_user)
    missing = client.post("/api/v1/datasets/", {"name": "x", "file_name": "a.jsonl"}, format="json")
    assert missing.json()["code"] == "required"
    choice = client.post(
        "/api/v1/datasets/", {"name": "x", "file_name": "a.jsonl", "file_size": 10, "format": "xml"}, format="json"
    )
    assert choice.json()["code"] == "invalid_choice"


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=abc", "limit=", "offset=-1", "offset=1.5", "offset=٣"])
def test_malformed_pagination_is_a_400(query, owner_user, api_client_for):
    response = api_client_for(owner_user).get(f"/api/v1/notifications/?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_pagination"


def test_large_limit_is_capped(owner_user, api_client_for):
    NotificationFactory.create_batch(3, owner=owner_user)
    body = api_client_for(owner_user).get("/api/v1/notifications/?limit=100000").json()
    assert body["count"] == 3 and len(body["results"]) == 3


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("is_read=maybe", "invalid_choice"),
        ("is_read=", "empty_parameter"),
        ("priority=", "empty_parameter"),
    ],
)
def test_malformed_filters_are_a_400(query, code, owner_user, api_client_for):
    response = api_client_for(owner_user).get(f"/api/v1/notifications/?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_boolean_filter_words(owner_user, api_client_for):
    NotificationFactory(owner=owner_user, is_read=True)
    NotificationFactory(owner=owner_user, is_read=False)
    client = api_client_for(owner_user)
    assert client.get("/api/v1/notifications/?is_read=TRUE").json()["count"] == 1
    assert client.get("/api/v1/notifications/?is_read=0").json()["count"] == 1


def test_foreign_key_filters_match_ids_not_choices(owner_user, other_user, api_client_for):
    """Another user's id and an unknown id get the same answer — an empty page, not an error that says which."""
    client = api_client_for(owner_user)
    theirs = DatasetFactory(owner=other_user)
    for dataset in (theirs.pk, "6f1c1a34-5b7e-4c5e-9d2c-000000000000"):
        response = client.get(f"/api/v1/training-jobs/?dataset={dataset}")
        assert response.status_code == 200 and response.json()["count"] == 0
    malformed = client.get("/api/v1/training-jobs/?dataset=not-a-uuid")
    assert malformed.status_code == 400 and malformed.json()["code"] == "invalid"


def test_unknown_api_route_is_json_404(owner_user, api_client_for, client):
    for response in (api_client_for(owner_user).get("/api/v1/datasets/0.5/"), client.get("/api/v1/nowhere/")):
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "Nothing is at this address.", "code": "not_found"}
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_every_operation_documents_its_errors():
    from drf_spectacular.generators import SchemaGenerator

    document = SchemaGenerator().get_schema(request=None, public=True)
    assert document["components"]["schemas"]["Error"]["required"] == ["detail", "code"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert {"400", "401", "403", "404", "429", "503"} <= set(operation["responses"]), (method, path)
