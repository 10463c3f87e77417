"""API of datasets (SPEC §9, §13.1): create + direct upload, confirm, import, report, download, delete."""

from __future__ import annotations

from django.db.models import Q
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from brightrun.api import OwnedModelViewSet
from brightrun.filters import FilterSet
from datasets import services
from datasets.models import Dataset, DatasetValidation
from datasets.services.lifecycle import CONTEXT_TOKENS_RANGE, PendingUpload

# --- serializers --------------------------------------------------------------------------


class DatasetSerializer(serializers.ModelSerializer):
    training_file_version = serializers.SerializerMethodField(
        help_text="Lineage of an imported dataset: training file id and version number."
    )

    class Meta:
        model = Dataset
        fields = (
            "id",
            "name",
            "description",
            "source",
            "status",
            "requested_format",
            "format",
            "file_name",
            "size",
            "context_tokens",
            "context_model",
            "training_file_version",
            "example_count",
            "trainable_pairs",
            "error_count",
            "warning_count",
            "issue_counts",
            "statistics",
            "error",
            "validated_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_training_file_version(self, obj: Dataset) -> dict | None:
        version = obj.training_file_version
        if version is None:
            return None
        return {"id": str(version.pk), "training_file": str(version.training_file_id), "number": version.number}


class DatasetCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    file_name = serializers.CharField(max_length=255)
    file_size = serializers.IntegerField(min_value=1, help_text="Bytes; at most DATASET_MAX_BYTES (512 MB).")
    format = serializers.ChoiceField(choices=Dataset.Format.choices, required=False, default=Dataset.Format.AUTO)
    context_tokens = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=CONTEXT_TOKENS_RANGE[0],
        max_value=CONTEXT_TOKENS_RANGE[1],
        help_text="Check every example against this context length (EXCEEDS_CONTEXT warnings).",
    )
    context_model = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class UploadSerializer(serializers.Serializer):
    method = serializers.CharField(help_text="Always POST (multipart/form-data).")
    url = serializers.URLField()
    fields = serializers.DictField(child=serializers.CharField(), help_text="Send these form fields first.")
    headers = serializers.DictField(child=serializers.CharField(), help_text="Extra request headers (none today).")
    file_field = serializers.CharField(help_text="Name of the form field that carries the file, sent last.")
    max_bytes = serializers.IntegerField()
    expires_at = serializers.DateTimeField()


class DatasetCreatedSerializer(DatasetSerializer):
    upload = serializers.SerializerMethodField()

    class Meta(DatasetSerializer.Meta):
        fields = (*DatasetSerializer.Meta.fields, "upload")
        read_only_fields = fields

    @extend_schema(responses=UploadSerializer)
    def get_upload(self, obj: Dataset) -> dict:
        return self.context["upload"]


def _upload_body(pending: PendingUpload) -> dict:
    instructions = pending.instructions
    return {
        "method": instructions.method,
        "url": instructions.url,
        "fields": instructions.fields,
        "headers": {},
        "file_field": instructions.file_field,
        "max_bytes": instructions.max_bytes,
        "expires_at": pending.expires_at,
    }


class DatasetImportSerializer(serializers.Serializer):
    training_file = serializers.UUIDField()
    version = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, help_text="Version number; default the current."
    )
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    context_tokens = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=CONTEXT_TOKENS_RANGE[0],
        max_value=CONTEXT_TOKENS_RANGE[1],
    )


class DatasetRevalidateSerializer(serializers.Serializer):
    context_tokens = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=CONTEXT_TOKENS_RANGE[0],
        max_value=CONTEXT_TOKENS_RANGE[1],
        help_text="Omit to keep the current context length; null to drop the context check.",
    )
    context_model = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class IssueSerializer(serializers.Serializer):
    line = serializers.IntegerField(allow_null=True, help_text="1-based line; null for file-level issues.")
    code = serializers.CharField()
    severity = serializers.ChoiceField(choices=["error", "warning"])
    path = serializers.CharField(allow_blank=True)
    message = serializers.CharField()
    suggestion = serializers.CharField(allow_blank=True)


class ValidationReportSerializer(serializers.ModelSerializer):
    dataset = serializers.UUIDField(source="dataset_id")
    issues = IssueSerializer(many=True)

    class Meta:
        model = DatasetValidation
        fields = (
            "id",
            "dataset",
            "status",
            "result",
            "format",
            "counts",
            "error_count",
            "warning_count",
            "issues",
            "issues_truncated",
            "statistics",
            "settings",
            "bytes_read",
            "lines",
            "duration_seconds",
            "error",
            "created_at",
            "finished_at",
        )
        read_only_fields = fields


class DatasetDownloadSerializer(serializers.Serializer):
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()
    size = serializers.IntegerField()
    filename = serializers.CharField()


# --- viewset ------------------------------------------------------------------------------


class DatasetFilter(FilterSet):
    status = filters.MultipleChoiceFilter(choices=Dataset.Status.choices)
    source = filters.ChoiceFilter(choices=Dataset.Source.choices)
    q = filters.CharFilter(method="search", help_text="Search the name and the file name.")

    class Meta:
        model = Dataset
        fields = ("status", "source", "q")

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(file_name__icontains=value))


class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedModelViewSet):
    """Datasets of the requesting user. Deleted datasets are gone from the API (404)."""

    queryset = Dataset.objects.all()
    serializer_class = DatasetSerializer
    filterset_class = DatasetFilter
    ordering_fields = ("created_at", "name", "size")

    def refine_queryset(self, queryset):
        return queryset.visible().select_related("training_file_version")

    @extend_schema(request=DatasetCreateSerializer, responses={201: DatasetCreatedSerializer})
    def create(self, request: Request) -> Response:
        """Create a dataset and get instructions to upload its file directly to storage; then confirm.

        Codes: file_too_large (over the limit, nothing is stored), invalid_file_name, invalid_format.
        """
        payload = DatasetCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        pending = services.dataset_create(owner=request.user, **data)
        body = DatasetCreatedSerializer(pending.dataset, context={"upload": _upload_body(pending)}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=DatasetCreatedSerializer)
    @action(detail=True, methods=["post"])
    def upload(self, request: Request, pk=None) -> Response:
        """Fresh upload instructions for a dataset still uploading (the previous ones expired or failed)."""
        pending = services.upload_for(self.get_object())
        return Response(DatasetCreatedSerializer(pending.dataset, context={"upload": _upload_body(pending)}).data)

    @extend_schema(request=None, responses=DatasetSerializer)
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk=None) -> Response:
        """The upload is finished: check the object and start validation. Idempotent.

        Codes: upload_missing, file_too_large (the object is deleted), empty_file.
        """
        dataset = services.dataset_confirm(dataset=self.get_object(), actor=request.user)
        return Response(DatasetSerializer(dataset).data)

    @extend_schema(request=DatasetImportSerializer, responses={201: DatasetSerializer})
    @action(detail=False, methods=["post"], url_path="import", url_name="import")
    def import_version(self, request: Request) -> Response:
        """Import a training-file version's chat JSONL as a dataset; it is validated like an upload.

        Codes: training_file_not_found / version_not_found (404), version_not_ready.
        """
        payload = DatasetImportSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        dataset = services.dataset_import(
            owner=request.user,
            training_file=data["training_file"],
            version=data["version"],
            name=data["name"] or None,
            context_tokens=data["context_tokens"],
        )
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ValidationReportSerializer)
    @action(detail=True, methods=["get"], url_path="validation-report", url_name="validation-report")
    def validation_report(self, request: Request, pk=None) -> Response:
        """The latest finished validation: counts by code, the first 200 issues with line numbers, statistics.

        Code report_not_ready (409) while the first validation has not finished.
        """
        dataset = self.get_object()
        run = (
            DatasetValidation.objects.for_user(request.user)
            .filter(dataset=dataset)
            .exclude(status=DatasetValidation.Status.RUNNING)
            .first()
        )
        if run is None:
            return Response(
                {"detail": f"The dataset is {dataset.status}; no report yet.", "code": "report_not_ready"},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(ValidationReportSerializer(run).data)

    @extend_schema(request=DatasetRevalidateSerializer, responses={202: DatasetSerializer})
    @action(detail=True, methods=["post"])
    def revalidate(self, request: Request, pk=None) -> Response:
        """Validate again, optionally against another context length. Code not_validated_yet."""
        payload = DatasetRevalidateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        dataset = services.dataset_revalidate(
            dataset=self.get_object(),
            actor=request.user,
            context_tokens=data.get("context_tokens", "unchanged"),
            context_model=data.get("context_model"),
        )
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=DatasetDownloadSerializer)
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk=None) -> Response:
        """A short-lived signed URL to the dataset's file. Code no_file while uploading."""
        return Response(DatasetDownloadSerializer(services.dataset_download(dataset=self.get_object())).data)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request: Request, pk=None) -> Response:
        """Soft-delete; the stored file is removed after 30 days."""
        services.dataset_delete(dataset=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def register(router) -> None:
    router.register("datasets", DatasetViewSet, basename="dataset")
