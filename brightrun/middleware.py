"""Deny by default: every page needs a login, except views marked ``login_not_required``.

The REST API is not redirected to a login page: DRF authenticates it (token or session)
and its default permission is ``IsAuthenticated``, so anonymous API calls get 401/403
with the API's error shape instead of an HTML redirect.
"""

from __future__ import annotations

from django.contrib.auth import middleware


class LoginRequiredMiddleware(middleware.LoginRequiredMiddleware):
    api_prefix = "/api/"

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith(self.api_prefix):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
