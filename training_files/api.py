"""API of training files (SPEC §13.1): create, list, members, versions, download, retry."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from brightrun.api import OwnedModelViewSet
from brightrun.errors import ApplicationError
from training_files import services
from training_files.models import Export, TrainingFile, TrainingFileVersion
from training_files.services.build import FORMATS

MAX_IDS = 10_000

# --- serializers --------------------------------------------------------------------------


_FILES_SCHEMA = {
    "type": "object",
    "description": "Per format (chat-jsonl, v4-jsonl, v4-json) of a ready version.",
    "additionalProperties": {
        "type": "object",
        "properties": {"filename": {"type": "string"}, "size": {"type": "integer"}, "sha256": {"type": "string"}},
        "required": ["filename", "size", "sha256"],
    },
}


class TrainingFileVersionSerializer(serializers.ModelSerializer):
    files = serializers.SerializerMethodField(help_text="Per format (chat-jsonl, v4-jsonl, v4-json): size, SHA-256.")

    class Meta:
        model = TrainingFileVersion
        fields = (
            "id",
            "number",
            "status",
            "conversation_count",
            "training_pair_count",
            "quality_summary",
            "scaffolding_distribution",
            "files",
            "error",
            "built_at",
            "created_at",
        )
        read_only_fields = fields

    @extend_schema_field(_FILES_SCHEMA)
    def get_files(self, obj: TrainingFileVersion) -> dict[str, dict]:
        return {
            fmt: {"filename": entry["filename"], "size": entry["size"], "sha256": entry["sha256"]}
            for fmt, entry in (obj.files or {}).items()
        }


class TrainingFileSerializer(serializers.ModelSerializer):
    current_version = TrainingFileVersionSerializer(read_only=True, allow_null=True)

    class Meta:
        model = TrainingFile
        fields = ("id", "name", "description", "current_version", "created_at", "updated_at")
        read_only_fields = fields


class RejectedSerializer(serializers.Serializer):
    conversation_id = serializers.CharField()
    reasons = serializers.ListField(
        child=serializers.CharField(),
        help_text="not_found | not_approved | not_enriched | truncation_suspected | duplicate_group | "
        "already_member | not_member",
    )


class TrainingFileCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    conversations = serializers.ListField(child=serializers.UUIDField(), allow_empty=False, max_length=MAX_IDS)
    allow_duplicates = serializers.BooleanField(required=False, default=False)


class TrainingFileCreatedSerializer(TrainingFileSerializer):
    version = TrainingFileVersionSerializer(read_only=True)
    rejected = RejectedSerializer(many=True, read_only=True)

    class Meta(TrainingFileSerializer.Meta):
        fields = (*TrainingFileSerializer.Meta.fields, "version", "rejected")
        read_only_fields = fields


class MembersUpdateSerializer(serializers.Serializer):
    add = serializers.ListField(child=serializers.UUIDField(), required=False, default=list, max_length=MAX_IDS)
    remove = serializers.ListField(child=serializers.UUIDField(), required=False, default=list, max_length=MAX_IDS)
    allow_duplicates = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs):
        if not attrs["add"] and not attrs["remove"]:
            raise serializers.ValidationError("Give conversations to add or remove.", code="no_changes")
        return attrs


class MembersUpdatedSerializer(serializers.Serializer):
    version = TrainingFileVersionSerializer()
    rejected = RejectedSerializer(many=True)


class DownloadSerializer(serializers.Serializer):
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    version = serializers.IntegerField()
    format = serializers.CharField()
    filename = serializers.CharField()


# --- viewset ------------------------------------------------------------------------------


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """JSON only; ``?format=`` names a training-file format here, not a renderer (DRF's URL override)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type


class TrainingFileViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedModelViewSet):
    """Training files of the requesting user, their versions and signed downloads."""

    queryset = TrainingFile.objects.all()
    serializer_class = TrainingFileSerializer
    content_negotiation_class = JsonOnlyNegotiation
    ordering_fields = ("created_at", "name")

    def refine_queryset(self, queryset):
        return queryset.select_related("current_version").defer("current_version__member_ids")

    @extend_schema(request=TrainingFileCreateSerializer, responses={201: TrainingFileCreatedSerializer})
    def create(self, request: Request) -> Response:
        """Create a file from conversations; version 1 builds in the background. Rejections carry reasons."""
        payload = TrainingFileCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        training_file, gate = services.training_file_create(
            owner=request.user,
            name=data["name"],
            description=data["description"],
            conversation_ids=data["conversations"],
            allow_duplicates=data["allow_duplicates"],
        )
        training_file.version = training_file.versions.order_by("-number").first()
        training_file.rejected = gate.rejected
        return Response(TrainingFileCreatedSerializer(training_file).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MembersUpdateSerializer, responses={201: MembersUpdatedSerializer})
    @action(detail=True, methods=["post"])
    def members(self, request: Request, pk=None) -> Response:
        """Add/remove conversations: a new version (building); older versions stay downloadable."""
        training_file = self.get_object()
        payload = MembersUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        version, gate = services.training_file_members_update(
            training_file=training_file,
            actor=request.user,
            add=data["add"],
            remove=data["remove"],
            allow_duplicates=data["allow_duplicates"],
        )
        body = {"version": TrainingFileVersionSerializer(version).data, "rejected": gate.rejected}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(responses=TrainingFileVersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk=None) -> Response:
        """Every version of the file, newest first."""
        training_file = self.get_object()
        rows = (
            TrainingFileVersion.objects.for_user(request.user)
            .filter(training_file=training_file)
            .defer("member_ids")
            .order_by("-number")
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(TrainingFileVersionSerializer(page, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("format", OpenApiTypes.STR, enum=list(FORMATS), required=True),
            OpenApiParameter("version", OpenApiTypes.INT, description="Version number (default: the current one)"),
        ],
        responses=DownloadSerializer,
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk=None) -> Response:
        """A short-lived signed URL to one format of a ready version, with its SHA-256 and size."""
        training_file = self.get_object()
        raw_version = request.query_params.get("version")
        number = None
        if raw_version not in (None, ""):
            try:
                number = int(raw_version)
            except ValueError as exc:
                raise ApplicationError("version must be a version number.", code="invalid_version") from exc
        result = services.training_file_download(
            training_file=training_file, fmt=request.query_params.get("format", ""), version_number=number
        )
        return Response(DownloadSerializer(result).data)

    @extend_schema(request=None, responses={202: TrainingFileVersionSerializer})
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]+)/retry", url_name="version-retry")
    def retry(self, request: Request, pk=None, number=None) -> Response:
        """Rebuild a failed version."""
        training_file = self.get_object()
        version = services.training_file_version_get(training_file=training_file, number=number)
        version = services.training_file_build_retry(version=version, actor=request.user)
        return Response(TrainingFileVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)


# --- exports (SPEC §8) --------------------------------------------------------------------


class ExportSerializer(serializers.ModelSerializer):
    class Meta:
        model = Export
        fields = (
            "id",
            "scope",
            "format",
            "conversation_ids",
            "filters",
            "options",
            "status",
            "conversation_count",
            "row_count",
            "size",
            "sha256",
            "filename",
            "expires_at",
            "download_count",
            "error",
            "created_at",
            "completed_at",
        )
        read_only_fields = fields


class ExportFiltersSerializer(serializers.Serializer):
    status = serializers.CharField(required=False)
    persona = serializers.CharField(required=False, help_text="Persona key")
    emotional_arc = serializers.CharField(required=False, help_text="Emotional arc key")
    training_topic = serializers.CharField(required=False, help_text="Training topic key")
    quality_tier = serializers.CharField(required=False)


class ExportOptionsSerializer(serializers.Serializer):
    include_metadata = serializers.BooleanField(required=False, default=False)
    include_quality = serializers.BooleanField(required=False, default=False)
    include_timestamps = serializers.BooleanField(required=False, default=False)
    include_review_history = serializers.BooleanField(required=False, default=False)


class ExportCreateSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=Export.Scope.choices)
    format = serializers.ChoiceField(choices=Export.Format.choices)
    conversations = serializers.ListField(
        child=serializers.UUIDField(), required=False, default=list, max_length=MAX_IDS, help_text="For scope selected."
    )
    filters = ExportFiltersSerializer(required=False, default=dict, help_text="For scope filter.")
    options = ExportOptionsSerializer(required=False, default=dict)


class ExportDownloadSerializer(serializers.Serializer):
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()


class ExportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedModelViewSet):
    """Conversation exports of the requesting user: create (rendered by a worker), list, signed download."""

    queryset = Export.objects.all()
    serializer_class = ExportSerializer
    content_negotiation_class = JsonOnlyNegotiation
    ordering_fields = ("created_at",)

    @extend_schema(responses=ExportSerializer(many=True))
    def list(self, request: Request, *args, **kwargs) -> Response:
        """The user's exports, newest first."""
        return super().list(request, *args, **kwargs)

    @extend_schema(responses=ExportSerializer)
    def retrieve(self, request: Request, *args, **kwargs) -> Response:
        """One export with its status, counts, size and expiry."""
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(request=ExportCreateSerializer, responses={201: ExportSerializer})
    def create(self, request: Request) -> Response:
        """Queue an export; a worker renders it. Codes: empty_selection, not_found, unknown_format, …"""
        payload = ExportCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        export = services.export_create(
            owner=request.user,
            scope=data["scope"],
            fmt=data["format"],
            conversation_ids=[str(pk) for pk in data["conversations"]],
            filters=dict(data["filters"]),
            options=dict(data["options"]),
        )
        return Response(ExportSerializer(export).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ExportDownloadSerializer)
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk=None) -> Response:
        """A short-lived signed URL to a completed export (export_not_ready / export_expired otherwise)."""
        result = services.export_download(export=self.get_object())
        return Response(ExportDownloadSerializer(result).data)


def register(router) -> None:
    router.register("training-files", TrainingFileViewSet, basename="training-file")
    router.register("exports", ExportViewSet, basename="export")
