"""Admin of datasets (staff; unscoped by design, SPEC §2). Reports are machine-written and read-only."""

from __future__ import annotations

from django.contrib import admin, messages

from brightrun.errors import ApplicationError
from datasets.models import Dataset, DatasetValidation
from datasets.services import dataset_delete, dataset_revalidate


class DatasetValidationInline(admin.TabularInline):
    model = DatasetValidation
    fields = ("created_at", "status", "result", "format", "error_count", "warning_count", "duration_seconds", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-created_at",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "owner",
        "status",
        "source",
        "format",
        "size",
        "example_count",
        "error_count",
        "warning_count",
        "created_at",
    )
    list_filter = ("status", "source", "format")
    list_select_related = ("owner",)
    search_fields = ("name", "file_name", "owner__username")
    fields = (
        "name",
        "description",
        "id",
        "owner",
        "status",
        "source",
        "requested_format",
        "format",
        "file_name",
        "declared_size",
        "size",
        "storage_key",
        "context_tokens",
        "context_model",
        "training_file_version",
        "example_count",
        "trainable_pairs",
        "error_count",
        "warning_count",
        "issue_counts",
        "statistics",
        "validation_attempts",
        "validation_enqueued_at",
        "validation_started_at",
        "validated_at",
        "upload_expires_at",
        "confirmed_at",
        "deleted_at",
        "file_removed_at",
        "error",
        "created_at",
        "updated_at",
    )
    readonly_fields = tuple(f for f in fields if f not in ("name", "description"))
    inlines = (DatasetValidationInline,)
    actions = ("revalidate", "soft_delete")

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Validate again")
    def revalidate(self, request, queryset) -> None:
        for dataset in queryset:
            try:
                dataset_revalidate(dataset=dataset, actor=request.user)
                self.message_user(request, f"{dataset}: validation enqueued.")
            except ApplicationError as exc:
                self.message_user(request, f"{dataset}: {exc.message}", level=messages.WARNING)

    @admin.action(description="Delete (soft; file removed after 30 days)")
    def soft_delete(self, request, queryset) -> None:
        for dataset in queryset:
            dataset_delete(dataset=dataset, actor=request.user)
        self.message_user(request, f"{queryset.count()} datasets deleted.")


@admin.register(DatasetValidation)
class DatasetValidationAdmin(admin.ModelAdmin):
    list_display = ("dataset", "owner", "status", "result", "format", "error_count", "warning_count", "created_at")
    list_filter = ("status", "result", "format")
    list_select_related = ("dataset", "owner")
    search_fields = ("dataset__name", "owner__username")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
