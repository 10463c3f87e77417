"""Render a full page, or only its fragment for an HTMX request (NetBox ``htmx_partial``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def render_page(
    request: HttpRequest, template: str, fragment: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """``template`` for a normal request, ``fragment`` for an HTMX one; always ``Vary: HX-Request``."""
    response = render(request, fragment if is_htmx(request) else template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response
