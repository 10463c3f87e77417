"""A rate limiter shared by every worker: requests and output tokens per model per minute.

Sliding 60-second windows kept in the database (one locked row per model and kind), so the
limit holds across processes and machines, not per process. On PostgreSQL the row lock
serialises workers; on SQLite (single-machine development) the database lock does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from conversations.models import RateLimitWindow

WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int
    output_tokens_per_minute: int


def limits_for(model: str) -> Limits:
    return Limits(settings.ANTHROPIC_REQUESTS_PER_MINUTE, settings.ANTHROPIC_OUTPUT_TOKENS_PER_MINUTE)


def _locked_window(key: str) -> RateLimitWindow:
    try:
        with transaction.atomic():
            return RateLimitWindow.objects.select_for_update().get_or_create(key=key)[0]
    except IntegrityError:  # another worker created it first
        return RateLimitWindow.objects.select_for_update().get(key=key)


def _live(events: list, now: float) -> list:
    return [e for e in events if e[0] > now - WINDOW_SECONDS]


def rate_limit_acquire(*, model: str, now: float | None = None) -> float:
    """Take one request slot for ``model``. Returns 0 when granted, else seconds to wait.

    A request is granted when fewer than the request limit were made in the last 60 s and the
    output tokens recorded in the last 60 s are under the token limit.
    """
    limits = limits_for(model)
    if not limits.requests_per_minute and not limits.output_tokens_per_minute:
        return 0.0
    now = time.time() if now is None else now
    with transaction.atomic():
        requests = _locked_window(f"{model}:requests")
        tokens = _locked_window(f"{model}:output_tokens") if limits.output_tokens_per_minute else None
        live_requests = _live(requests.events, now)
        live_tokens = _live(tokens.events, now) if tokens else []
        waits = []
        if limits.requests_per_minute and len(live_requests) >= limits.requests_per_minute:
            oldest = live_requests[-limits.requests_per_minute][0]
            waits.append(oldest + WINDOW_SECONDS - now)
        if limits.output_tokens_per_minute:
            used = sum(e[1] for e in live_tokens)
            if used >= limits.output_tokens_per_minute:
                # Wait until enough of the window expires to get back under the limit.
                excess = used - limits.output_tokens_per_minute + 1
                for at, amount in live_tokens:
                    excess -= amount
                    if excess <= 0:
                        waits.append(at + WINDOW_SECONDS - now)
                        break
        if waits:
            requests.events = live_requests
            requests.save(update_fields=["events", "updated_at"])
            if tokens:
                tokens.events = live_tokens
                tokens.save(update_fields=["events", "updated_at"])
            return max(0.05, max(waits))
        live_requests.append([now, 1])
        requests.events = live_requests
        requests.save(update_fields=["events", "updated_at"])
        return 0.0


def rate_limit_record_output(*, model: str, output_tokens: int, now: float | None = None) -> None:
    """Count the output tokens of a finished call against ``model``'s token window."""
    if output_tokens <= 0 or not limits_for(model).output_tokens_per_minute:
        return
    now = time.time() if now is None else now
    with transaction.atomic():
        window = _locked_window(f"{model}:output_tokens")
        events = _live(window.events, now)
        events.append([now, int(output_tokens)])
        window.events = events
        window.save(update_fields=["events", "updated_at"])
