"""Management commands used by `make run` and the container entrypoint."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_create_demo_user_prints_password_once(capsys, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("create_demo_user")
    first = capsys.readouterr().out
    assert "Demo login: username 'demo', password '" in first
    password = first.split("password '")[1].split("'")[0]
    user = get_user_model().objects.get(username="demo")
    assert user.check_password(password)
    assert (tmp_path / "demo-login.txt").read_text().strip().endswith(f"'{password}'")
    call_command("create_demo_user")
    assert password not in capsys.readouterr().out


def test_storage_setup_creates_bucket(s3_storage, capsys, settings):
    default = settings.STORAGES["default"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**default, "OPTIONS": {**default["OPTIONS"], "bucket_name": "fresh-bucket"}},
    }
    call_command("storage_setup")
    assert "created the storage bucket" in capsys.readouterr().out
    call_command("storage_setup")
    assert "storage ok" in capsys.readouterr().out


def test_storage_setup_allows_browser_uploads_from_the_site(s3_storage, capsys, settings):
    """The upload page posts files straight to the bucket, so the bucket must allow the site's origin."""
    from brightrun.storage import file_storage

    settings.SITE_URL = "https://brightrun.example"
    call_command("storage_setup")
    assert "CORS" in capsys.readouterr().out
    storage = file_storage()
    rules = storage.connection.meta.client.get_bucket_cors(Bucket=storage.bucket_name)["CORSRules"]
    assert rules[0]["AllowedOrigins"] == ["https://brightrun.example"]
    assert "POST" in rules[0]["AllowedMethods"]
