"""Bench-only URLconf of ``bench/load_http.py``: the product's URLs plus a plain Django JSON view.

``plain_conversation_list`` answers what ``GET /api/v1/conversations/`` answers (same token check, same
scoped queryset, same fields, same page envelope) with no DRF in the path, so the benchmark can put a number
on DRF's cost per request. ``QueryCountMiddleware`` reports each request's database queries in the
``X-Bench-Queries`` header. Never part of the product: only ``bench.load_settings`` points here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from brightrun.services import api_token_authenticate
from brightrun.urls import urlpatterns as product_urlpatterns
from conversations.api.generation import conversation_read_queryset
from conversations.models import Conversation

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
TURN_FIELDS = ("index", "role", "content", "primary_emotion", "secondary_emotion", "intensity")


class QueryCountMiddleware:
    """Counts the database queries of each request (middleware included) into ``X-Bench-Queries``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        count = 0

        def counted(execute, sql, params, many, context):
            nonlocal count
            count += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counted):
            response = self.get_response(request)
        response["X-Bench-Queries"] = str(count)
        return response


def _iso(value: datetime | None) -> str | None:
    """DRF's DateTimeField output: ISO 8601, UTC as ``Z``."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _int_param(request: HttpRequest, name: str, default: int, maximum: int | None = None) -> int:
    try:
        value = int(request.GET.get(name, default))
    except ValueError:
        value = default
    value = max(value, 0)
    return min(value, maximum) if maximum is not None else value


def _page_url(request: HttpRequest, limit: int, offset: int | None) -> str | None:
    if offset is None:
        return None
    query = {"limit": limit} if offset == 0 else {"limit": limit, "offset": offset}
    return request.build_absolute_uri(request.path) + "?" + urlencode(query)


def plain_conversation_list(request: HttpRequest) -> JsonResponse:
    """The conversation list as a plain Django view over the API's queryset (token auth only)."""
    header = request.headers.get("Authorization", "").split()
    token = None
    if len(header) == 2 and header[0].lower() in ("token", "bearer"):
        token = api_token_authenticate(key=header[1])
    if token is None:
        return JsonResponse(
            {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"}, status=401
        )
    limit = _int_param(request, "limit", DEFAULT_LIMIT, MAX_LIMIT) or DEFAULT_LIMIT
    offset = _int_param(request, "offset", 0)
    with_turns = request.GET.get("include") == "turns"
    rows = conversation_read_queryset(Conversation.objects.for_user(token.owner), turns=with_turns)
    count = rows.count()
    page = list(rows[offset : offset + limit]) if count and offset < count else []
    results: list[dict[str, Any]] = [
        {
            "id": str(c.pk),
            "title": c.title,
            "status": c.status,
            "enrichment_status": c.enrichment_status,
            "persona": c.persona.key,
            "emotional_arc": c.emotional_arc.key,
            "training_topic": c.training_topic.key,
            "tier": c.tier,
            "template_version": c.template_version_id,
            "conversation_metadata": c.conversation_metadata,
            "model": c.model,
            "temperature": c.temperature,
            "input_tokens": c.input_tokens,
            "output_tokens": c.output_tokens,
            "cost_usd": str(c.cost_usd),
            "turn_count": c.turn_count,
            "exchange_count": c.exchange_count,
            "is_flagged": c.is_flagged,
            "flag_reasons": c.flag_reasons,
            "created_at": _iso(c.created_at),
        }
        for c in page
    ]
    if with_turns:
        for row, c in zip(results, page, strict=True):
            row["turns"] = [
                {**{name: getattr(t, name) for name in TURN_FIELDS}, "edited_at": _iso(t.edited_at)}
                for t in c.turns.all()
            ]
    body = {
        "count": count,
        "next": _page_url(request, limit, offset + limit if offset + limit < count else None),
        "previous": _page_url(request, limit, max(offset - limit, 0) if offset > 0 else None),
        "results": results,
    }
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False, "separators": (",", ":")})


urlpatterns = [
    path("api/bench/plain-conversations/", plain_conversation_list, name="bench-plain-conversations"),
    *product_urlpatterns,
]
