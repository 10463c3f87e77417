"""Admin of training (staff; unscoped by design, SPEC §2).

The catalogues (base models, presets, GPU types) are edited here; ``manage.py seed_training`` never overwrites
those edits. Jobs, events, metric points and artifacts are machine-written: their columns are read-only, and a
job is changed only through the "cancel" action, which calls the service.
"""

from __future__ import annotations

from django.contrib import admin, messages

from brightrun.errors import ApplicationError
from training.models import (
    BaseModel,
    GpuType,
    HyperparameterPreset,
    MetricPoint,
    ModelArtifact,
    TrainingEvent,
    TrainingJob,
)

# --- catalogues ---------------------------------------------------------------------------


@admin.register(BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    list_display = (
        "display_name",
        "hf_id",
        "parameters_billions",
        "context_length",
        "hidden_size",
        "num_layers",
        "intermediate_size",
        "has_chat_template",
        "is_test_model",
        "is_active",
    )
    list_filter = ("is_active", "is_test_model", "has_chat_template")
    list_editable = ("is_active",)
    search_fields = ("hf_id", "display_name", "license_note")


@admin.register(HyperparameterPreset)
class HyperparameterPresetAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "key",
        "rank",
        "alpha",
        "dropout",
        "learning_rate",
        "epochs",
        "batch_size",
        "grad_accum",
        "warmup_ratio",
        "suggested_min_conversations",
        "suggested_max_conversations",
        "is_default",
        "is_active",
        "sort_order",
    )
    list_filter = ("is_active", "is_default")
    search_fields = ("key", "name", "description")


@admin.register(GpuType)
class GpuTypeAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "memory_gb", "peak_tflops_bf16", "price_per_hour", "max_count", "is_active")
    list_filter = ("is_active",)
    list_editable = ("price_per_hour", "is_active")
    search_fields = ("key", "name")


# --- jobs and what they produce -----------------------------------------------------------


class _ReadOnlyInline:
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class TrainingEventInline(_ReadOnlyInline, admin.TabularInline):
    model = TrainingEvent
    fields = ("created_at", "kind", "message", "data")
    readonly_fields = fields
    ordering = ("created_at",)


class ModelArtifactInline(_ReadOnlyInline, admin.StackedInline):
    model = ModelArtifact
    fields = ("name", "base_model", "dataset", "training_file_version", "seed", "total_size", "files", "quality")
    readonly_fields = fields
    show_change_link = True


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "owner",
        "status",
        "backend",
        "base_model",
        "gpu_type",
        "gpu_count",
        "progress",
        "estimated_cost",
        "actual_cost",
        "created_at",
    )
    list_filter = ("status", "backend", "base_model", "gpu_type")
    list_select_related = ("owner", "base_model", "gpu_type")
    search_fields = ("id", "name", "owner__username", "dataset__name", "external_id")
    # callback_secret is deliberately not shown: it signs the remote worker's callbacks.
    fields = (
        "name",
        "id",
        "owner",
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
        "external_id",
        "error_code",
        "error_message",
        "error_hint",
        "cancel_requested_at",
        "claimed_at",
        "heartbeat_at",
        "started_at",
        "finished_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = tuple(f for f in fields if f != "name")
    inlines = (TrainingEventInline, ModelArtifactInline)
    actions = ("cancel",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # A job is history (events, metrics, cost record, artifact lineage); cancel it instead.
        return False

    @admin.action(description="Cancel (queued jobs at once, running jobs at their next step)")
    def cancel(self, request, queryset) -> None:
        from training.services import training_job_cancel

        for job in queryset.select_related("owner"):
            try:
                job = training_job_cancel(job=job, actor=request.user)
                done = job.status == TrainingJob.Status.CANCELLED
                self.message_user(request, f"{job}: {'cancelled' if done else 'cancel requested'}.")
            except ApplicationError as exc:
                self.message_user(request, f"{job}: {exc.message}", level=messages.WARNING)


class _MachineWrittenAdmin(admin.ModelAdmin):
    """Every column read-only; rows are created only by services."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TrainingEvent)
class TrainingEventAdmin(_MachineWrittenAdmin):
    list_display = ("job", "kind", "message", "owner", "created_at")
    list_filter = ("kind",)
    list_select_related = ("job", "owner")
    search_fields = ("job__id", "job__name", "message", "owner__username")


@admin.register(MetricPoint)
class MetricPointAdmin(_MachineWrittenAdmin):
    list_display = (
        "job",
        "step",
        "epoch",
        "training_loss",
        "validation_loss",
        "learning_rate",
        "grad_norm",
        "tokens_per_second",
        "owner",
    )
    list_select_related = ("job", "owner")
    search_fields = ("job__id", "job__name", "owner__username")


@admin.register(ModelArtifact)
class ModelArtifactAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "base_model", "dataset", "total_size", "created_at")
    list_filter = ("base_model",)
    list_select_related = ("owner", "base_model", "dataset")
    search_fields = ("name", "job__id", "owner__username", "dataset__name")
    fields = (
        "name",
        "id",
        "owner",
        "job",
        "base_model",
        "dataset",
        "training_file_version",
        "hyperparameters",
        "seed",
        "files",
        "total_size",
        "quality",
        "created_at",
        "updated_at",
    )
    readonly_fields = tuple(f for f in fields if f != "name")

    def has_add_permission(self, request) -> bool:
        return False
