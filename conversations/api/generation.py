"""API for generation batches, conversations, generation logs and failed generations."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from brightrun.api import OwnedModelViewSet
from brightrun.errors import ApplicationError
from brightrun.filters import FilterSet
from brightrun.storage import download_url
from conversations.api.generation_serializers import (
    BatchCreateSerializer,
    BatchItemSerializer,
    ConversationSerializer,
    ConversationSummarySerializer,
    EstimateSerializer,
    FailedGenerationSerializer,
    GenerationBatchCreatedSerializer,
    GenerationBatchSerializer,
    GenerationLogSerializer,
    SignedUrlSerializer,
    TurnSerializer,
)
from conversations.api.review import ConversationReviewMixin
from conversations.models import BatchItem, Conversation, FailedGeneration, GenerationBatch, GenerationLog, Turn
from conversations.services import batches
from conversations.services.records import failure_report, generation_log_stats, json_dumps

# --- viewsets ---------------------------------------------------------------------------


class GenerationBatchViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedModelViewSet):
    """Generation batches of the requesting user."""

    queryset = GenerationBatch.objects.all()
    serializer_class = GenerationBatchSerializer
    filterset_fields = ("status", "mode", "priority")
    ordering_fields = ("created_at", "priority_rank")

    @extend_schema(request=BatchCreateSerializer, responses={201: GenerationBatchCreatedSerializer})
    def create(self, request: Request) -> Response:
        payload = BatchCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        specs, skipped = payload.specs()
        data = payload.validated_data
        batch = batches.generation_batch_create(
            owner=request.user,
            specs=specs,
            name=data.get("name", ""),
            mode=data["mode"],
            priority=data["priority"],
            concurrency=data["concurrency"],
            error_policy=data["error_policy"],
        )
        batch.skipped_incompatible = skipped
        return Response(GenerationBatchCreatedSerializer(batch).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=BatchCreateSerializer, responses=EstimateSerializer)
    @action(detail=False, methods=["post"])
    def estimate(self, request: Request) -> Response:
        """Cost and time estimate of a batch before creating it (nothing is created)."""
        payload = BatchCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        specs, skipped = payload.specs()
        from django.conf import settings

        estimate = batches.generation_estimate(
            specs=specs,
            model=settings.ANTHROPIC_MODEL,
            mode=payload.validated_data["mode"],
            concurrency=payload.validated_data["concurrency"],
        )
        return Response({**estimate.as_dict(), "skipped_incompatible": skipped})

    def _act(self, verb) -> Response:
        batch = verb(batch=self.get_object(), actor=self.request.user)
        return Response(GenerationBatchSerializer(batch).data)

    @extend_schema(request=None, responses=GenerationBatchSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk=None) -> Response:
        return self._act(batches.generation_batch_cancel)

    @extend_schema(request=None, responses=GenerationBatchSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk=None) -> Response:
        return self._act(batches.generation_batch_pause)

    @extend_schema(request=None, responses=GenerationBatchSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk=None) -> Response:
        return self._act(batches.generation_batch_resume)

    @extend_schema(responses=BatchItemSerializer(many=True))
    @action(detail=True, methods=["get"])
    def items(self, request: Request, pk=None) -> Response:
        batch = self.get_object()
        rows = (
            BatchItem.objects.for_user(request.user)
            .filter(batch=batch)
            .select_related("persona", "emotional_arc", "training_topic")
            .order_by("position")
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(BatchItemSerializer(page, many=True).data)


class ConversationFilter(FilterSet):
    persona = filters.CharFilter(field_name="persona__key")
    emotional_arc = filters.CharFilter(field_name="emotional_arc__key")
    training_topic = filters.CharFilter(field_name="training_topic__key")

    class Meta:
        model = Conversation
        fields = ("status", "enrichment_status", "tier", "is_flagged")


INCLUDE_PARAMETER = OpenApiParameter(
    "include",
    str,
    enum=["turns"],
    description="`turns`: every conversation of the page with its turns (a page then weighs about 6× more).",
)


@extend_schema_view(list=extend_schema(parameters=[INCLUDE_PARAMETER]))
class ConversationViewSet(ConversationReviewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedModelViewSet):
    """Conversations of the requesting user. The detail has the turns; the list has them with ``?include=turns``."""

    queryset = Conversation.objects.all()
    serializer_class = ConversationSerializer
    filterset_class = ConversationFilter
    ordering_fields = ("created_at",)

    def _list_with_turns(self) -> bool:
        include = self.request.query_params.get("include")
        if include not in (None, "turns"):
            raise ApplicationError("include takes one value: turns.", code="invalid_include")
        return include == "turns"

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action == "list" and not self._list_with_turns():
            return ConversationSummarySerializer
        return super().get_serializer_class()

    def refine_queryset(self, queryset):
        if self.action == "retrieve" or (self.action == "list" and self._list_with_turns()):
            return conversation_read_queryset(queryset)
        if self.action == "list":
            return conversation_read_queryset(queryset, turns=False)
        return queryset  # the actions (enrich, enriched) need the row only, not its turns


#: Columns ``ConversationSerializer`` reads. Loading only these (and the scaffolding keys) leaves out the
#: system prompt, MinHash signature, judge rationales and validation report, which the API never shows and
#: which the ORM would decode for every row of a page (bench/RESULTS.md, "HTTP load").
#: A serializer field that reads another column would load it row by row: tests/conversations/test_query_counts.py
#: fails then.
CONVERSATION_READ_FIELDS = (
    *(name for name in ConversationSerializer.Meta.fields if name != "turns"),
    "owner",
    "persona__key",
    "emotional_arc__key",
    "training_topic__key",
)
TURN_READ_FIELDS = ("id", "conversation", *TurnSerializer.Meta.fields)


def conversation_read_queryset(queryset: QuerySet[Conversation], *, turns: bool = True) -> QuerySet[Conversation]:
    """``queryset`` (already scoped) with what ``ConversationSerializer`` needs in three queries, nothing more
    (two without ``turns``, for the summary)."""
    rows = queryset.select_related("persona", "emotional_arc", "training_topic").only(*CONVERSATION_READ_FIELDS)
    if not turns:
        return rows
    return rows.prefetch_related(Prefetch("turns", queryset=Turn.objects.only(*TURN_READ_FIELDS)))


class GenerationLogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedModelViewSet):
    """Every Claude call made for the requesting user."""

    queryset = GenerationLog.objects.all()
    serializer_class = GenerationLogSerializer
    filterset_fields = ("status", "model", "batch", "purpose")
    ordering_fields = ("created_at", "duration_ms", "cost_usd")

    @extend_schema(
        parameters=[
            OpenApiParameter("start", str, description="ISO date/time (default: 30 days ago)"),
            OpenApiParameter("end", str, description="ISO date/time (default: now)"),
        ],
        responses=inline_serializer(
            "GenerationStats",
            fields={
                "calls": serializers.IntegerField(),
                "success_rate": serializers.FloatField(allow_null=True),
                "cost_usd": serializers.CharField(),
                "latency_ms": serializers.DictField(),
                "cache": serializers.DictField(),
                "by_model": serializers.DictField(),
                "by_status": serializers.DictField(),
                "by_template_version": serializers.DictField(),
                "start": serializers.CharField(),
                "end": serializers.CharField(),
            },
        ),
    )
    @action(detail=False, methods=["get"])
    def stats(self, request: Request) -> Response:
        """Cost, tokens, success rate and latency percentiles for a date range."""
        end = _parse_when(request.query_params.get("end"), "end") or timezone.now()
        start = _parse_when(request.query_params.get("start"), "start") or end - timedelta(days=30)
        if start >= end:
            raise ApplicationError("start must be before end.", code="invalid_range")
        return Response(generation_log_stats(user=request.user, start=start, end=end))


def _parse_when(raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ApplicationError(f"{name} must be an ISO date or date-time.", code="invalid_date") from exc
    if value.tzinfo is None:
        value = timezone.make_aware(value if raw[10:11] == "T" else datetime.combine(value.date(), time.min))
    return value


class FailedGenerationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedModelViewSet):
    """Responses that were rejected, with what was wrong."""

    queryset = FailedGeneration.objects.all()
    serializer_class = FailedGenerationSerializer
    filterset_fields = ("failure_type", "batch")
    ordering_fields = ("created_at",)

    @extend_schema(
        responses={
            (200, "application/json"): inline_serializer(
                "FailureReport", fields={"id": serializers.UUIDField(), "failure_type": serializers.CharField()}
            )
        }
    )
    @action(detail=True, methods=["get"])
    def report(self, request: Request, pk=None) -> HttpResponse:
        """The error report as a downloadable JSON file."""
        failure = self.get_object()
        response = HttpResponse(json_dumps(failure_report(failure)), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="failed-generation-{failure.pk}.json"'
        return response

    @extend_schema(responses=SignedUrlSerializer)
    @action(detail=True, methods=["get"], url_path="raw")
    def raw(self, request: Request, pk=None) -> Response:
        """A short-lived signed URL to the raw Claude response."""
        failure = self.get_object()
        if not failure.raw_response_key:
            raise ApplicationError(
                "No raw response was stored for this failure.", code="no_raw_response", status_code=404
            )
        from django.conf import settings

        url = download_url(owner_id=failure.owner_id, key=failure.raw_response_key, filename=f"raw-{failure.pk}.json")
        return Response({"url": url, "expires_in": settings.SIGNED_URL_TTL_SECONDS})


def register(router) -> None:
    router.register("generation-batches", GenerationBatchViewSet, basename="generation-batch")
    router.register("conversations", ConversationViewSet, basename="conversation")
    router.register("generation-logs", GenerationLogViewSet, basename="generation-log")
    router.register("failed-generations", FailedGenerationViewSet, basename="failed-generation")
