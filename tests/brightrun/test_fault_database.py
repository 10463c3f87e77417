"""PostgreSQL drops the request's connection mid-write: a clean 503, no partial rows, the next request works.

The drop is real: a second connection runs ``pg_terminate_backend`` on the request connection's server process,
right after a chosen statement of a multi-row write (Django's ``execute_wrapper`` picks the moment). The
server rolls back the open transaction, so the assertions on "no partial rows" are about what PostgreSQL kept.
"""

from __future__ import annotations

import logging

import psycopg
import pytest
from django.db import connection
from django.urls import reverse

from conversations.models import Conversation, ReviewAction
from tests.training_files.helpers import trainable, vertical
from training_files.models import TrainingFile, TrainingFileMember, TrainingFileVersion

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="terminates a PostgreSQL server process"),
]


class DropConnectionAfter:
    """An ``execute_wrapper`` that kills the connection's server process right after the first statement that
    starts with ``verb`` and names ``table``; the statement itself completes (inside the open transaction)."""

    def __init__(self, verb: str, table: str) -> None:
        self.verb = verb.upper()
        self.table = f'"{table}"'
        self.fired = False

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not self.fired and sql.lstrip().upper().startswith(self.verb) and self.table in sql:
            self.fired = True
            wrapper = context["connection"]
            pid = wrapper.connection.info.backend_pid
            conninfo = {
                key: value
                for key, value in {
                    "dbname": wrapper.settings_dict["NAME"],
                    "host": wrapper.settings_dict["HOST"],
                    "port": wrapper.settings_dict["PORT"],
                    "user": wrapper.settings_dict["USER"],
                    "password": wrapper.settings_dict["PASSWORD"],
                }.items()
                if value
            }
            with psycopg.connect(**conninfo, autocommit=True) as admin:
                # The second argument waits (ms) until the process has exited, so the next statement fails.
                killed = admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()[0]
            assert killed, f"backend {pid} was not terminated"
        return result


@pytest.fixture
def outage_log(caplog):
    caplog.set_level(logging.WARNING, logger="brightrun.outages")
    return caplog


def _assert_clean_outage_logged(caplog) -> None:
    warnings = [r for r in caplog.records if r.name == "brightrun.outages"]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    message = warnings[0].getMessage()
    assert "database unavailable during POST" in message and "OperationalError" in message
    password = connection.settings_dict.get("PASSWORD")
    assert not password or password not in message
    assert not any(r.exc_info for r in caplog.records), "an outage is answered, not logged as a traceback"


def test_api_training_file_create_drop_is_503_without_partial_rows(owner_user, api_client_for, outage_log):
    vertical()
    conversations = [trainable(owner_user) for _ in range(2)]
    client = api_client_for(owner_user)
    payload = {"name": "Dropped", "conversations": [str(c.pk) for c in conversations]}
    drop = DropConnectionAfter("INSERT", TrainingFile._meta.db_table)

    with connection.execute_wrapper(drop):
        response = client.post(reverse("training-file-list"), payload, format="json")

    assert drop.fired
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "database_unavailable" and "database is unavailable" in body["detail"]
    assert "Traceback" not in response.content.decode()
    _assert_clean_outage_logged(outage_log)
    # The file row was inserted before the drop; PostgreSQL rolled it back with the members and version.
    assert not TrainingFile.objects.exists()
    assert not TrainingFileMember.objects.exists() and not TrainingFileVersion.objects.exists()

    again = client.post(reverse("training-file-list"), payload, format="json")
    assert again.status_code == 201, again.content
    assert TrainingFile.objects.get().name == "Dropped"
    assert TrainingFileMember.objects.count() == 2 and TrainingFileVersion.objects.count() == 1


def test_api_review_drop_keeps_status_and_history_together(owner_user, reviewer, api_client_for, outage_log):
    conversation = trainable(owner_user, status="pending_review")
    client = api_client_for(reviewer)
    url = f"/api/v1/conversations/{conversation.pk}/review/"
    drop = DropConnectionAfter("UPDATE", Conversation._meta.db_table)

    with connection.execute_wrapper(drop):
        response = client.post(url, {"action": "approve"}, format="json")

    assert drop.fired
    assert response.status_code == 503 and response.json()["code"] == "database_unavailable"
    _assert_clean_outage_logged(outage_log)
    conversation.refresh_from_db()
    # The status UPDATE ran before the drop; the review event INSERT never did: neither is kept.
    assert conversation.status == "pending_review" and conversation.reviewed_at is None
    assert not ReviewAction.objects.filter(conversation=conversation).exists()

    again = client.post(url, {"action": "approve"}, format="json")
    assert again.status_code == 200, again.content
    conversation.refresh_from_db()
    assert conversation.status == "approved"
    assert ReviewAction.objects.filter(conversation=conversation).count() == 1


def test_page_post_drop_renders_the_503_page_without_partial_rows(owner_user, web_client_for, outage_log):
    vertical()
    conversations = [trainable(owner_user) for _ in range(2)]
    client = web_client_for(owner_user)
    form = {"ids": [str(c.pk) for c in conversations], "tf_name": "From the page", "tf_description": ""}
    drop = DropConnectionAfter("INSERT", TrainingFileMember._meta.db_table)

    with connection.execute_wrapper(drop):
        response = client.post(reverse("training_files:create_from_selection"), form)

    assert drop.fired
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Temporarily unavailable" in page and "database is unavailable" in page
    assert "Traceback" not in page and "OperationalError" not in page
    _assert_clean_outage_logged(outage_log)
    assert not TrainingFile.objects.exists() and not TrainingFileMember.objects.exists()
    assert not TrainingFileVersion.objects.exists()

    again = client.post(reverse("training_files:create_from_selection"), form)
    assert again.status_code == 200, again.content[:500]
    assert TrainingFile.objects.get().name == "From the page"
    assert TrainingFileMember.objects.count() == 2 and TrainingFileVersion.objects.count() == 1


def test_page_that_loses_the_database_before_its_view_is_a_503(owner_user, web_client_for, outage_log):
    """The drop hits the login check (loading the session's user), outside any view: still the 503 page."""
    client = web_client_for(owner_user)
    client.raise_request_exception = False  # answer like a server would, instead of re-raising in the test
    drop = DropConnectionAfter("SELECT", "django_session")

    with connection.execute_wrapper(drop):
        response = client.get(reverse("dashboard"))

    assert drop.fired
    assert response.status_code == 503
    page = response.content.decode()
    assert "Temporarily unavailable" in page and "Traceback" not in page
    warnings = [r for r in outage_log.records if r.name == "brightrun.outages"]
    assert len(warnings) == 1 and "database unavailable during GET /" in warnings[0].getMessage()

    assert client.get(reverse("dashboard")).status_code == 200


def test_only_lost_connections_are_outages_and_credentials_never_reach_the_log(outage_log):
    from django.db import IntegrityError, OperationalError

    from brightrun.outages import database_outage_record, is_database_outage

    assert is_database_outage(OperationalError("server closed the connection unexpectedly"))
    assert not is_database_outage(IntegrityError("duplicate key value violates unique constraint"))
    database_outage_record(
        OperationalError('connection to "postgres://app:s3cret-pw@db:5432/x" failed: password=hunter2 rejected')
    )
    message = outage_log.records[-1].getMessage()
    assert "outside a request" in message and "postgres://app:***@db:5432/x" in message
    assert "s3cret-pw" not in message and "hunter2" not in message
