"""The Claude call: the official ``anthropic`` SDK, error classification and prices.

Short transient errors (408/409/429/5xx/529) are retried inside the SDK. A ``retry-after``
longer than ``ANTHROPIC_MAX_INLINE_RETRY_AFTER`` seconds is not waited for in the worker:
:class:`LongRetryAfterMiddleware` tells the SDK not to retry, and the caller reschedules the
item. Authentication and spend-limit errors are never retried.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anthropic
from anthropic._middleware import Middleware
from django.conf import settings

from brightrun.errors import ApplicationError
from conversations.models import ModelPrice

MILLION = Decimal(1_000_000)


class LongRetryAfterMiddleware(Middleware):
    """Stop the SDK from sleeping through a long ``retry-after``; the item is rescheduled instead."""

    def handle(self, request, call_next):
        response = call_next(request)
        wait = retry_after_seconds(response.http_response.headers)
        if wait is not None and wait > settings.ANTHROPIC_MAX_INLINE_RETRY_AFTER:
            response.http_response.headers["x-should-retry"] = "false"
        return response


def retry_after_seconds(headers: Any) -> float | None:
    """The server's requested wait, from ``retry-after-ms`` or ``retry-after`` (seconds)."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw:
            try:
                return float(raw) * scale
            except ValueError:
                continue
    return None


def claude_client(*, max_retries: int | None = None) -> anthropic.Anthropic:
    """A client for the configured key and base URL; a clear error if no key is set.

    Clients are reused per process and configuration (building one costs tens of
    milliseconds: TLS context, connection pool); the SDK client is safe to share by threads.
    """
    if not settings.ANTHROPIC_API_KEY:
        raise ApplicationError(
            "No Anthropic API key is configured. Set ANTHROPIC_API_KEY (or ANTHROPIC_API_KEY_FILE) in the "
            "environment of the web and worker processes, then restart them.",
            code="anthropic_key_missing",
        )
    return _client(
        settings.ANTHROPIC_API_KEY,
        settings.ANTHROPIC_BASE_URL,
        settings.ANTHROPIC_TIMEOUT_SECONDS,
        settings.ANTHROPIC_MAX_RETRIES if max_retries is None else max_retries,
    )


@functools.lru_cache(maxsize=8)
def _client(api_key: str, base_url: str | None, timeout: float, max_retries: int) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
        middleware=[LongRetryAfterMiddleware()],
    )


class ClaudeCallError(Exception):
    """A failed call, classified. ``kind`` decides what the caller does next."""

    RETRYABLE = ("rate_limited", "overloaded", "server_error", "timeout", "connection")
    PAUSES_BATCH = ("authentication", "spend_limit")

    def __init__(self, kind: str, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def log_status(self) -> str:
        if self.kind == "rate_limited":
            return "rate_limited"
        if self.kind == "timeout":
            return "timeout"
        return "failed"


def classify(exc: Exception) -> ClaudeCallError:
    """Map an SDK exception to a :class:`ClaudeCallError`."""
    if isinstance(exc, anthropic.APITimeoutError):
        return ClaudeCallError("timeout", "The Claude API did not answer in time.")
    if isinstance(exc, anthropic.APIConnectionError):
        return ClaudeCallError("connection", f"Could not reach the Claude API: {exc}")
    if not isinstance(exc, anthropic.APIStatusError):
        return ClaudeCallError("api_error", f"{type(exc).__name__}: {exc}")
    status = exc.status_code
    message = _error_message(exc)
    retry_after = retry_after_seconds(exc.response.headers)
    lowered = message.lower()
    if status == 401 or isinstance(exc, anthropic.AuthenticationError):
        return ClaudeCallError(
            "authentication",
            f"Anthropic rejected the API key (HTTP {status}: {message}). Set a valid ANTHROPIC_API_KEY, then resume.",
            status=status,
        )
    if "credit balance" in lowered or "spend limit" in lowered or "billing" in lowered:
        return ClaudeCallError(
            "spend_limit",
            f"The Anthropic account has no credit left or reached its spend limit ({message}). "
            "Add credit or raise the limit, then resume the batch.",
            status=status,
        )
    if status == 429:
        return ClaudeCallError(
            "rate_limited", f"Rate limited by the Claude API: {message}", status=status, retry_after=retry_after
        )
    if status == 529:
        return ClaudeCallError(
            "overloaded", f"The Claude API is overloaded: {message}", status=status, retry_after=retry_after
        )
    if status >= 500:
        return ClaudeCallError(
            "server_error", f"Claude API error {status}: {message}", status=status, retry_after=retry_after
        )
    return ClaudeCallError("api_error", f"Claude API error {status}: {message}", status=status)


def _error_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return str(error.get("message") or exc.message or exc)


@dataclass(frozen=True)
class ClaudeResponse:
    body: dict[str, Any]
    raw_text: str
    duration_ms: int
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def stop_reason(self) -> str:
        return str(self.body.get("stop_reason") or "")


def usage_of(body: dict[str, Any]) -> dict[str, int]:
    usage = body.get("usage") or {}
    return {
        "input_tokens": int(usage.get("input_tokens") or 0),
        "output_tokens": int(usage.get("output_tokens") or 0),
        "cache_write_tokens": int(usage.get("cache_creation_input_tokens") or 0),
        "cache_read_tokens": int(usage.get("cache_read_input_tokens") or 0),
    }


def message_params(
    *,
    model: str,
    shared_prefix: str,
    rendered_template: str,
    user_message: str,
    max_tokens: int,
    temperature: float,
    output_schema: dict[str, Any],
) -> dict[str, Any]:
    """Parameters of one generation request (live and Message Batches use the same).

    The shared, vertical-level prefix is marked cacheable; the per-combination template
    follows it. The structured-output schema enforces the conversation's shape.
    """
    return {
        "model": model,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "system": [
            {"type": "text", "text": shared_prefix, "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": rendered_template},
        ],
        "messages": [{"role": "user", "content": user_message}],
        "output_config": {"format": {"type": "json_schema", "schema": output_schema}},
    }


def messages_create(params: dict[str, Any], *, client: anthropic.Anthropic | None = None) -> ClaudeResponse:
    """One Messages API call; returns the raw body. Raises :class:`ClaudeCallError`."""
    client = client or claude_client()
    kwargs = dict(params)
    # This SDK version no longer types `temperature`; the API still takes it, so it goes in the body.
    extra_body = {"temperature": kwargs.pop("temperature")} if "temperature" in kwargs else None
    started = time.monotonic()
    try:
        raw = client.messages.with_raw_response.create(**kwargs, extra_body=extra_body)
        text = raw.http_response.text
    except anthropic.AnthropicError as exc:
        raise classify(exc) from exc
    duration_ms = int((time.monotonic() - started) * 1000)
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise ClaudeCallError("api_error", f"The Claude API returned a body that is not JSON: {exc}") from exc
    return ClaudeResponse(body=body, raw_text=text, duration_ms=duration_ms, usage=usage_of(body))


def price_for(model: str) -> ModelPrice | None:
    """The price row whose ``model`` is the longest prefix of ``model`` (ids carry dates)."""
    best = None
    for price in ModelPrice.objects.all():
        if model.startswith(price.model) and (best is None or len(price.model) > len(best.model)):
            best = price
    return best


def cost_usd(*, model: str, usage: dict[str, int], batch_api: bool = False, price: ModelPrice | None = None) -> Decimal:
    """Cost of one call from its token usage. An unknown model costs 0 and is visible as such."""
    price = price or price_for(model)
    if price is None:
        return Decimal("0")
    per_in = price.input_per_mtok / MILLION
    per_out = price.output_per_mtok / MILLION
    total = (
        usage.get("input_tokens", 0) * per_in
        + usage.get("output_tokens", 0) * per_out
        + usage.get("cache_write_tokens", 0) * per_in * price.cache_write_multiplier
        + usage.get("cache_read_tokens", 0) * per_in * price.cache_read_multiplier
    )
    if batch_api:
        total *= price.batch_multiplier
    return total.quantize(Decimal("0.000001"))
