"""Admin of training files (staff; unscoped by design, SPEC §2). Versions are machine-written and read-only."""

from __future__ import annotations

from django.contrib import admin

from training_files.models import Export, TrainingFile, TrainingFileMember, TrainingFileVersion


class TrainingFileVersionInline(admin.TabularInline):
    model = TrainingFileVersion
    fk_name = "training_file"
    fields = ("number", "status", "conversation_count", "training_pair_count", "built_at", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-number",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class TrainingFileMemberInline(admin.TabularInline):
    model = TrainingFileMember
    fk_name = "training_file"
    fields = ("conversation", "added_at", "added_by")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TrainingFile)
class TrainingFileAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "current_version", "created_at", "updated_at")
    list_select_related = ("owner", "current_version")
    search_fields = ("name", "description", "owner__username")
    readonly_fields = ("id", "owner", "current_version", "created_at", "updated_at")
    inlines = (TrainingFileVersionInline, TrainingFileMemberInline)


@admin.register(TrainingFileVersion)
class TrainingFileVersionAdmin(admin.ModelAdmin):
    list_display = (
        "training_file",
        "number",
        "status",
        "conversation_count",
        "training_pair_count",
        "built_at",
        "owner",
    )
    list_filter = ("status",)
    list_select_related = ("training_file", "owner")
    search_fields = ("training_file__name", "owner__username")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    """Exports are machine-written: every column is read-only; staff see them to support users."""

    list_display = (
        "id",
        "owner",
        "format",
        "scope",
        "status",
        "conversation_count",
        "size",
        "expires_at",
        "created_at",
    )
    list_filter = ("status", "format", "scope")
    search_fields = ("id", "owner__username", "owner__email")
    list_select_related = ("owner",)
    readonly_fields = (
        "owner",
        "scope",
        "conversation_ids",
        "filters",
        "format",
        "options",
        "status",
        "conversation_count",
        "row_count",
        "size",
        "sha256",
        "storage_key",
        "filename",
        "expires_at",
        "download_count",
        "error",
        "started_at",
        "completed_at",
        "created_at",
        "updated_at",
    )

    def has_add_permission(self, request) -> bool:
        return False
