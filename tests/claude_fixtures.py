"""Pytest fixtures for the loopback Claude API (``tests.claude_server.ClaudeTestServer``).

Registered for the whole suite with ``pytest_plugins = ["tests.claude_fixtures"]`` in ``tests/conftest.py``;
a module can also import the fixtures directly::

    from tests.claude_fixtures import claude_server_session, claude_server  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.claude_server import ClaudeTestServer

TEST_API_KEY = "sk-ant-test-key"


@pytest.fixture(scope="session")
def claude_server_session() -> Iterator[ClaudeTestServer]:
    """One server for the whole session (started lazily by the first test that needs it)."""
    server = ClaudeTestServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def claude_server(
    claude_server_session: ClaudeTestServer, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ClaudeTestServer]:
    """The session's server, reset (no requests, queue, rules, cache or batches; default attributes).

    Points the app at it: ``settings.ANTHROPIC_BASE_URL`` / ``settings.ANTHROPIC_API_KEY`` through
    pytest-django's ``settings`` fixture when Django is configured, and the ``ANTHROPIC_BASE_URL`` /
    ``ANTHROPIC_API_KEY`` environment variables (read by an ``anthropic.Anthropic()`` built without arguments).
    Fails the test at teardown if the server itself raised while handling a request.
    """
    server = claude_server_session
    server.reset()
    try:
        settings = request.getfixturevalue("settings")
    except (pytest.FixtureLookupError, pytest.skip.Exception):  # no pytest-django, or Django not configured
        settings = None
    if settings is not None:
        settings.ANTHROPIC_BASE_URL = server.base_url
        settings.ANTHROPIC_API_KEY = TEST_API_KEY
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    yield server
    errors = list(server.errors)
    server.reset()  # wakes any request still sleeping in a hang or latency
    assert not errors, f"ClaudeTestServer raised while handling requests: {errors!r}"
