"""Fixtures shared by the whole suite: users, API clients, an S3 server, storage switches."""

from __future__ import annotations

import logging
import os

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from rest_framework.test import APIClient

from brightrun import services
from tests.factories import UserFactory
from tests.processes import free_port

pytest_plugins = ["tests.claude_fixtures"]


@pytest.fixture
def owner_user(db):
    return UserFactory(username="owner")


@pytest.fixture
def other_user(db):
    return UserFactory(username="other")


@pytest.fixture
def reviewer(db):
    user = UserFactory(username="reviewer")
    group, _ = Group.objects.get_or_create(name="Reviewers")
    # The migration gives the group its permission, but a transactional test's flush empties the table that
    # links them: grant it again so the fixture does not depend on which tests ran before.
    group.permissions.add(
        Permission.objects.get(codename="review_conversation", content_type__app_label="conversations")
    )
    user.groups.add(group)
    return user


@pytest.fixture
def api_client_for(db):
    """An API client authenticated with a real token of ``user`` (None → anonymous)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            key = services.api_token_create(owner=user, name="tests").key
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make


@pytest.fixture
def web_client_for(db):
    """A Django test client logged in as ``user`` (None → anonymous)."""

    def make(user=None) -> Client:
        c = Client()
        if user is not None:
            c.force_login(user)
        return c

    return make



@pytest.fixture(scope="session")
def s3_server():
    """moto's S3-compatible server on loopback for the whole session; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_storage(s3_server, settings):
    """Switch the default storage to S3 (moto's server, path-style, SigV4) with a fresh bucket."""
    from brightrun.storage import storage_ensure_bucket

    settings.STORAGE_BACKEND = "s3"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "brightrun-test",
                "endpoint_url": s3_server,
                "region_name": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "signature_version": "s3v4",
                "addressing_style": "path",
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": False,
            },
        },
    }
    storage_ensure_bucket()
    return s3_server


@pytest.fixture
def local_storage(tmp_path, settings):
    """Switch the default storage to local files under a temporary folder."""
    settings.STORAGE_BACKEND = "local"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    settings.SITE_URL = "http://testserver"
    return tmp_path / "media"


@pytest.fixture(params=["local", "s3"])
def any_storage(request):
    """Run a test once per storage backend."""
    return request.getfixturevalue(f"{request.param}_storage") and request.param
