"""Login rate limiting: failed sign-ins are counted in Django's cache per username and per client address.

``LOGIN_MAX_FAILURES`` failures for one (case-folded) username, or five times as many from one client address,
within ``LOGIN_FAILURE_WINDOW_SECONDS`` lock further attempts until the window that began with the first failure
ends. A locked attempt is answered 429 without checking the password, so even the right one does not get in.
A successful sign-in clears its username's counter (not the address's). The counters live in the default cache;
set ``CACHE_URL`` to Redis when several machines serve the app, or each machine counts on its own.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache

PER_IP_FACTOR = 5  # one address may fail for several users (an office behind NAT) before it is locked
_PREFIX = "login-failures"


def client_ip(request) -> str:
    """The client's address: ``REMOTE_ADDR``, or behind a trusted proxy the hop that proxy recorded.

    ``X-Forwarded-For`` is read only when ``SECURE_PROXY_SSL_HEADER`` is on (the deployment says a proxy sits in
    front). Its last entry is the address the proxy itself saw; earlier entries come from the client and could
    be forged to dodge the per-address limit.
    """
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None):
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-1]
    return remote


def _username_key(username: str) -> str:
    digest = hashlib.sha256(username.strip().casefold().encode("utf-8")).hexdigest()
    return f"{_PREFIX}:user:{digest}"


def _ip_key(ip: str) -> str:
    return f"{_PREFIX}:ip:{ip}"


def _window() -> int:
    return int(getattr(settings, "LOGIN_FAILURE_WINDOW_SECONDS", 900))


def _limits() -> tuple[int, int]:
    per_user = int(getattr(settings, "LOGIN_MAX_FAILURES", 10))
    return per_user, per_user * PER_IP_FACTOR


def _record_failure(key: str) -> None:
    window = _window()
    if cache.add(key, 1, timeout=window):
        cache.set(f"{key}:reset", time.time() + window, timeout=window)
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window)
        cache.set(f"{key}:reset", time.time() + window, timeout=window)


def _seconds_left(key: str, limit: int) -> float:
    """Seconds until ``key`` unlocks, or 0 when it is under ``limit``."""
    count = cache.get(key) or 0
    if count < limit:
        return 0
    reset_at = cache.get(f"{key}:reset")
    if reset_at is None:
        return float(_window())
    return max(reset_at - time.time(), 1.0)


def login_locked_for(*, username: str, ip: str) -> float:
    """Seconds the next attempt for ``username`` from ``ip`` must wait (0 when it may go ahead)."""
    per_user, per_ip = _limits()
    waits = [_seconds_left(_ip_key(ip), per_ip)]
    if username.strip():
        waits.append(_seconds_left(_username_key(username), per_user))
    return max(waits)


def login_failure_record(*, username: str, ip: str) -> None:
    _record_failure(_ip_key(ip))
    if username.strip():
        _record_failure(_username_key(username))


def login_success_record(*, username: str) -> None:
    cache.delete_many([_username_key(username), f"{_username_key(username)}:reset"])


class RateLimitedLoginView(auth_views.LoginView):
    """Django's login view with failed attempts limited per username and per client address."""

    redirect_authenticated_user = True

    def _username(self) -> str:
        return str(self.request.POST.get("username", ""))

    def post(self, request, *args, **kwargs):
        wait = login_locked_for(username=self._username(), ip=client_ip(request))
        if wait > 0:
            minutes = max(1, math.ceil(wait / 60))
            # An unbound form: rendering a bound one would validate it, i.e. check the password.
            form = self.get_form_class()(request, initial={"username": self._username()})
            context = self.get_context_data(
                form=form,
                locked_message=f"Too many failed sign-ins; try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            )
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(math.ceil(wait))
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        login_failure_record(username=self._username(), ip=client_ip(self.request))
        return super().form_invalid(form)

    def form_valid(self, form):
        login_success_record(username=self._username())
        return super().form_valid(form)
