"""Login rate limiting: failed sign-ins per username and per client address (brightrun/ratelimit_login.py)."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse
from freezegun import freeze_time

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.LOGIN_MAX_FAILURES = 10
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 900
    cache.clear()
    yield
    cache.clear()


def _login(client, username, password, **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def _fail(client, username, times, **extra):
    for _ in range(times):
        response = _login(client, username, "wrong-password", **extra)
        assert response.status_code == 200  # the ordinary "didn't match" page


def test_eleventh_attempt_is_refused_even_with_the_right_password(client):
    UserFactory(username="owner")
    _fail(client, "owner", 10)
    response = _login(client, "owner", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-ins; try again in 15 minutes." in response.content.decode()
    assert int(response["Retry-After"]) == 900
    assert "_auth_user_id" not in client.session
    # The username is normalised: another spelling is the same counter.
    assert _login(client, " OWNER ", PASSWORD).status_code == 429


def test_locked_attempt_does_not_check_the_password(client, monkeypatch):
    UserFactory(username="owner")
    _fail(client, "owner", 10)
    calls = []
    monkeypatch.setattr("django.contrib.auth.forms.authenticate", lambda *a, **k: calls.append(k))
    assert _login(client, "owner", PASSWORD).status_code == 429
    assert calls == []


def test_other_username_from_the_same_address_is_limited_per_address(client):
    UserFactory(username="victim")
    for n in range(5):  # 5 usernames × 10 failures = the per-address limit of 50
        _fail(client, f"guess{n}", 10)
    assert _login(client, "victim", PASSWORD).status_code == 429
    # Another address may still sign in as that user.
    response = _login(client, "victim", PASSWORD, REMOTE_ADDR="10.9.9.9")
    assert response.status_code == 302


def test_per_address_limit_is_higher_than_per_username(client):
    UserFactory(username="victim")
    for n in range(4):
        _fail(client, f"guess{n}", 10)  # 40 failures from this address, under 50
    assert _login(client, "victim", PASSWORD).status_code == 302


def test_forwarded_for_is_ignored_without_a_trusted_proxy(client, settings):
    settings.SECURE_PROXY_SSL_HEADER = None
    UserFactory(username="victim")
    for n in range(5):
        _fail(client, f"guess{n}", 10, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")  # forged, one per user
    assert _login(client, "victim", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


def test_behind_a_proxy_the_address_it_recorded_counts(client, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    UserFactory(username="victim")
    for n in range(5):  # the client forges the first entry; the proxy appends the real address
        _fail(client, f"guess{n}", 10, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7")
    assert _login(client, "victim", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    assert _login(client, "victim", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 302


def test_window_expiry_lets_the_user_in_again(client):
    UserFactory(username="owner")
    with freeze_time("2026-01-01 12:00:00") as frozen:
        _fail(client, "owner", 10)
        frozen.tick(600)
        response = _login(client, "owner", PASSWORD)
        assert response.status_code == 429
        assert "try again in 5 minutes." in response.content.decode()
        frozen.tick(301)
        assert _login(client, "owner", PASSWORD).status_code == 302


def test_success_resets_the_username_counter(client):
    UserFactory(username="owner")
    _fail(client, "owner", 9)
    assert _login(client, "owner", PASSWORD).status_code == 302
    client.logout()
    _fail(client, "owner", 9)  # nine more would have locked the account without the reset
    assert _login(client, "owner", PASSWORD).status_code == 302


def test_settings_change_the_limit(client, settings):
    settings.LOGIN_MAX_FAILURES = 2
    UserFactory(username="owner")
    _fail(client, "owner", 2)
    assert _login(client, "owner", PASSWORD).status_code == 429
