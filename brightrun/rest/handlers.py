"""Django's 404 and 500 handlers: JSON in the error format of the API under ``/api/``, the site's pages elsewhere.

A URL under ``/api/`` that no route matches (``/api/v1/datasets/not-an-id/``) never reaches DRF, so without this
it would answer with Django's HTML page, which no API client can read.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

API_PREFIX = "/api/"


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": "Nothing is at this address.", "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": "Something went wrong on our side.", "code": "server_error"}, status=500)
    return defaults.server_error(request)
