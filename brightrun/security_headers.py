"""Response headers that Django's SecurityMiddleware does not set: a Content-Security-Policy and a
Permissions-Policy.

The policy allows scripts, styles, images, fonts and connections from this site only, plus connections to the
storage endpoint that browsers upload datasets to directly (S3); no plugins, no framing, no foreign form targets.
Pages carry no inline scripts or handlers (confirmations use ``data-confirm``, handled by static/js/app.js); inline
*styles* stay allowed, for the ``style="--pct: …"`` bars of the CSS charts and the API docs page.
``CSP_EXTRA_CONNECT_SRC`` (space-separated origins) adds connection targets, e.g. another upload endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse

PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def upload_origins() -> list[str]:
    """Where browsers send direct uploads: the S3 endpoint they see (public one first), or AWS S3 itself."""
    if getattr(settings, "STORAGE_BACKEND", "local") != "s3":
        return []
    origin = _origin(getattr(settings, "AWS_S3_PUBLIC_ENDPOINT_URL", None)) or _origin(
        getattr(settings, "AWS_S3_ENDPOINT_URL", None)
    )
    return [origin] if origin else ["https://*.amazonaws.com"]


@lru_cache(maxsize=8)
def _policy(connect_extra: tuple[str, ...]) -> str:
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data:",
        "font-src": "'self'",
        "connect-src": " ".join(("'self'", *connect_extra)),
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def content_security_policy() -> str:
    extra = tuple(upload_origins()) + tuple(getattr(settings, "CSP_EXTRA_CONNECT_SRC", ()) or ())
    return _policy(extra)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", content_security_policy())
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
