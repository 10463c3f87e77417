"""Secrets never reach the logs or the database: the Claude API key and API token keys.

Every logger is captured at DEBUG (the SDK's ``anthropic`` and the HTTP client's loggers included) while a
generation runs with failing and succeeding calls, and every row of every model is searched afterwards, as are
the files generation stored.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from django.apps import apps
from django.core import serializers
from django.urls import reverse

from brightrun.models import ApiToken
from brightrun.services import api_token_create, api_token_revoke
from conversations.models import BatchItem, FailedGeneration, GenerationBatch, GenerationLog
from conversations.services import batches
from conversations.services.generation import generation_dispatch, generation_item_run
from tests.conversations.conftest import run_batch, scaffolding  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

CLAUDE_KEY = "sk-ant-api03-SECRETCANARY-7f3c9e1d2b4a6f8e0c1d3b5a7f9e2c4d"


@pytest.fixture
def capture_all_logs(caplog):
    """Every logger at DEBUG, propagating to caplog's handler; returns a function giving all text logged."""
    caplog.set_level(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    for name in ["anthropic", "httpx", "httpcore", "httpx2", "httpcore2", "django.request", "django.server"]:
        loggers.append(logging.getLogger(name))
    kept = [(logger, logger.propagate, logger.disabled) for logger in loggers if isinstance(logger, logging.Logger)]
    for logger, _, _ in kept:
        caplog.set_level(logging.DEBUG, logger=logger.name)
        logger.propagate = True
        logger.disabled = False

    def text() -> str:
        parts = []
        for record in caplog.records:
            parts.append(record.getMessage())
            parts.append(repr(record.args))
            parts.append(repr(record.__dict__))
            if record.exc_info:
                parts.append(logging.Formatter().formatException(record.exc_info))
        return "\n".join(parts)

    yield text
    for logger, propagate, disabled in kept:
        logger.propagate = propagate
        logger.disabled = disabled


def _stored_text() -> str:
    """Every row of every model, serialised."""
    chunks = []
    for model in apps.get_models():
        rows = model._default_manager.all()
        if rows.exists():
            chunks.append(serializers.serialize("json", rows))
    return "\n".join(chunks)


def _files_text(root: Path) -> str:
    if not root.exists():
        return ""
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file())


def _batch(owner, n=1, **kwargs) -> GenerationBatch:
    specs = batches.item_specs_from_items(
        [{"persona": "overwhelmed_avoider", "emotional_arc": "confusion_to_clarity", "training_topic": "ignored_401k"}]
        * n,
        allow_incompatible=True,
    )
    return batches.generation_batch_create(owner=owner, specs=specs, **kwargs)


def test_claude_api_key_is_never_logged_or_stored(
    owner_user,
    scaffolding,  # noqa: F811
    claude_server,
    run_batch,  # noqa: F811
    local_storage,
    settings,
    capture_all_logs,
    caplog,
):
    settings.ANTHROPIC_API_KEY = CLAUDE_KEY  # after claude_server, which sets the test key
    settings.ANTHROPIC_MAX_RETRIES = 0

    # 1. A rejected key pauses the batch; resuming it succeeds.
    claude_server.enqueue("unauthorized")
    paused = run_batch(_batch(owner_user))
    assert paused.status == GenerationBatch.Status.PAUSED
    batches.generation_batch_resume(batch=paused, actor=owner_user)
    assert run_batch(paused).status == GenerationBatch.Status.COMPLETED

    # 2. Persistent server errors fail an item after its attempts.
    claude_server.default_behaviour = "server_error"
    failing = _batch(owner_user)
    item = failing.items.get()
    for _ in range(settings.GENERATION_MAX_ATTEMPTS):
        BatchItem.objects.filter(pk=item.pk).update(not_before=None)
        generation_dispatch(batch_id=failing.pk)
        generation_item_run(item_id=item.pk)
    item.refresh_from_db()
    assert item.status == BatchItem.Status.FAILED

    # The key did reach the server (so it was really in play) ...
    assert any(CLAUDE_KEY in str(request.get("headers", "")) for request in claude_server.message_requests)
    # ... and the failures were recorded, with their text.
    assert GenerationLog.objects.filter(status="failed").exists()
    assert FailedGeneration.objects.exists()
    logged = capture_all_logs()
    names = {record.name.split(".")[0] for record in caplog.records}
    assert {"anthropic", "httpcore2"} <= names or {"anthropic", "httpx2"} <= names, names  # SDK debug logs captured
    assert CLAUDE_KEY not in logged
    assert CLAUDE_KEY not in _stored_text()
    assert CLAUDE_KEY not in _files_text(local_storage)
    # Not even a recognisable part of it (e.g. a key echoed with its end cut off).
    assert "SECRETCANARY" not in logged + _stored_text() + _files_text(local_storage)


def test_api_token_key_is_never_logged_or_stored(client, owner_user, capture_all_logs):
    issued = api_token_create(owner=owner_user, name="laptop")
    url = reverse("notification-list")
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {issued.key}").status_code == 200

    wrong = issued.key[:-4] + "XXXX"
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {wrong}").status_code == 401
    api_token_revoke(token=issued.token, actor=owner_user)
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {issued.key}").status_code == 401

    token = ApiToken.objects.get()
    assert token.digest and token.digest != issued.key and issued.key not in token.digest
    assert issued.key.startswith(token.prefix) and len(token.prefix) < len(issued.key) // 2
    secret_part = issued.key[len(token.prefix) :]
    logged = capture_all_logs()
    assert logged  # requests were logged at all
    for text in (logged, _stored_text()):
        assert issued.key not in text and wrong not in text
        assert secret_part not in text and wrong[len(token.prefix) :] not in text
