"""Schemathesis over every operation of /api/schema/, authenticated and anonymous.

Positive and negative data for every operation; every built-in check except one: no server error, documented
status codes and content types, responses that match their schemas, schema-violating requests refused, no
resource that disappears or outlives its deletion, auth that is not ignored, 405 for undeclared methods.

Left out, with the reason: ``positive_data_acceptance`` — a schema-valid request may still be refused on purpose
by rules a schema cannot express: an id of a row that does not exist or belongs to someone else (404/400 by design,
SPEC §2), cross-field rules ("items or selection"), an empty selection. Those refusals are tested where they live.

The module counts the requests it made and fails (in its teardown) if a whole run made fewer than 1,000.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from brightrun import services
from brightrun.wsgi import application
from tests.factories import NotificationFactory, UserFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])

MIN_REQUESTS = 1000
REQUESTS: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _at_least_a_thousand_requests():
    yield
    operations = len(list(schema.get_all_operations()))
    if len(REQUESTS) == operations:  # the whole module ran (not a -k selection)
        total = sum(REQUESTS.values())
        print(f"schemathesis: {total} authenticated requests over {operations} operations")
        assert total >= MIN_REQUESTS, f"only {total} generated requests; the contract asks for {MIN_REQUESTS}"


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
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_keeps_its_contract(case, token_header):
    REQUESTS[case.operation.label] += 1
    case.call_and_validate(headers=token_header, excluded_checks=[positive_data_acceptance])


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_anonymous(case, db):
    response = case.call_and_validate(checks=[not_a_server_error])
    if response.status_code == 404:  # a generated id that no route matches (e.g. "0.5") never reaches a view
        with pytest.raises(Resolver404):
            resolve(urlsplit(response.request.url).path)
    else:
        assert response.status_code in (401, 403, 405)
