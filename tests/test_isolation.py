"""The isolation contract over every owned route (see tests/isolation.py)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.isolation import EXEMPT, EXEMPT_LISTS, LIST_ROUTES, OBJECT_ROUTES, ListRoute, ObjectRoute


def _call(client, route: ObjectRoute, url: str):
    method = getattr(client, route.method)
    if route.kind == "api":
        return method(url, route.data or {}, format="json")
    return method(url, route.data or {})


def _client(route_kind, user, api_client_for, web_client_for):
    return api_client_for(user) if route_kind == "api" else web_client_for(user)


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=str)
def test_owner_reaches_own_object(route, owner_user, api_client_for, web_client_for):
    obj = route.make(owner_user)
    response = _call(
        _client(route.kind, owner_user, api_client_for, web_client_for),
        route,
        reverse(route.name, kwargs=route.url_kwargs(obj)),
    )
    assert response.status_code in route.owner_status, response.content[:500]


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=str)
def test_other_user_gets_404(route, owner_user, other_user, api_client_for, web_client_for):
    obj = route.make(owner_user)
    response = _call(
        _client(route.kind, other_user, api_client_for, web_client_for),
        route,
        reverse(route.name, kwargs=route.url_kwargs(obj)),
    )
    assert response.status_code == 404, response.content[:500]


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=str)
def test_anonymous_is_refused(route, owner_user, api_client_for, web_client_for):
    obj = route.make(owner_user)
    url = reverse(route.name, kwargs=route.url_kwargs(obj))
    response = _call(_client(route.kind, None, api_client_for, web_client_for), route, url)
    if route.kind == "api":
        assert response.status_code in (401, 403)
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse(settings.LOGIN_URL))


@pytest.mark.parametrize("route", LIST_ROUTES, ids=str)
def test_lists_show_only_own_rows(route: ListRoute, owner_user, other_user, api_client_for, web_client_for):
    mine = route.make(owner_user)
    theirs = route.make(other_user)
    url = reverse(route.name)
    response = _client(route.kind, owner_user, api_client_for, web_client_for).get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert str(mine.pk) in body
    assert str(theirs.pk) not in body
    anonymous = _client(route.kind, None, api_client_for, web_client_for).get(url)
    assert anonymous.status_code in ((401, 403) if route.kind == "api" else (302,))


def _walk(patterns, prefix="", namespace=""):
    """Yield (name, regex, has_params) for every URL pattern, with namespaces resolved."""
    for p in patterns:
        regex = prefix + p.pattern.regex.pattern.lstrip("^")
        if isinstance(p, URLResolver):
            ns = namespace
            if p.namespace:
                ns = f"{namespace}{p.namespace}:"
            yield from _walk(p.url_patterns, regex, ns)
        elif isinstance(p, URLPattern):
            name = f"{namespace}{p.name or p.lookup_str}"
            yield name, regex, bool(re.compile(regex).groupindex)


def _exempt(name: str) -> bool:
    return name in EXEMPT or any(key.endswith("*") and name.startswith(key[:-1]) for key in EXEMPT)


def test_every_object_route_is_covered():
    covered = {r.name for r in OBJECT_ROUTES}
    missing = sorted({name for name, _, has_params in _walk(get_resolver().url_patterns) if has_params} - covered)
    missing = [name for name in missing if not _exempt(name)]
    assert not missing, f"Routes with an object id missing from the isolation contract: {missing}"


def test_every_list_route_is_covered():
    """API list endpoints (router ``*-list`` names) must be in LIST_ROUTES."""
    lists = {name for name, _, _ in _walk(get_resolver().url_patterns) if name.endswith("-list")} - set(EXEMPT_LISTS)
    assert lists <= {r.name for r in LIST_ROUTES}, lists - {r.name for r in LIST_ROUTES}
