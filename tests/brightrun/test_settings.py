"""Settings: typed env helpers, fail-fast secrets, production checks."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from brightrun import env

ROOT = Path(__file__).resolve().parents[2]
PROD_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "brightrun.example.com",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "SECURE_PROXY_SSL_HEADER": "1",
    "DJANGO_SETTINGS_MODULE": "brightrun.settings",
}


def _manage(*args: str, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **extra_env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_env_helpers(monkeypatch, tmp_path):
    monkeypatch.setenv("B", "yes")
    monkeypatch.setenv("I", "42")
    monkeypatch.setenv("L", "a, b,,c")
    assert env.env_bool("B") is True and env.env_int("I", 0) == 42 and env.env_list("L") == ["a", "b", "c"]
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    monkeypatch.setenv("TOKEN_FILE", str(secret))
    assert env.env_str("TOKEN") == "s3cr3t"


@pytest.mark.parametrize(
    ("name", "value", "call"),
    [
        ("B", "maybe", lambda: env.env_bool("B")),
        ("I", "4x", lambda: env.env_int("I", 1)),
        ("I", "-1", lambda: env.env_int("I", 1, minimum=0)),
        ("F", "fast", lambda: env.env_float("F", 1.0)),
        ("C", "ftp", lambda: env.env_choice("C", "local", {"local", "s3"})),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(monkeypatch, name, value, call):
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        call()


def test_production_refuses_to_start_without_secret_key():
    result = _manage("check", extra_env={"DEBUG": "0", "DJANGO_SETTINGS_MODULE": "brightrun.settings"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_check_deploy_is_clean_in_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", extra_env=PROD_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_defaults_off():
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        extra_env={"SECRET_KEY": "k" * 50, "DJANGO_SETTINGS_MODULE": "brightrun.settings"},
    )
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr
