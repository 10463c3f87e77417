"""Serializers of the generation API."""

from __future__ import annotations

from rest_framework import serializers

from conversations.models import BatchItem, Conversation, FailedGeneration, GenerationBatch, GenerationLog, Tier, Turn
from conversations.services import batches


class ItemInputSerializer(serializers.Serializer):
    persona = serializers.CharField(help_text="Persona key")
    emotional_arc = serializers.CharField(help_text="Emotional arc key")
    training_topic = serializers.CharField(help_text="Training topic key")
    tier = serializers.ChoiceField(choices=Tier.choices, required=False)
    template_version = serializers.IntegerField(required=False, allow_null=True)
    temperature = serializers.FloatField(required=False, allow_null=True)


class SelectionInputSerializer(serializers.Serializer):
    personas = serializers.ListField(child=serializers.CharField(), allow_empty=True)
    emotional_arcs = serializers.ListField(child=serializers.CharField(), allow_empty=True)
    training_topics = serializers.ListField(child=serializers.CharField(), allow_empty=True)
    repeat = serializers.IntegerField(required=False, default=1)
    tier = serializers.ChoiceField(choices=Tier.choices, required=False)
    temperature = serializers.FloatField(required=False, allow_null=True)


class BatchCreateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    mode = serializers.ChoiceField(choices=GenerationBatch.Mode.choices, default=GenerationBatch.Mode.LIVE)
    priority = serializers.ChoiceField(
        choices=GenerationBatch.Priority.choices, default=GenerationBatch.Priority.NORMAL
    )
    concurrency = serializers.IntegerField(default=3, min_value=1, max_value=10)
    error_policy = serializers.ChoiceField(
        choices=GenerationBatch.ErrorPolicy.choices, default=GenerationBatch.ErrorPolicy.CONTINUE
    )
    items = ItemInputSerializer(many=True, required=False)
    selection = SelectionInputSerializer(required=False)
    allow_incompatible = serializers.BooleanField(default=False)

    def validate(self, attrs):
        if ("items" in attrs) == ("selection" in attrs):
            raise serializers.ValidationError(
                {"non_field_errors": ["Give either items or selection."]}, code="items_or_selection"
            )
        return attrs

    def specs(self) -> tuple[list[batches.ItemSpec], int]:
        data = self.validated_data
        if "items" in data:
            return batches.item_specs_from_items(data["items"], allow_incompatible=data["allow_incompatible"]), 0
        sel = data["selection"]
        result = batches.item_specs_from_selection(
            personas=sel["personas"],
            emotional_arcs=sel["emotional_arcs"],
            training_topics=sel["training_topics"],
            repeat=sel.get("repeat", 1),
            tier=sel.get("tier"),
            temperature=sel.get("temperature"),
            allow_incompatible=data["allow_incompatible"],
        )
        return result.specs, result.skipped_incompatible


class GenerationBatchSerializer(serializers.ModelSerializer):
    progress_percent = serializers.FloatField(read_only=True)
    etr_seconds = serializers.SerializerMethodField()

    class Meta:
        model = GenerationBatch
        fields = (
            "id",
            "name",
            "status",
            "status_message",
            "mode",
            "priority",
            "concurrency",
            "error_policy",
            "model",
            "max_tokens",
            "total_items",
            "succeeded_items",
            "failed_items",
            "cancelled_items",
            "progress_percent",
            "etr_seconds",
            "estimated_cost_usd",
            "actual_cost_usd",
            "started_at",
            "finished_at",
            "created_at",
        )
        read_only_fields = fields

    def get_etr_seconds(self, obj) -> float | None:
        return batches.etr_seconds(obj)


class GenerationBatchCreatedSerializer(GenerationBatchSerializer):
    skipped_incompatible = serializers.IntegerField(read_only=True, default=0)

    class Meta(GenerationBatchSerializer.Meta):
        fields = (*GenerationBatchSerializer.Meta.fields, "skipped_incompatible")
        read_only_fields = fields


class EstimateSerializer(serializers.Serializer):
    total_items = serializers.IntegerField()
    estimated_cost_usd = serializers.CharField()
    estimated_seconds = serializers.IntegerField()
    basis = serializers.CharField()
    skipped_incompatible = serializers.IntegerField()


class BatchItemSerializer(serializers.ModelSerializer):
    persona = serializers.SlugRelatedField(slug_field="key", read_only=True)
    emotional_arc = serializers.SlugRelatedField(slug_field="key", read_only=True)
    training_topic = serializers.SlugRelatedField(slug_field="key", read_only=True)

    class Meta:
        model = BatchItem
        fields = (
            "id",
            "position",
            "persona",
            "emotional_arc",
            "training_topic",
            "tier",
            "template_version",
            "temperature",
            "status",
            "attempts",
            "error_code",
            "error_message",
            "conversation",
            "started_at",
            "finished_at",
        )
        read_only_fields = fields


class TurnSerializer(serializers.ModelSerializer):
    class Meta:
        model = Turn
        fields = ("index", "role", "content", "primary_emotion", "secondary_emotion", "intensity", "edited_at")
        read_only_fields = fields


class ConversationSerializer(serializers.ModelSerializer):
    persona = serializers.SlugRelatedField(slug_field="key", read_only=True)
    emotional_arc = serializers.SlugRelatedField(slug_field="key", read_only=True)
    training_topic = serializers.SlugRelatedField(slug_field="key", read_only=True)
    turns = TurnSerializer(many=True, read_only=True)

    class Meta:
        model = Conversation
        fields = (
            "id",
            "title",
            "status",
            "enrichment_status",
            "persona",
            "emotional_arc",
            "training_topic",
            "tier",
            "template_version",
            "conversation_metadata",
            "model",
            "temperature",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "turn_count",
            "exchange_count",
            "is_flagged",
            "flag_reasons",
            "created_at",
            "turns",
        )
        read_only_fields = fields


class ConversationSummarySerializer(ConversationSerializer):
    """A conversation without its turns: the list's rows (``turn_count`` and ``exchange_count`` say how long)."""

    class Meta(ConversationSerializer.Meta):
        fields = tuple(name for name in ConversationSerializer.Meta.fields if name != "turns")
        read_only_fields = fields


class GenerationLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = GenerationLog
        fields = (
            "id",
            "batch",
            "item",
            "conversation",
            "template_version",
            "purpose",
            "model",
            "is_batch_api",
            "request_summary",
            "stop_reason",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cost_usd",
            "duration_ms",
            "status",
            "error_code",
            "error_message",
            "attempt",
            "created_at",
        )
        read_only_fields = fields


class FailedGenerationSerializer(serializers.ModelSerializer):
    class Meta:
        model = FailedGeneration
        fields = (
            "id",
            "batch",
            "item",
            "failure_type",
            "message",
            "details",
            "model",
            "stop_reason",
            "input_tokens",
            "output_tokens",
            "max_tokens",
            "remaining_tokens_analysis",
            "scaffolding",
            "created_at",
        )
        read_only_fields = fields


class SignedUrlSerializer(serializers.Serializer):
    url = serializers.URLField()
    expires_in = serializers.IntegerField()
