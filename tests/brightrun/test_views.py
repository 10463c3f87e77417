"""Pages: login, dashboard, notifications with the bell, API tokens."""

from __future__ import annotations

import pytest
from django.urls import reverse

from brightrun.models import ApiToken, Notification
from tests.factories import PASSWORD, NotificationFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["dashboard", "notifications:list", "accounts:tokens", "notifications:bell"])
def test_pages_require_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_login_then_dashboard(client, owner_user):
    response = client.post(reverse("login"), {"username": "owner", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    body = response.content.decode()
    assert "<h1>Dashboard</h1>" in body
    for name in ["notifications:list", "accounts:tokens", "api-docs"]:
        assert f'href="{reverse(name)}"' in body  # navigation links to areas that exist
    assert 'href="/admin/"' not in body  # not staff


def test_wrong_password_shows_error(client, owner_user):
    response = client.post(reverse("login"), {"username": "owner", "password": "nope"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()


def test_logout_is_post_only(client, owner_user):
    client.force_login(owner_user)
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302


def test_every_navigation_link_resolves(client, owner_user):
    owner_user.is_staff = True
    owner_user.save()
    client.force_login(owner_user)
    from brightrun.context_processors import NAVIGATION

    for name, _ in NAVIGATION:
        assert client.get(reverse(name)).status_code == 200, name
    assert client.get("/admin/").status_code == 200


def test_bell_shows_unread_count(client, owner_user, other_user):
    NotificationFactory.create_batch(3, owner=owner_user)
    NotificationFactory(owner=owner_user, is_read=True)
    NotificationFactory.create_batch(5, owner=other_user)
    client.force_login(owner_user)
    bell = client.get(reverse("notifications:bell")).content.decode()
    assert 'class="badge">3<' in bell
    assert "3 unread" in bell
    assert 'class="badge">3<' in client.get(reverse("dashboard")).content.decode()


def test_notification_list_mark_read_and_all(client, owner_user):
    a, b = NotificationFactory.create_batch(2, owner=owner_user, link="/account/tokens/")
    client.force_login(owner_user)
    page = client.get(reverse("notifications:list")).content.decode()
    assert a.title in page and b.title in page
    response = client.post(reverse("notifications:mark_read", args=[a.pk]), {"follow": "1"})
    assert response["Location"] == "/account/tokens/"
    a.refresh_from_db()
    assert a.is_read
    unread_page = client.get(reverse("notifications:list"), {"unread": "1"}).content.decode()
    assert b.title in unread_page and a.title not in unread_page
    client.post(reverse("notifications:mark_all_read"))
    assert not Notification.objects.for_user(owner_user).unread().exists()


def test_notification_list_htmx_fragment(client, owner_user):
    NotificationFactory(owner=owner_user)
    client.force_login(owner_user)
    response = client.get(reverse("notifications:list"), HTTP_HX_REQUEST="true")
    assert "<html" not in response.content.decode()
    assert "HX-Request" in response["Vary"]


def test_notification_list_query_ceiling(client, owner_user, django_assert_max_num_queries):
    NotificationFactory.create_batch(5, owner=owner_user)
    client.force_login(owner_user)
    with django_assert_max_num_queries(6):
        assert client.get(reverse("notifications:list")).status_code == 200


def test_mutations_are_post_only(client, owner_user):
    n = NotificationFactory(owner=owner_user)
    client.force_login(owner_user)
    assert client.get(reverse("notifications:mark_read", args=[n.pk])).status_code == 405
    assert client.get(reverse("notifications:mark_all_read")).status_code == 405
    assert client.get(reverse("accounts:token_create")).status_code == 405


def test_token_created_shown_once_then_revoked(client, owner_user, api_client_for):
    client.force_login(owner_user)
    response = client.post(reverse("accounts:token_create"), {"name": "CI"}, follow=True)
    page = response.content.decode()
    token = ApiToken.objects.for_user(owner_user).get()
    key = page.split('id="new-token">')[1].split("<")[0]
    assert key.startswith(token.prefix)
    assert key not in client.get(reverse("accounts:tokens")).content.decode()  # shown once

    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/notifications/").status_code == 200
    client.post(reverse("accounts:token_revoke", args=[token.pk]))
    assert api.get("/api/v1/notifications/").status_code == 401
    assert "revoked" in client.get(reverse("accounts:tokens")).content.decode()


def test_token_form_errors_keep_input(client, owner_user):
    client.force_login(owner_user)
    response = client.post(reverse("accounts:token_create"), {"name": "x" * 101})
    assert response.status_code == 400
    assert "at most 100 characters" in response.content.decode()
    assert not ApiToken.objects.exists()
