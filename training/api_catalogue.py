"""Training catalogue API (SPEC §10.1, §13.1) and the live estimate (SPEC §10.2).

Base models, presets and GPU types are installation data shared by every user, not owned rows: plain read-only
viewsets over the active rows (staff edit them in the admin). Presets and GPU types are addressed by their
stable ``key``, base models by id. ``POST /api/v1/training-jobs/estimate/`` is a plain ``APIView`` wired in
front of the router (see ``urlpatterns``) so the jobs viewset's detail route never captures "estimate".
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from brightrun.api import KeyRelatedField, OwnedRelatedField
from datasets.models import Dataset
from training.models import BaseModel, GpuType, HyperparameterPreset
from training.services import hyperparameters_resolve, preset_suggest, training_estimate

KEY_REGEX = r"[-a-zA-Z0-9_.]+"

# --- catalogue serializers and viewsets -----------------------------------------------------


class BaseModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = BaseModel
        fields = (
            "id",
            "hf_id",
            "display_name",
            "parameters_billions",
            "context_length",
            "hidden_size",
            "num_layers",
            "intermediate_size",
            "has_chat_template",
            "license_note",
            "is_test_model",
        )
        read_only_fields = fields


class HyperparameterPresetSerializer(serializers.ModelSerializer):
    target_modules = serializers.ListField(
        child=serializers.CharField(), help_text="Short names: q,k,v,o,gate,up,down."
    )

    class Meta:
        model = HyperparameterPreset
        fields = (
            "key",
            "name",
            "description",
            "rank",
            "alpha",
            "dropout",
            "learning_rate",
            "epochs",
            "batch_size",
            "grad_accum",
            "warmup_ratio",
            "target_modules",
            "is_default",
            "suggested_min_conversations",
            "suggested_max_conversations",
            "sort_order",
        )
        read_only_fields = fields


class GpuTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = GpuType
        fields = ("key", "name", "memory_gb", "peak_tflops_bf16", "price_per_hour", "max_count")
        read_only_fields = fields


class BaseModelViewSet(viewsets.ReadOnlyModelViewSet):
    """Active base models a LoRA adapter can be trained on (shared catalogue)."""

    queryset = BaseModel.objects.active()
    serializer_class = BaseModelSerializer
    ordering_fields = ("parameters_billions", "display_name")


class HyperparameterPresetViewSet(viewsets.ReadOnlyModelViewSet):
    """Active hyperparameter presets with their suggested dataset sizes (shared catalogue)."""

    queryset = HyperparameterPreset.objects.active()
    serializer_class = HyperparameterPresetSerializer
    lookup_field = "key"
    lookup_value_regex = KEY_REGEX
    ordering_fields = ("sort_order", "key")


class GpuTypeViewSet(viewsets.ReadOnlyModelViewSet):
    """Active GPU offers: memory, peak BF16 TFLOPS, price per GPU-hour (shared catalogue)."""

    queryset = GpuType.objects.active()
    serializer_class = GpuTypeSerializer
    lookup_field = "key"
    lookup_value_regex = KEY_REGEX
    ordering_fields = ("price_per_hour", "memory_gb", "key")


# --- estimate -----------------------------------------------------------------------------


class _VisibleDatasetField(OwnedRelatedField):
    """The requesting user's datasets that are not deleted; anything else "does not exist"."""

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().visible()


class TrainingEstimateRequestSerializer(serializers.Serializer):
    dataset = _VisibleDatasetField(model=Dataset, help_text="Id of one of your datasets; it must be ready.")
    base_model = serializers.CharField(max_length=200, help_text="Hugging Face id or catalogue id of a base model.")
    preset = KeyRelatedField(
        slug_field="key",
        queryset=HyperparameterPreset.objects.active(),
        required=False,
        allow_null=True,
        help_text="Preset key; omitted → suggested by the dataset's size.",
    )
    hyperparameters = serializers.DictField(
        required=False, default=dict, help_text="Overrides of the preset's values (SPEC §10.1 ranges)."
    )
    gpu_type = KeyRelatedField(slug_field="key", queryset=GpuType.objects.active())
    gpu_count = serializers.IntegerField(default=1, help_text="1 .. the GPU type's max_count.")

    def validate_base_model(self, value: str) -> BaseModel:
        active = BaseModel.objects.active()
        found = active.filter(hf_id=value).first()
        if found is None and value.isascii() and value.isdigit() and len(value) < 12:
            found = active.filter(pk=int(value)).first()
        if found is None:
            raise serializers.ValidationError(f"Base model {value!r} does not exist.", code="does_not_exist")
        return found


class EstimateTimeSerializer(serializers.Serializer):
    load = serializers.FloatField()
    train = serializers.FloatField()
    evaluation = serializers.FloatField()
    total = serializers.FloatField()


class EstimateSuggestionSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="reduce_tokens_per_batch | load_in_4bit | larger_gpu")
    message = serializers.CharField()
    would_fit = serializers.BooleanField(help_text="Whether this change alone would make the job fit.")
    gpu_type = serializers.CharField(required=False, allow_null=True, help_text="larger_gpu only.")
    gpu_count = serializers.IntegerField(required=False, allow_null=True, help_text="larger_gpu only.")


class EstimateMemorySerializer(serializers.Serializer):
    weights_gb = serializers.FloatField()
    lora_parameters = serializers.IntegerField()
    lora_gb = serializers.FloatField()
    optimizer_gb = serializers.FloatField()
    activations_gb = serializers.FloatField()
    total_gb = serializers.FloatField()
    available_gb = serializers.FloatField(help_text="0.9 × gpu_count × memory_gb.")
    fits = serializers.BooleanField()
    suggestions = EstimateSuggestionSerializer(many=True)


class TrainingEstimateSerializer(serializers.Serializer):
    base_model = serializers.CharField(help_text="Hugging Face id.")
    gpu_type = serializers.CharField()
    gpu_count = serializers.IntegerField()
    price_per_hour = serializers.DecimalField(max_digits=8, decimal_places=2, coerce_to_string=True)
    preset = serializers.CharField(allow_null=True, help_text="The preset used (given or suggested).")
    preset_suggested = serializers.BooleanField(help_text="True when the preset was chosen by dataset size.")
    hyperparameters = serializers.DictField(help_text="The resolved hyperparameters a job would use.")
    epochs = serializers.IntegerField()
    tokens = serializers.IntegerField(help_text="Train split tokens × epochs.")
    train_tokens_per_epoch = serializers.IntegerField()
    validation_tokens = serializers.IntegerField()
    throughput_tokens_per_second = serializers.FloatField()
    mfu = serializers.FloatField()
    time_seconds = EstimateTimeSerializer()
    gpu_hours = serializers.FloatField()
    cost_usd = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)
    memory = EstimateMemorySerializer()
    assumptions = serializers.DictField(help_text="The constants and simplifications behind the numbers.")


class TrainingEstimateView(APIView):
    """Estimate a training job before creating it (the form's live estimate)."""

    @extend_schema(
        operation_id="training_jobs_estimate",
        request=TrainingEstimateRequestSerializer,
        responses=TrainingEstimateSerializer,
    )
    def post(self, request: Request) -> Response:
        """Tokens, time, GPU-hours, cost and whether the job fits in GPU memory, with suggestions if not.

        Codes: dataset_not_ready, invalid_hyperparameters (per-field ``errors``), invalid_gpu_count;
        another user's dataset is reported as not existing.
        """
        payload = TrainingEstimateRequestSerializer(data=request.data, context={"request": request})
        payload.is_valid(raise_exception=True)
        data: dict[str, Any] = payload.validated_data
        dataset: Dataset = data["dataset"]
        preset = data.get("preset")
        suggested = preset is None
        if suggested:
            preset = preset_suggest(conversation_count=dataset.example_count)
        hyperparameters = hyperparameters_resolve(preset=preset, overrides=data.get("hyperparameters"))
        estimate = training_estimate(
            dataset=dataset,
            base_model=data["base_model"],
            hyperparameters=hyperparameters,
            gpu_type=data["gpu_type"],
            gpu_count=data["gpu_count"],
        )
        body = {
            **estimate,
            "preset": preset.key if preset else None,
            "preset_suggested": suggested,
            "hyperparameters": hyperparameters,
        }
        return Response(TrainingEstimateSerializer(body).data)


def register(router) -> None:
    router.register("base-models", BaseModelViewSet, basename="base-model")
    router.register("presets", HyperparameterPresetViewSet, basename="preset")
    router.register("gpu-types", GpuTypeViewSet, basename="gpu-type")


def urlpatterns() -> list:
    """Routes outside the router; include them before ``api/v1/`` so they win over the jobs detail route."""
    return [path("api/v1/training-jobs/estimate/", TrainingEstimateView.as_view(), name="training-job-estimate")]
