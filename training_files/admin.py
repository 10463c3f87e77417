"""Admin of training files (staff; unscoped by design, SPEC §2). Versions are machine-written and read-only."""

from __future__ import annotations

from django.contrib import admin

from training_files.models import TrainingFile, TrainingFileMember, TrainingFileVersion


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
