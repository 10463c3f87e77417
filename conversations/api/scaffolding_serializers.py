"""Serializers of the scaffolding API."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.models import (
    EmotionalArc,
    Persona,
    PromptTemplate,
    PromptTemplateVersion,
    TrainingTopic,
    VerticalProfile,
)

KEY_REGEX = r"[-a-zA-Z0-9_]+"
KEY_PATTERN = re.compile(KEY_REGEX)


class _KeyListField(serializers.ListField):
    """A list of keys of ``model`` rows; unknown keys fail validation."""

    def __init__(self, model: type, **kwargs: Any) -> None:
        self.model = model
        kwargs.setdefault("child", serializers.SlugField(max_length=100))
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        keys = list(dict.fromkeys(super().to_internal_value(data)))
        known = set(self.model.objects.filter(key__in=keys).values_list("key", flat=True))
        unknown = [key for key in keys if key not in known]
        if unknown:
            raise serializers.ValidationError(f"Unknown key(s): {', '.join(unknown)}.", code="does_not_exist")
        return keys


class KeyRelatedField(serializers.SlugRelatedField):
    """A row referenced by its ``key``. Input that cannot be a key (e.g. a NUL byte, which
    PostgreSQL refuses) fails as "does not exist" without reaching the database."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="key", **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or not KEY_PATTERN.fullmatch(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=str(data)[:100])
        return super().to_internal_value(data)


@extend_schema_field(
    {"type": "string", "enum": list(EmotionalArc.ArcTier.values), "description": "An arc's tier."},
    component_name="ArcTierEnum",
)
class ArcTierField(serializers.ChoiceField):
    """An arc's tier (``template`` | ``edge_case``), a narrower set than a template's ``Tier``;
    its own schema component so the two sets do not collide under the field name "tier"."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=EmotionalArc.ArcTier.choices, **kwargs)


class _StableKeyMixin:
    """Keys are stable identifiers (used in training files): set on create, never changed."""

    def validate_key(self, value: str) -> str:
        instance = getattr(self, "instance", None)
        if instance is not None and value != instance.key:
            raise serializers.ValidationError("The key cannot be changed.", code="key_immutable")
        return value


class PersonaSerializer(_StableKeyMixin, serializers.ModelSerializer):
    typical_questions = serializers.ListField(child=serializers.CharField(max_length=500), required=False)
    common_concerns = serializers.ListField(child=serializers.CharField(max_length=500), required=False)
    language_patterns = serializers.ListField(child=serializers.CharField(max_length=500), required=False)

    class Meta:
        model = Persona
        fields = (
            "key", "name", "archetype", "age", "gender", "family_status", "location", "occupation", "income_range",
            "financial_situation", "communication_style", "emotional_baseline", "typical_questions",
            "common_concerns", "language_patterns", "is_active", "usage_count",
        )  # fmt: skip
        read_only_fields = ("usage_count",)


class EmotionalArcSerializer(_StableKeyMixin, serializers.ModelSerializer):
    tier = ArcTierField(required=False)
    key_principles = serializers.ListField(child=serializers.CharField(max_length=500), required=False)
    characteristic_phrases = serializers.ListField(child=serializers.CharField(max_length=500), required=False)
    response_techniques = serializers.ListField(child=serializers.CharField(max_length=500), required=False)
    avoid_tactics = serializers.ListField(child=serializers.CharField(max_length=500), required=False)
    suitable_personas = _KeyListField(Persona, help_text="Persona keys; empty = all.")
    suitable_topics = _KeyListField(TrainingTopic, help_text="Topic keys; empty = all.")

    class Meta:
        model = EmotionalArc
        fields = (
            "key", "name", "starting_emotion", "ending_emotion", "start_intensity_min", "start_intensity_max",
            "end_intensity_min", "end_intensity_max", "strategy", "key_principles", "characteristic_phrases",
            "response_techniques", "avoid_tactics", "typical_turns_min", "typical_turns_max", "complexity", "tier",
            "suitable_personas", "suitable_topics", "is_active",
        )  # fmt: skip

    def validate(self, attrs: dict) -> dict:
        def value(name: str) -> Any:
            return attrs.get(name, getattr(self.instance, name, None))

        errors = {}
        for low, high in [
            ("start_intensity_min", "start_intensity_max"),
            ("end_intensity_min", "end_intensity_max"),
            ("typical_turns_min", "typical_turns_max"),
        ]:
            if value(low) is not None and value(high) is not None and value(low) > value(high):
                errors[high] = serializers.ErrorDetail(f"Must be at least {low}.", code="invalid_range")
        if value("typical_turns_min") is not None and value("typical_turns_min") < 1:
            errors["typical_turns_min"] = serializers.ErrorDetail("Must be at least 1.", code="min_value")
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class TrainingTopicSerializer(_StableKeyMixin, serializers.ModelSerializer):
    example_questions = serializers.ListField(child=serializers.CharField(max_length=500), required=False)
    key_concepts = serializers.ListField(child=serializers.CharField(max_length=500), required=False)
    suitable_personas = _KeyListField(Persona, help_text="Persona keys; empty = all.")
    suitable_arcs = _KeyListField(EmotionalArc, help_text="Arc keys; empty = all.")

    class Meta:
        model = TrainingTopic
        fields = (
            "key", "name", "category", "description", "complexity", "example_questions", "key_concepts",
            "suitable_personas", "suitable_arcs", "requires_specialist", "is_active",
        )  # fmt: skip


class CommunicationStyleSerializer(serializers.Serializer):
    tone = serializers.CharField()
    techniques = serializers.ListField(child=serializers.CharField())
    avoid = serializers.ListField(child=serializers.CharField())


class VerticalProfileSerializer(serializers.ModelSerializer):
    core_philosophy = serializers.ListField(child=serializers.CharField(), read_only=True)
    communication_style = CommunicationStyleSerializer(read_only=True)

    class Meta:
        model = VerticalProfile
        fields = (
            "key", "name", "business", "expertise", "years_experience", "core_philosophy", "communication_style",
            "inference_system_prompt", "is_active", "updated_at",
        )  # fmt: skip
        read_only_fields = fields


class PromptTemplateVersionSerializer(serializers.ModelSerializer):
    template = serializers.SlugRelatedField(slug_field="key", read_only=True)
    variables = serializers.ListField(child=serializers.CharField(), read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = PromptTemplateVersion
        fields = ("id", "template", "number", "body", "variables", "change_note", "created_by", "created_at")
        read_only_fields = fields


class PromptTemplateVersionCreateSerializer(serializers.Serializer):
    body = serializers.CharField(trim_whitespace=False)
    change_note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class PromptTemplateSerializer(serializers.ModelSerializer):
    emotional_arc = serializers.SlugRelatedField(slug_field="key", read_only=True, help_text="Null = any arc.")
    suitable_personas = serializers.ListField(child=serializers.CharField(), read_only=True)
    suitable_topics = serializers.ListField(child=serializers.CharField(), read_only=True)
    current_version = PromptTemplateVersionSerializer(read_only=True)

    class Meta:
        model = PromptTemplate
        fields = (
            "key", "name", "emotional_arc", "tier", "suitable_personas", "suitable_topics", "is_active",
            "current_version", "created_at", "updated_at",
        )  # fmt: skip
        read_only_fields = fields


class PromptTemplateUpdateSerializer(_StableKeyMixin, serializers.ModelSerializer):
    """Template settings; the body changes only through ``POST …/versions/``."""

    emotional_arc = KeyRelatedField(
        queryset=EmotionalArc.objects.all(), allow_null=True, required=False, help_text="Arc key; null = any arc."
    )
    suitable_personas = _KeyListField(Persona, help_text="Persona keys; empty = all.")
    suitable_topics = _KeyListField(TrainingTopic, help_text="Topic keys; empty = all.")

    class Meta:
        model = PromptTemplate
        fields = ("key", "name", "emotional_arc", "tier", "suitable_personas", "suitable_topics", "is_active")


class PromptTemplateCreateSerializer(PromptTemplateUpdateSerializer):
    body = serializers.CharField(trim_whitespace=False, help_text="Text of version 1.")
    change_note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")

    class Meta(PromptTemplateUpdateSerializer.Meta):
        fields = (*PromptTemplateUpdateSerializer.Meta.fields, "body", "change_note")


class PreviewRequestSerializer(serializers.Serializer):
    persona = KeyRelatedField(queryset=Persona.objects.all(), required=False, help_text="Default: a sample persona.")
    emotional_arc = KeyRelatedField(
        queryset=EmotionalArc.objects.all(),
        required=False,
        help_text="Default: the template's arc (or a sample arc for any-arc templates).",
    )
    training_topic = KeyRelatedField(
        queryset=TrainingTopic.objects.all(),
        required=False,
        help_text="Default: a sample topic compatible with the arc.",
    )
    version = serializers.IntegerField(
        min_value=1, max_value=2_147_483_647, required=False, help_text="Version number; default: current."
    )
    target_turns = serializers.IntegerField(
        min_value=1, max_value=100, required=False, help_text="Default: chosen in the arc's range."
    )


class CompatibilitySerializer(serializers.Serializer):
    score = serializers.FloatField()
    compatible = serializers.BooleanField()
    warnings = serializers.ListField(child=serializers.CharField())


class PreviewVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    template = serializers.CharField()
    number = serializers.IntegerField()


class PreviewSerializer(serializers.Serializer):
    system_prompt = serializers.CharField()
    user_message = serializers.CharField()
    target_turns = serializers.IntegerField()
    template_version = PreviewVersionSerializer()
    persona = serializers.CharField()
    emotional_arc = serializers.CharField()
    training_topic = serializers.CharField()
    compatibility = CompatibilitySerializer()


class CompatibilityQuerySerializer(serializers.Serializer):
    persona = KeyRelatedField(queryset=Persona.objects.all())
    emotional_arc = KeyRelatedField(queryset=EmotionalArc.objects.all())
    training_topic = KeyRelatedField(queryset=TrainingTopic.objects.all())
