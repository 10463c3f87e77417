"""Review API: actions on a conversation (mixed into ``ConversationViewSet``) and the review queue.

Scope: ``ConversationViewSet.get_queryset`` stays the owner's (it is final). The review actions
(review, turn edits, regeneration, history, bulk review) instead look the conversation up in
``Conversation.objects.unscoped_review_scope(user)`` — every conversation for a reviewer, the
user's own otherwise — through :meth:`ConversationReviewMixin.get_review_object`, so a reviewer
reaches another user's conversation there and nowhere else (its detail, batches, files stay 404).
Enrichment (``enrich``/``enriched``) is the owner's and uses the normal scope.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from brightrun.errors import ApplicationError
from conversations.models import Conversation, ReviewAction, Turn
from conversations.services import regenerate, review

# --- serializers --------------------------------------------------------------------------------


# Defined here rather than imported from conversations.api.generation: that module mixes
# ConversationReviewMixin into ConversationViewSet, so importing it back would be circular.


class QueueTurnSerializer(serializers.ModelSerializer):
    class Meta:
        model = Turn
        fields = (
            "index",
            "role",
            "content",
            "primary_emotion",
            "secondary_emotion",
            "intensity",
            "edited_at",
            "original_content",
        )
        read_only_fields = fields


class EnrichedUrlSerializer(serializers.Serializer):
    url = serializers.URLField()
    expires_in = serializers.IntegerField()


class ReviewInputSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=ReviewAction.Action.choices,
        help_text="approve | reject | needs_revision | retract | archive | resubmit (edit and regenerate have "
        "their own endpoints).",
    )
    reason_codes = serializers.ListField(
        child=serializers.CharField(max_length=40),
        required=False,
        default=list,
        help_text="Required for reject (one of: "
        + ", ".join(review.REJECT_REASONS)
        + ") and retract (also: "
        + ", ".join(review.OTHER_REASONS)
        + ").",
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    reviewer_score = serializers.FloatField(required=False, allow_null=True, default=None, min_value=1, max_value=5)


class ReviewActionSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ReviewAction
        fields = (
            "id",
            "conversation",
            "actor",
            "action",
            "from_status",
            "to_status",
            "reason_codes",
            "comment",
            "created_at",
        )
        read_only_fields = fields


class ReviewResultSerializer(ReviewActionSerializer):
    conversation_status = serializers.ChoiceField(
        choices=Conversation.Status.choices, source="conversation.status", read_only=True
    )

    class Meta(ReviewActionSerializer.Meta):
        fields = (*ReviewActionSerializer.Meta.fields, "conversation_status")
        read_only_fields = fields


class TurnEditSerializer(serializers.Serializer):
    content = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=50_000)


class DiffPartSerializer(serializers.Serializer):
    op = serializers.ChoiceField(choices=[("equal", "equal"), ("insert", "insert"), ("delete", "delete")])
    text = serializers.CharField()


class EditedTurnSerializer(serializers.ModelSerializer):
    edited_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    diff = serializers.SerializerMethodField()
    conversation_status = serializers.ChoiceField(
        choices=Conversation.Status.choices, source="conversation.status", read_only=True
    )

    class Meta:
        model = Turn
        fields = (
            "index",
            "role",
            "content",
            "original_content",
            "edited_by",
            "edited_at",
            "diff",
            "conversation_status",
        )
        read_only_fields = fields

    @extend_schema_field(DiffPartSerializer(many=True))
    def get_diff(self, obj: Turn) -> list[dict[str, str]]:
        return review.turn_diff(obj)


class RegenerateInputSerializer(serializers.Serializer):
    from_turn = serializers.IntegerField(help_text="An assistant turn number ≥ 2; turns before it are kept.")


class QueuedSerializer(serializers.Serializer):
    conversation = serializers.UUIDField()
    queued = serializers.BooleanField()


class BulkReviewInputSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=500)
    action = serializers.ChoiceField(choices=ReviewAction.Action.choices)
    reason_codes = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class BulkResultSerializer(serializers.Serializer):
    conversation_id = serializers.CharField()
    ok = serializers.BooleanField()
    code = serializers.CharField(allow_blank=True)
    message = serializers.CharField(allow_blank=True)


class ReviewQueueConversationSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    persona = serializers.SlugRelatedField(slug_field="key", read_only=True)
    emotional_arc = serializers.SlugRelatedField(slug_field="key", read_only=True)
    training_topic = serializers.SlugRelatedField(slug_field="key", read_only=True)

    class Meta:
        model = Conversation
        fields = (
            "id",
            "title",
            "owner",
            "status",
            "persona",
            "emotional_arc",
            "training_topic",
            "tier",
            "is_flagged",
            "flag_reasons",
            "structure_score",
            "judge_mean",
            "reviewer_score",
            "quality_score",
            "quality_tier",
            "duplicate_group",
            "turn_count",
            "exchange_count",
            "created_at",
        )
        read_only_fields = fields


class ReviewQueueDetailSerializer(ReviewQueueConversationSerializer):
    turns = QueueTurnSerializer(many=True, read_only=True)

    class Meta(ReviewQueueConversationSerializer.Meta):
        fields = (*ReviewQueueConversationSerializer.Meta.fields, "judge_scores", "validation_report", "turns")
        read_only_fields = fields


# --- the mixin ----------------------------------------------------------------------------------


class ConversationReviewMixin:
    """Review actions of ``ConversationViewSet`` (see the module docstring for the scope they use)."""

    def get_review_object(self) -> Conversation:
        """The conversation named in the URL, looked up in the requesting user's review scope; else 404."""
        pk = self.kwargs.get("pk")
        conversation = (
            Conversation.objects.unscoped_review_scope(self.request.user)
            .select_related("persona", "emotional_arc", "training_topic")
            .filter(pk=pk)
            .first()
        )
        if conversation is None:
            raise Http404
        return conversation

    @extend_schema(request=ReviewInputSerializer, responses={200: ReviewResultSerializer})
    @action(detail=True, methods=["post"], url_path="review", url_name="review")
    def review(self, request: Request, pk=None) -> Response:
        """Apply a review action (reviewers; the owner may resubmit a needs_revision conversation)."""
        conversation = self.get_review_object()
        data = _valid(ReviewInputSerializer, request)
        row = review.conversation_review(conversation=conversation, actor=request.user, **data)
        return Response(ReviewResultSerializer(row).data)

    @extend_schema(request=TurnEditSerializer, responses={200: EditedTurnSerializer})
    @action(detail=True, methods=["patch"], url_path=r"turns/(?P<index>[0-9]+)", url_name="turns")
    def edit_turn(self, request: Request, pk=None, index: str = "") -> Response:
        """Edit one turn's content (owner or reviewer); the generated text is kept as the original."""
        conversation = self.get_review_object()
        turn = conversation.turns.filter(index=int(index)).first()
        if turn is None:
            raise Http404
        data = _valid(TurnEditSerializer, request)
        turn = review.turn_edit(turn=turn, actor=request.user, content=data["content"])
        turn.conversation.refresh_from_db(fields=["status"])
        return Response(EditedTurnSerializer(turn).data)

    @extend_schema(request=RegenerateInputSerializer, responses={202: QueuedSerializer})
    @action(detail=True, methods=["post"], url_path="regenerate", url_name="regenerate")
    def regenerate(self, request: Request, pk=None) -> Response:
        """Regenerate from an assistant turn to the end of the arc (owner or reviewer); runs in the background."""
        conversation = self.get_review_object()
        data = _valid(RegenerateInputSerializer, request)
        regenerate.conversation_regenerate_request(
            conversation=conversation, actor=request.user, from_turn=data["from_turn"]
        )
        return Response({"conversation": conversation.pk, "queued": True}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: QueuedSerializer})
    @action(detail=True, methods=["post"], url_path="enrich", url_name="enrich")
    def enrich(self, request: Request, pk=None) -> Response:
        """Re-run the enrichment chain (validation, scores, v4 JSON) of the owner's conversation."""
        from conversations.services.enrichment import conversation_enrich_enqueue

        conversation = self.get_object()
        conversation_enrich_enqueue(conversation=conversation)
        return Response({"conversation": conversation.pk, "queued": True}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: EnrichedUrlSerializer})
    @action(detail=True, methods=["get"], url_path="enriched", url_name="enriched")
    def enriched(self, request: Request, pk=None) -> Response:
        """A short-lived signed URL to the enriched (brightrun-lora-v4) JSON of the owner's conversation."""
        from conversations.services.enrichment import enriched_download_url

        conversation = self.get_object()
        url = enriched_download_url(conversation=conversation)
        return Response({"url": url, "expires_in": settings.SIGNED_URL_TTL_SECONDS})

    @extend_schema(responses={200: ReviewActionSerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="review-history", url_name="review-history")
    def review_history(self, request: Request, pk=None) -> Response:
        """Every review action of the conversation, newest first."""
        conversation = self.get_review_object()
        rows = ReviewAction.objects.filter(conversation=conversation).select_related("actor").order_by("-created_at")
        return Response(ReviewActionSerializer(rows, many=True).data)

    @extend_schema(request=BulkReviewInputSerializer, responses={200: BulkResultSerializer(many=True)})
    @action(
        detail=False,
        methods=["post"],
        url_path="bulk-review",
        url_name="bulk-review",
        pagination_class=None,
        filter_backends=[],
    )
    def bulk_review(self, request: Request) -> Response:
        """Apply one review action to many conversations; each result says whether it applied and why not.

        Ids outside the user's review scope are reported as ``not_found`` (never 403), exactly like
        ids that do not exist.
        """
        data = _valid(BulkReviewInputSerializer, request)
        ids = list(dict.fromkeys(data["ids"]))
        found = Conversation.objects.unscoped_review_scope(request.user).in_bulk(ids)
        results = review.conversations_bulk_review(
            conversations=[found[pk] for pk in ids if pk in found],
            actor=request.user,
            action=data["action"],
            reason_codes=data["reason_codes"],
            comment=data["comment"],
        )
        by_id = {r.conversation_id: r for r in results}
        out = [
            by_id.get(str(pk)) or review.BulkResult(str(pk), False, "not_found", "No such conversation.") for pk in ids
        ]
        return Response(BulkResultSerializer(out, many=True).data)


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- the review queue ---------------------------------------------------------------------------


class ReviewQueueViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Pending conversations of every user, for reviewers: flagged first, then lowest quality, then oldest.

    Deliberately not an ``OwnedModelViewSet``: the queue spans owners (SPEC §2 lets reviewers read
    any conversation in the review queue), so the scope is ``unscoped_review_scope(user).review_queue()``
    and it is granted only to reviewers. Anyone else gets 403 ``not_a_reviewer`` on the list and
    404 on a single conversation (they must not learn it exists).
    """

    permission_classes = [IsAuthenticated]
    queryset = Conversation.objects.none()  # for the schema; rows come from get_queryset
    serializer_class = ReviewQueueConversationSerializer

    def get_queryset(self):
        user = self.request.user
        if getattr(self, "swagger_fake_view", False) or not review.is_reviewer(user):
            return Conversation.objects.none()
        rows = Conversation.objects.unscoped_review_scope(user).review_queue()
        rows = rows.select_related("owner", "persona", "emotional_arc", "training_topic")
        if self.action == "retrieve":
            rows = rows.prefetch_related("turns")
        return rows

    def get_serializer_class(self):
        return ReviewQueueDetailSerializer if self.action == "retrieve" else ReviewQueueConversationSerializer

    def filter_queryset(self, queryset):
        return queryset  # no ordering/filter backends: they would reorder the queue

    def list(self, request: Request, *args, **kwargs) -> Response:
        if not review.is_reviewer(request.user):
            raise ApplicationError("Only reviewers may see the review queue.", code="not_a_reviewer", status_code=403)
        return super().list(request, *args, **kwargs)


def register(router) -> None:
    router.register("review-queue", ReviewQueueViewSet, basename="review-queue")
