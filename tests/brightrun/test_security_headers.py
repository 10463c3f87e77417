"""Security headers on every response, and pages that need no inline script (so the CSP can forbid it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from brightrun.security_headers import content_security_policy

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)


def _directives(policy: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


@pytest.mark.parametrize("url", ["/", "/login/", "/conversations/", "/api/v1/notifications/", "/api/docs/", "/healthz"])
def test_headers_on_pages_and_api(url, owner_user, web_client_for):
    response = web_client_for(owner_user).get(url, follow=False)
    csp = _directives(response["Content-Security-Policy"])
    assert csp["script-src"] == "'self'"  # no inline scripts, no eval, no other origin
    assert csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'" and csp["base-uri"] == "'self'"
    assert csp["form-action"] == "'self'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


def test_no_template_has_inline_scripts_or_handlers():
    offenders = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(TEMPLATES)}: {m.group(0)}" for m in INLINE_SCRIPT.finditer(text)]
        offenders += [f"{path.relative_to(TEMPLATES)}: {m.group(0)}" for m in INLINE_HANDLER.finditer(text)]
    assert not offenders, offenders


def test_confirmations_use_data_attributes(owner_user, web_client_for):
    from brightrun import services

    services.api_token_create(owner=owner_user, name="ci")
    body = web_client_for(owner_user).get(reverse("accounts:tokens")).content.decode()
    assert 'data-confirm="Revoke this token?' in body


def test_direct_uploads_to_s3_are_allowed_to_connect(settings):
    settings.STORAGE_BACKEND = "s3"
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = "https://files.brightrun.example/some/path"
    assert _directives(content_security_policy())["connect-src"] == "'self' https://files.brightrun.example"
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = None
    settings.AWS_S3_ENDPOINT_URL = None
    assert "https://*.amazonaws.com" in _directives(content_security_policy())["connect-src"]
    settings.STORAGE_BACKEND = "local"
    settings.CSP_EXTRA_CONNECT_SRC = ("https://uploads.example",)
    assert _directives(content_security_policy())["connect-src"] == "'self' https://uploads.example"
