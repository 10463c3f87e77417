"""Schemathesis over every operation of /api/schema/: no request may cause a server error."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from brightrun import services
from brightrun.wsgi import application
from tests.factories import NotificationFactory, UserFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture(autouse=True)
def _keep_test_connection():
    """Calling the WSGI app directly would close the test transaction's connection at the end
    of each request; Django's own test client disconnects the same handlers."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token_header(db):
    user = UserFactory(username="fuzzer")
    NotificationFactory.create_batch(3, owner=user)
    return {"Authorization": f"Token {services.api_token_create(owner=user, name='fuzz').key}"}


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, token_header):
    case.call_and_validate(headers=token_header, checks=[not_a_server_error])


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_anonymous(case, db):
    response = case.call_and_validate(checks=[not_a_server_error])
    if response.status_code == 404:  # a generated id that no route matches (e.g. "0.5") never reaches a view
        with pytest.raises(Resolver404):
            resolve(urlsplit(response.request.url).path)
    else:
        assert response.status_code in (401, 403)
