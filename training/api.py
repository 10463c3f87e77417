"""API of training jobs, trained models and costs (SPEC §10.3, §11, §13.1).

``/api/v1/training-jobs/`` (create, list, retrieve, ``metrics``, ``events``, ``cancel``), ``/api/v1/models/``
(list, retrieve, ``download``) and ``/api/v1/costs/summary/``. Job and model ids are UUIDs and the routes only
match UUIDs, so ``training-jobs/estimate/`` (``training.api_catalogue``) and ``training-jobs/<id>/callback/``
(``training.api_callback``) can never be captured by the detail route, wherever they are included.
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from brightrun.api import OwnedModelViewSet
from brightrun.errors import ApplicationError
from brightrun.filters import FilterSet
from training.api_catalogue import TrainingEstimateRequestSerializer
from training.models import MetricPoint, ModelArtifact, TrainingEvent, TrainingJob
from training.services import preset_suggest
from training.services.artifacts import artifact_download
from training.services.costs import ALLOWED_DAYS, costs_summary
from training.services.jobs import training_job_cancel, training_job_create

UUID_REGEX = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

# --- serializers --------------------------------------------------------------------------


class BaseModelBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    hf_id = serializers.CharField()
    display_name = serializers.CharField()


class DatasetBriefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class TrainingJobSerializer(serializers.ModelSerializer):
    dataset = DatasetBriefSerializer()
    base_model = BaseModelBriefSerializer()
    preset = serializers.SlugRelatedField(slug_field="key", read_only=True, help_text="Preset key, if any.")
    gpu_type = serializers.SlugRelatedField(slug_field="key", read_only=True)
    artifact = serializers.SerializerMethodField(help_text="Id of the trained model once completed.")

    class Meta:
        model = TrainingJob
        fields = (
            "id",
            "name",
            "dataset",
            "base_model",
            "preset",
            "hyperparameters",
            "gpu_type",
            "gpu_count",
            "backend",
            "status",
            "stage",
            "progress",
            "current_epoch",
            "current_step",
            "total_steps",
            "latest_metrics",
            "estimate",
            "estimated_cost",
            "actual_cost",
            "measured_tokens_per_second",
            "device",
            "error_code",
            "error_message",
            "error_hint",
            "cancel_requested_at",
            "started_at",
            "finished_at",
            "artifact",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_artifact(self, obj: TrainingJob) -> str | None:
        try:
            return str(obj.artifact.pk)
        except ObjectDoesNotExist:
            return None


class TrainingJobCreateSerializer(TrainingEstimateRequestSerializer):
    """The estimate's request (dataset, base_model, preset, hyperparameters, gpu_type, gpu_count) plus the job's
    name and backend; an omitted preset is suggested by the dataset's size, as in the estimate."""

    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    backend = serializers.ChoiceField(choices=TrainingJob.Backend.choices, default=TrainingJob.Backend.LOCAL)


class MetricPointSerializer(serializers.ModelSerializer):
    class Meta:
        model = MetricPoint
        fields = (
            "step",
            "epoch",
            "training_loss",
            "validation_loss",
            "learning_rate",
            "grad_norm",
            "tokens_per_second",
            "created_at",
        )
        read_only_fields = fields


class TrainingEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingEvent
        fields = ("id", "kind", "message", "data", "created_at")
        read_only_fields = fields


class ArtifactFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()


class ModelArtifactSerializer(serializers.ModelSerializer):
    job = serializers.UUIDField(source="job_id")
    base_model = BaseModelBriefSerializer()
    dataset = DatasetBriefSerializer()
    training_file_version = serializers.UUIDField(source="training_file_version_id", allow_null=True)
    files = ArtifactFileSerializer(many=True)

    class Meta:
        model = ModelArtifact
        fields = (
            "id",
            "name",
            "job",
            "base_model",
            "dataset",
            "training_file_version",
            "hyperparameters",
            "seed",
            "files",
            "quality",
            "total_size",
            "created_at",
        )
        read_only_fields = fields


class ArtifactDownloadSerializer(serializers.Serializer):
    name = serializers.CharField()
    url = serializers.URLField(help_text="Short-lived signed URL (S3 presigned GET or app-signed local URL).")
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    expires_at = serializers.DateTimeField()


class CostDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    generation = serializers.DecimalField(max_digits=14, decimal_places=4)
    judging = serializers.DecimalField(max_digits=14, decimal_places=4)
    training = serializers.DecimalField(max_digits=14, decimal_places=4)
    total = serializers.DecimalField(max_digits=14, decimal_places=4)


class CostTotalsSerializer(serializers.Serializer):
    generation = serializers.DecimalField(max_digits=14, decimal_places=4)
    judging = serializers.DecimalField(max_digits=14, decimal_places=4)
    training = serializers.DecimalField(max_digits=14, decimal_places=4)
    total = serializers.DecimalField(max_digits=14, decimal_places=4)


class CostCountsSerializer(serializers.Serializer):
    approved_conversations = serializers.IntegerField()
    trainable_pairs = serializers.IntegerField()
    artifacts = serializers.IntegerField()


class UnitCostsSerializer(serializers.Serializer):
    per_approved_conversation = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)
    per_trainable_pair = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)
    per_artifact = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)


class CostSummarySerializer(serializers.Serializer):
    days = serializers.IntegerField()
    start = serializers.DateField()
    end = serializers.DateField()
    per_day = CostDaySerializer(many=True)
    totals = CostTotalsSerializer()
    counts = CostCountsSerializer()
    unit_costs = UnitCostsSerializer()


# --- viewsets -----------------------------------------------------------------------------


class TrainingJobFilter(FilterSet):
    status = filters.MultipleChoiceFilter(choices=TrainingJob.Status.choices)

    class Meta:
        model = TrainingJob
        fields = ("status", "backend", "dataset")


class TrainingJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedModelViewSet):
    """Training jobs of the requesting user."""

    queryset = TrainingJob.objects.all()
    serializer_class = TrainingJobSerializer
    filterset_class = TrainingJobFilter
    ordering_fields = ("created_at", "finished_at", "status")
    lookup_value_regex = UUID_REGEX

    def refine_queryset(self, queryset):
        return queryset.select_related("dataset", "base_model", "preset", "gpu_type", "artifact")

    @extend_schema(request=TrainingJobCreateSerializer, responses={201: TrainingJobSerializer})
    def create(self, request: Request) -> Response:
        """Create a job on one of your ready datasets; it is queued at once. The estimate is stored on it.

        Codes: dataset_not_ready, invalid_hyperparameters (per-field ``errors``), invalid_gpu_count,
        remote_not_configured; another user's dataset does not exist.
        """
        payload = TrainingJobCreateSerializer(data=request.data, context={"request": request})
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        dataset = data["dataset"]
        preset = data.get("preset") or preset_suggest(conversation_count=dataset.example_count)
        job = training_job_create(
            owner=request.user,
            dataset=dataset,
            base_model=data["base_model"],
            gpu_type=data["gpu_type"],
            gpu_count=data["gpu_count"],
            backend=data["backend"],
            preset=preset,
            hyperparameters=data.get("hyperparameters") or None,
            name=data["name"],
        )
        job = self.get_queryset().get(pk=job.pk)
        return Response(TrainingJobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter("after_step", OpenApiTypes.INT, description="Only points after this step (polling).")
        ],
        responses=MetricPointSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def metrics(self, request: Request, pk=None) -> Response:
        """Metric points in step order: training steps (loss, lr, grad norm, tokens/s) and evaluations."""
        job = self.get_object()
        rows = MetricPoint.objects.for_user(request.user).filter(job=job).order_by("step", "created_at")
        after = request.query_params.get("after_step")
        if after not in (None, ""):
            try:
                rows = rows.filter(step__gt=int(after))
            except ValueError as exc:
                raise ApplicationError("after_step must be a whole number.", code="invalid_after_step") from exc
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(MetricPointSerializer(page, many=True).data)

    @extend_schema(responses=TrainingEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def events(self, request: Request, pk=None) -> Response:
        """The job's timeline, oldest first: queued, stages, started, epoch ends, completed/failed/cancelled."""
        job = self.get_object()
        rows = TrainingEvent.objects.for_user(request.user).filter(job=job).order_by("created_at")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(TrainingEventSerializer(page, many=True).data)

    @extend_schema(request=None, responses=TrainingJobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk=None) -> Response:
        """Cancel: a queued job at once; a running one stops at its next step. Idempotent.

        Code job_finished for a completed or failed job.
        """
        training_job_cancel(job=self.get_object(), actor=request.user)
        return Response(TrainingJobSerializer(self.get_object()).data)


class ModelArtifactFilter(FilterSet):
    class Meta:
        model = ModelArtifact
        fields = ("dataset", "base_model", "job")


class ModelArtifactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OwnedModelViewSet):
    """Trained LoRA adapters of the requesting user, with lineage and quality."""

    queryset = ModelArtifact.objects.all()
    serializer_class = ModelArtifactSerializer
    filterset_class = ModelArtifactFilter
    ordering_fields = ("created_at", "name", "total_size")
    lookup_value_regex = UUID_REGEX

    def refine_queryset(self, queryset):
        return queryset.select_related("base_model", "dataset")

    @extend_schema(request=None, responses=ArtifactDownloadSerializer(many=True))
    @action(detail=True, methods=["post"])
    def download(self, request: Request, pk=None) -> Response:
        """Short-lived signed URLs to every file of the adapter, with sizes and SHA-256s."""
        files = artifact_download(artifact=self.get_object())
        return Response(ArtifactDownloadSerializer(files, many=True).data)


class CostViewSet(viewsets.ViewSet):
    """The requesting user's spend (SPEC §11)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("days", OpenApiTypes.INT, enum=list(ALLOWED_DAYS), default=30, description="Window.")
        ],
        responses=CostSummarySerializer,
    )
    @action(detail=False, methods=["get"])
    def summary(self, request: Request) -> Response:
        """Spend per day and kind (generation, judging, training), totals and unit costs. Code invalid_days."""
        raw = request.query_params.get("days", "30")
        days = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 4 else raw
        return Response(CostSummarySerializer(costs_summary(owner=request.user, days=days)).data)


def register(router) -> None:
    router.register("training-jobs", TrainingJobViewSet, basename="training-job")
    router.register("models", ModelArtifactViewSet, basename="model")
    router.register("costs", CostViewSet, basename="cost")
