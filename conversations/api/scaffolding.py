"""Scaffolding API: personas, emotional arcs, training topics, prompt templates (+ versions,
preview), compatibility and the active vertical profile.

Scaffolding is installation data shared by every user, not owned rows, so these are plain
DRF viewsets: every logged-in user reads, only staff write (``IsStaffOrReadOnly``). Rows
are addressed by their stable ``key``.
"""

from __future__ import annotations

import random
from typing import Any

from django.db import transaction
from django.db.models import ProtectedError, QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from brightrun.errors import ApplicationError
from brightrun.filters import FilterSet
from conversations.api.scaffolding_serializers import (
    KEY_REGEX,
    CompatibilityQuerySerializer,
    CompatibilitySerializer,
    EmotionalArcSerializer,
    PersonaSerializer,
    PreviewRequestSerializer,
    PreviewSerializer,
    PromptTemplateCreateSerializer,
    PromptTemplateSerializer,
    PromptTemplateUpdateSerializer,
    PromptTemplateVersionCreateSerializer,
    PromptTemplateVersionSerializer,
    TrainingTopicSerializer,
    VerticalProfileSerializer,
)
from conversations.models import (
    EmotionalArc,
    Persona,
    PromptTemplate,
    Tier,
    TrainingTopic,
    VerticalProfile,
)
from conversations.services.scaffolding import (
    compatibility_check,
    generation_prompt_build,
    template_create,
    template_version_create,
    vertical_active,
)


class IsStaffOrReadOnly(permissions.BasePermission):
    """Safe methods for any authenticated user; anything else for active staff only."""

    message = "Only staff can change scaffolding."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        return request.method in permissions.SAFE_METHODS or bool(user.is_staff)


class _SingleObjectSchema(AutoSchema):
    """For collection URLs that answer one object (the active vertical, a compatibility result)."""

    def _is_list_view(self, serializer: Any = None) -> bool:
        return False


# --- Viewsets --------------------------------------------------------------------------------------


class _ScaffoldingViewSet(viewsets.ModelViewSet):
    """Read for every logged-in user, write for staff; addressed by key."""

    permission_classes = (IsStaffOrReadOnly,)
    lookup_field = "key"
    lookup_value_regex = KEY_REGEX
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
    ordering_fields = ("key", "name")
    ordering = ("key",)

    def perform_destroy(self, instance: Any) -> None:
        try:
            with transaction.atomic():
                instance.delete()
        except ProtectedError as exc:
            raise ApplicationError(
                f"'{instance.key}' is used by other rows (conversations or templates); deactivate it instead.",
                code="in_use",
            ) from exc


class PersonaFilter(FilterSet):
    class Meta:
        model = Persona
        fields = ("is_active",)


class PersonaViewSet(_ScaffoldingViewSet):
    queryset = Persona.objects.all()
    serializer_class = PersonaSerializer
    filterset_class = PersonaFilter


class EmotionalArcFilter(FilterSet):
    class Meta:
        model = EmotionalArc
        fields = ("tier", "is_active")


class EmotionalArcViewSet(_ScaffoldingViewSet):
    queryset = EmotionalArc.objects.all()
    serializer_class = EmotionalArcSerializer
    filterset_class = EmotionalArcFilter


class TrainingTopicFilter(FilterSet):
    class Meta:
        model = TrainingTopic
        fields = ("category", "complexity", "requires_specialist", "is_active")


class TrainingTopicViewSet(_ScaffoldingViewSet):
    queryset = TrainingTopic.objects.all()
    serializer_class = TrainingTopicSerializer
    filterset_class = TrainingTopicFilter


class PromptTemplateFilter(FilterSet):
    emotional_arc = filters.CharFilter(field_name="emotional_arc__key", help_text="Arc key.")

    class Meta:
        model = PromptTemplate
        fields = ("tier", "is_active", "emotional_arc")


def _sample_scaffolding(
    template: PromptTemplate, arc: EmotionalArc | None, persona: Persona | None, topic: TrainingTopic | None
) -> tuple[Persona, EmotionalArc, TrainingTopic]:
    """Fill what a preview did not name with deterministic samples (first active rows by key)."""
    arc = arc or template.emotional_arc or EmotionalArc.objects.active().order_by("key").first()
    persona = persona or Persona.objects.active().order_by("key").first()
    if arc is None or persona is None:
        raise ApplicationError("Seed or add personas and arcs before previewing.", code="no_scaffolding")
    if topic is None:
        topics = list(TrainingTopic.objects.active().order_by("key"))
        fitting = [t for t in topics if compatibility_check(persona=persona, arc=arc, topic=t).compatible]
        topic = (fitting or topics or [None])[0]
    if topic is None:
        raise ApplicationError("Seed or add training topics before previewing.", code="no_scaffolding")
    return persona, arc, topic


class PromptTemplateViewSet(_ScaffoldingViewSet):
    """Prompt templates. The body is versioned: ``POST …/versions/`` saves a new version."""

    queryset = PromptTemplate.objects.select_related(
        "emotional_arc", "current_version__template", "current_version__created_by"
    )
    filterset_class = PromptTemplateFilter

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action == "create":
            return PromptTemplateCreateSerializer
        if self.action in ("update", "partial_update"):
            return PromptTemplateUpdateSerializer
        return PromptTemplateSerializer

    @extend_schema(request=PromptTemplateCreateSerializer, responses={201: PromptTemplateSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = PromptTemplateCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        template = template_create(
            key=data["key"],
            name=data["name"],
            body=data["body"],
            emotional_arc=data.get("emotional_arc"),
            tier=data.get("tier", Tier.TEMPLATE),
            suitable_personas=data.get("suitable_personas"),
            suitable_topics=data.get("suitable_topics"),
            is_active=data.get("is_active", True),
            actor=request.user,
            change_note=data.get("change_note", ""),
        )
        return Response(PromptTemplateSerializer(template).data, status=201)

    @extend_schema(request=PromptTemplateUpdateSerializer, responses=PromptTemplateSerializer)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        partial = kwargs.pop("partial", False)
        template = self.get_object()
        payload = PromptTemplateUpdateSerializer(template, data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        payload.save()
        return Response(PromptTemplateSerializer(self.get_object()).data)

    @extend_schema(request=PromptTemplateUpdateSerializer, responses=PromptTemplateSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(
        methods=["GET"],
        request=None,
        responses=PromptTemplateVersionSerializer(many=True),
        summary="List the template's versions, newest first",
    )
    @extend_schema(
        methods=["POST"],
        request=PromptTemplateVersionCreateSerializer,
        responses={201: PromptTemplateVersionSerializer},
        summary="Save a new version (staff only)",
    )
    @action(detail=True, methods=["get", "post"], filterset_class=None, pagination_class=None)
    def versions(self, request: Request, key: str | None = None) -> Response:
        template = self.get_object()
        if request.method == "POST":
            payload = PromptTemplateVersionCreateSerializer(data=request.data)
            payload.is_valid(raise_exception=True)
            version = template_version_create(
                template=template,
                body=payload.validated_data["body"],
                actor=request.user,
                change_note=payload.validated_data["change_note"],
            )
            return Response(PromptTemplateVersionSerializer(version).data, status=201)
        versions = template.versions.select_related("template", "created_by").order_by("-number")
        return Response(PromptTemplateVersionSerializer(versions, many=True).data)

    @extend_schema(
        request=PreviewRequestSerializer,
        responses=PreviewSerializer,
        summary="Render the template for a persona, arc and topic (any logged-in user; nothing is saved)",
    )
    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAuthenticated], filterset_class=None)
    def preview(self, request: Request, key: str | None = None) -> Response:
        template = self.get_object()
        payload = PreviewRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        if "version" in data:
            version = template.versions.filter(number=data["version"]).first()
            if version is None:
                raise ApplicationError(
                    f"Template '{template.key}' has no version {data['version']}.", code="unknown_version"
                )
        elif template.current_version is None:
            raise ApplicationError(f"Template '{template.key}' has no version yet.", code="no_version")
        else:
            version = template.current_version
        persona, arc, topic = _sample_scaffolding(
            template, data.get("emotional_arc"), data.get("persona"), data.get("training_topic")
        )
        prompt = generation_prompt_build(
            persona=persona,
            arc=arc,
            topic=topic,
            tier=template.tier,
            template_version=version,
            target_turns=data.get("target_turns"),
            rng=random.Random(f"{template.key}:{persona.key}:{arc.key}:{topic.key}"),
        )
        compatibility = compatibility_check(persona=persona, arc=arc, topic=topic)
        return Response(
            {
                "system_prompt": prompt.system_prompt,
                "user_message": prompt.user_message,
                "target_turns": prompt.target_turns,
                "template_version": {"id": version.pk, "template": template.key, "number": version.number},
                "persona": persona.key,
                "emotional_arc": arc.key,
                "training_topic": topic.key,
                "compatibility": {
                    "score": compatibility.score,
                    "compatible": compatibility.compatible,
                    "warnings": compatibility.warnings,
                },
            }
        )


class CompatibilityViewSet(viewsets.GenericViewSet):
    """How well a persona, arc and topic fit together (SPEC §3.5): warnings, never a block."""

    permission_classes = (permissions.IsAuthenticated,)
    serializer_class = CompatibilitySerializer
    pagination_class = None
    filter_backends: tuple = ()
    schema = _SingleObjectSchema()

    @extend_schema(parameters=[CompatibilityQuerySerializer], responses=CompatibilitySerializer)
    def list(self, request: Request) -> Response:
        query = CompatibilityQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        result = compatibility_check(
            persona=query.validated_data["persona"],
            arc=query.validated_data["emotional_arc"],
            topic=query.validated_data["training_topic"],
        )
        return Response({"score": result.score, "compatible": result.compatible, "warnings": result.warnings})


class VerticalProfileViewSet(viewsets.GenericViewSet):
    """The installation's active vertical profile (read-only; edited in the admin)."""

    permission_classes = (permissions.IsAuthenticated,)
    serializer_class = VerticalProfileSerializer
    pagination_class = None
    filter_backends: tuple = ()
    schema = _SingleObjectSchema()

    def get_queryset(self) -> QuerySet:
        return VerticalProfile.objects.active()

    @extend_schema(responses=VerticalProfileSerializer)
    def list(self, request: Request) -> Response:
        try:
            vertical = vertical_active()
        except ApplicationError as exc:
            raise ApplicationError(exc.message, code=exc.code, status_code=404) from exc
        return Response(VerticalProfileSerializer(vertical).data)


def register(router) -> None:
    """Register the scaffolding viewsets on the API router."""
    router.register("personas", PersonaViewSet, basename="persona")
    router.register("emotional-arcs", EmotionalArcViewSet, basename="emotional-arc")
    router.register("training-topics", TrainingTopicViewSet, basename="training-topic")
    router.register("prompt-templates", PromptTemplateViewSet, basename="prompt-template")
    router.register("compatibility", CompatibilityViewSet, basename="compatibility")
    router.register("vertical-profile", VerticalProfileViewSet, basename="vertical-profile")
