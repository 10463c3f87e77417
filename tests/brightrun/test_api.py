"""API conventions: token auth, JSON only, pagination, error shape, notifications."""

from __future__ import annotations

import pytest
from django.urls import reverse

from brightrun import services
from brightrun.models import Notification
from tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/notifications/"


def test_token_auth_then_revocation(owner_user, api_client_for):
    issued = services.api_token_create(owner=owner_user, name="ci")
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
    assert client.get(LIST).status_code == 200
    issued.token.refresh_from_db()
    assert issued.token.last_used_at is not None
    services.api_token_revoke(token=issued.token, actor=owner_user)
    response = client.get(LIST)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or revoked token.", "code": "invalid_token"}


def test_token_is_stored_hashed(owner_user):
    issued = services.api_token_create(owner=owner_user, name="ci")
    issued.token.refresh_from_db()
    assert issued.key not in (issued.token.digest, issued.token.prefix)
    assert issued.key.startswith(issued.token.prefix)


def test_bearer_keyword_and_bad_headers(owner_user, api_client_for):
    from rest_framework.test import APIClient

    key = services.api_token_create(owner=owner_user, name="ci").key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get(LIST).status_code == 200
    for header in ["Token", "Token a b", "Token br_nope"]:
        client.credentials(HTTP_AUTHORIZATION=header)
        response = client.get(LIST)
        assert response.status_code == 401
        assert response.json()["code"] in ("invalid_token", "invalid_token_header")


def test_anonymous_gets_401_with_code(api_client_for):
    response = api_client_for(None).get(LIST)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"


def test_session_auth_keeps_csrf(owner_user):
    from rest_framework.test import APIClient

    notification = NotificationFactory(owner=owner_user)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner_user)
    assert client.get(LIST).status_code == 200
    response = client.post(f"{LIST}{notification.pk}/mark-read/", {}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_json_only(owner_user, api_client_for):
    notification = NotificationFactory(owner=owner_user)
    client = api_client_for(owner_user)
    response = client.patch(f"{LIST}{notification.pk}/", {"is_read": "true"}, format="multipart")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    notification.refresh_from_db()
    assert notification.is_read is False
    assert client.patch(f"{LIST}{notification.pk}/", {"is_read": True}, format="json").json()["is_read"] is True
    assert client.patch(f"{LIST}{notification.pk}/", {"is_read": False}, format="json").json()["read_at"] is None
    bad = client.patch(f"{LIST}{notification.pk}/", {"is_read": "maybe"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid" and "is_read" in bad.json()["errors"]
    malformed = client.generic("PATCH", f"{LIST}{notification.pk}/", "{not json", content_type="application/json")
    assert malformed.status_code == 400 and malformed.json()["code"] == "parse_error"


def test_pagination_default_and_maximum(owner_user, api_client_for):
    Notification.objects.bulk_create(
        [Notification(owner=owner_user, type="dataset_ready", title=f"n{i}") for i in range(501)]
    )
    client = api_client_for(owner_user)
    body = client.get(LIST).json()
    assert body["count"] == 501 and len(body["results"]) == 50
    assert len(client.get(LIST, {"limit": 10_000}).json()["results"]) == 500


def test_list_query_ceiling(owner_user, api_client_for, django_assert_max_num_queries):
    NotificationFactory.create_batch(5, owner=owner_user)
    client = api_client_for(owner_user)
    with django_assert_max_num_queries(4):  # token lookup, last-use update, count, page
        response = client.get(LIST)
    assert len(response.json()["results"]) == 5


def test_filters_and_mark_read_actions(owner_user, api_client_for):
    a, b = NotificationFactory.create_batch(2, owner=owner_user)
    client = api_client_for(owner_user)
    body = client.post(f"{LIST}{a.pk}/mark-read/", {}, format="json").json()
    assert body["is_read"] is True and body["read_at"]
    unread = client.get(LIST, {"is_read": "false"}).json()["results"]
    assert [n["id"] for n in unread] == [str(b.pk)]
    assert client.post(f"{LIST}mark-all-read/", {}, format="json").json() == {"marked": 1}
    assert client.get(LIST, {"is_read": "false"}).json()["count"] == 0


def test_bad_filter_value_is_400_with_code(owner_user, api_client_for):
    response = api_client_for(owner_user).get(LIST, {"priority": "urgent"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_choice" and "priority" in body["errors"]


def test_unknown_object_is_404_with_code(owner_user, api_client_for):
    response = api_client_for(owner_user).get(f"{LIST}00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
    assert api_client_for(owner_user).get(f"{LIST}not-a-uuid/").status_code == 404


def test_schema_and_docs_render(client):
    schema = client.get(reverse("api-schema"))
    assert schema.status_code == 200
    assert b"/api/v1/notifications/" in schema.content
    docs = client.get(reverse("api-docs"))
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
