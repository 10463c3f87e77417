"""Admin for generation and conversations (reviewers' and staff's console; unscoped by design)."""

from django.contrib import admin, messages

from brightrun.errors import ApplicationError
from conversations.models import (
    BatchItem,
    FailedGeneration,
    GenerationBatch,
    GenerationLog,
    MessageBatchSubmission,
    ModelPrice,
)
from conversations.services import batches


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class BatchItemInline(ReadOnlyInline):
    model = BatchItem
    fields = (
        "position",
        "persona",
        "emotional_arc",
        "training_topic",
        "status",
        "attempts",
        "error_code",
        "conversation",
    )
    readonly_fields = fields


def _per_item(modeladmin, request, queryset, verb, past: str) -> None:
    done = 0
    for batch in queryset:
        try:
            verb(batch=batch)
            done += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{batch}: {exc.message}", messages.WARNING)
    if done:
        modeladmin.message_user(request, f"{done} batch(es) {past}.", messages.SUCCESS)


@admin.register(GenerationBatch)
class GenerationBatchAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "owner",
        "status",
        "mode",
        "priority",
        "total_items",
        "succeeded_items",
        "failed_items",
        "actual_cost_usd",
        "created_at",
    )
    list_filter = ("status", "mode", "priority")
    search_fields = ("name", "owner__username")
    list_select_related = ("owner",)
    readonly_fields = (
        "id",
        "owner",
        "status",
        "status_message",
        "total_items",
        "succeeded_items",
        "failed_items",
        "cancelled_items",
        "estimated_cost_usd",
        "actual_cost_usd",
        "started_at",
        "finished_at",
        "created_at",
        "updated_at",
        "priority_rank",
        "model",
        "mode",
    )
    inlines = [BatchItemInline]
    actions = ("cancel", "pause", "resume")

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Cancel selected batches")
    def cancel(self, request, queryset):
        _per_item(self, request, queryset, batches.generation_batch_cancel, "cancelled")

    @admin.action(description="Pause selected batches")
    def pause(self, request, queryset):
        _per_item(self, request, queryset, batches.generation_batch_pause, "paused")

    @admin.action(description="Resume selected batches")
    def resume(self, request, queryset):
        _per_item(self, request, queryset, batches.generation_batch_resume, "resumed")


@admin.register(BatchItem)
class BatchItemAdmin(admin.ModelAdmin):
    list_display = (
        "batch",
        "position",
        "persona",
        "emotional_arc",
        "training_topic",
        "status",
        "attempts",
        "heartbeat_at",
    )
    list_filter = ("status", "tier")
    list_select_related = ("batch", "persona", "emotional_arc", "training_topic")
    readonly_fields = [f.name for f in BatchItem._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(GenerationLog)
class GenerationLogAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "owner",
        "model",
        "status",
        "stop_reason",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "duration_ms",
    )
    list_filter = ("status", "model", "purpose", "is_batch_api")
    search_fields = ("error_message", "owner__username")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in GenerationLog._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(FailedGeneration)
class FailedGenerationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "owner", "failure_type", "message", "model")
    list_filter = ("failure_type",)
    search_fields = ("message", "owner__username")
    list_select_related = ("owner",)
    readonly_fields = [f.name for f in FailedGeneration._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(MessageBatchSubmission)
class MessageBatchSubmissionAdmin(admin.ModelAdmin):
    list_display = ("external_id", "batch", "status", "request_count", "last_polled_at", "ended_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in MessageBatchSubmission._meta.fields]


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = (
        "model",
        "display_name",
        "input_per_mtok",
        "output_per_mtok",
        "batch_multiplier",
        "cache_write_multiplier",
        "cache_read_multiplier",
    )
    search_fields = ("model", "display_name")
