"""Conversation admin: the reviewers' console (unscoped by design; acts through services)."""

from django.contrib import admin

from conversations.admin.generation import ReadOnlyInline
from conversations.models import Conversation, Turn


class TurnInline(ReadOnlyInline):
    model = Turn
    fields = ("index", "role", "content", "primary_emotion", "intensity")
    readonly_fields = fields
    show_change_link = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "owner",
        "status",
        "enrichment_status",
        "persona",
        "emotional_arc",
        "is_flagged",
        "created_at",
    )
    list_filter = ("status", "enrichment_status", "is_flagged", "tier", "persona", "emotional_arc")
    search_fields = ("title", "owner__username", "id")
    list_select_related = ("owner", "persona", "emotional_arc")
    readonly_fields = (
        "id",
        "owner",
        "persona",
        "emotional_arc",
        "training_topic",
        "tier",
        "template_version",
        "generation_system_prompt",
        "conversation_metadata",
        "model",
        "temperature",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "turn_count",
        "exchange_count",
        "created_at",
        "updated_at",
    )
    inlines = [TurnInline]
