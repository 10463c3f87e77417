"""Request middleware: deny by default, and a 503 page when the database is unavailable.

Every page needs a login, except views marked ``login_not_required``.

The REST API is not redirected to a login page: DRF authenticates it (token or session)
and its default permission is ``IsAuthenticated``, so anonymous API calls get 401/403
with the API's error shape instead of an HTML redirect.
"""

from __future__ import annotations

import sys

from django.contrib.auth import middleware
from django.core.signals import got_request_exception
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from brightrun.outages import (
    DATABASE_UNAVAILABLE_CODE,
    DATABASE_UNAVAILABLE_MESSAGE,
    database_outage_record,
    is_database_outage,
)


class LoginRequiredMiddleware(middleware.LoginRequiredMiddleware):
    api_prefix = "/api/"

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith(self.api_prefix):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


def _remember_outage(sender, request=None, **kwargs) -> None:
    """``got_request_exception`` receiver: mark a request whose uncaught exception is a database outage."""
    exc = sys.exc_info()[1]
    if request is not None and exc is not None and is_database_outage(exc):
        request._database_outage = exc


got_request_exception.connect(_remember_outage, dispatch_uid="brightrun.middleware.remember_outage")


class DatabaseUnavailableMiddleware:
    """A request that loses the database answers 503 with a plain page (JSON under ``/api/``), never a 500.

    Two ways in: ``process_exception`` for exceptions raised by views, and, for one raised outside a view (the
    login check loading the session user, another middleware), the 500 that Django made of it is replaced when
    ``got_request_exception`` marked the request. So it sits near the top of ``MIDDLEWARE``, outside the session
    and auth middleware. DRF views answer through the API's exception handler first. The page is rendered
    without context processors: the usual ones (navigation, notification bell) would query the database again.
    """

    api_prefix = "/api/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        exc = getattr(request, "_database_outage", None)
        if exc is not None and response.status_code == 500:
            return self._unavailable(request, exc)
        return response

    def process_exception(self, request, exception):
        if not is_database_outage(exception):
            return None
        return self._unavailable(request, exception)

    def _unavailable(self, request, exc: BaseException) -> HttpResponse:
        database_outage_record(exc, request)
        if request.path_info.startswith(self.api_prefix):
            return JsonResponse(
                {"detail": DATABASE_UNAVAILABLE_MESSAGE, "code": DATABASE_UNAVAILABLE_CODE},
                status=503,
                headers={"Retry-After": "5"},
            )
        body = render_to_string("503.html", {"message": DATABASE_UNAVAILABLE_MESSAGE})
        return HttpResponse(body, status=503, headers={"Retry-After": "5"})
