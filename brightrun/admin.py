"""Admin for the project-wide models. The admin is unscoped by design (staff only)."""

from django.contrib import admin, messages

from brightrun import services
from brightrun.models import ApiToken, CostRecord, Notification, WorkerHeartbeat


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "type", "priority", "is_read", "created_at")
    list_filter = ("type", "priority", "is_read")
    search_fields = ("title", "message", "owner__username")
    list_select_related = ("owner",)
    readonly_fields = ("id", "created_at", "updated_at", "read_at")
    raw_id_fields = ("owner",)


@admin.register(CostRecord)
class CostRecordAdmin(admin.ModelAdmin):
    list_display = ("incurred_at", "owner", "kind", "amount_usd", "description")
    list_filter = ("kind",)
    search_fields = ("description", "owner__username", "source_id")
    list_select_related = ("owner",)
    date_hierarchy = "incurred_at"
    readonly_fields = ("id", "owner", "kind", "amount_usd", "source_type", "source_id", "incurred_at", "created_at")

    def has_add_permission(self, request) -> bool:
        return False  # written by services when work finishes


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "owner__username")
    list_select_related = ("owner",)
    readonly_fields = ("id", "owner", "prefix", "digest", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    def has_add_permission(self, request) -> bool:
        return False  # keys are shown once to their owner, so they are created in the UI

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset) -> None:
        for token in queryset.select_related("owner"):
            services.api_token_revoke(token=token, actor=token.owner)
        self.message_user(request, f"Revoked {queryset.count()} token(s).", messages.SUCCESS)


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("hostname", "last_seen")
    readonly_fields = ("hostname", "last_seen")
