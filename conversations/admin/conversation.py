"""Conversation admin: the reviewers' console (unscoped by design; acts through services)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from conversations.admin.generation import ReadOnlyInline
from conversations.models import Conversation, ReviewAction, Turn
from conversations.services.review import conversations_bulk_review


class TurnInline(ReadOnlyInline):
    model = Turn
    fields = ("index", "role", "content", "primary_emotion", "intensity", "edited_by", "edited_at", "original_content")
    readonly_fields = fields
    show_change_link = False


class ReviewActionInline(ReadOnlyInline):
    model = ReviewAction
    fk_name = "conversation"
    fields = ("created_at", "actor", "action", "from_status", "to_status", "reason_codes", "comment")
    readonly_fields = fields
    show_change_link = False
    ordering = ("-created_at",)


class HasDuplicatesFilter(admin.SimpleListFilter):
    title = "has duplicates"
    parameter_name = "has_duplicates"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(duplicate_group__isnull=False)
        if self.value() == "no":
            return queryset.filter(duplicate_group__isnull=True)
        return queryset


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "owner",
        "status",
        "quality_tier",
        "quality_score",
        "structure_score",
        "enrichment_status",
        "persona",
        "emotional_arc",
        "is_flagged",
        "created_at",
    )
    list_filter = (
        "status",
        "quality_tier",
        "is_flagged",
        "enrichment_status",
        "tier",
        "persona",
        "emotional_arc",
        HasDuplicatesFilter,
    )
    search_fields = ("title", "=id", "owner__username", "turns__content")
    list_select_related = ("owner", "persona", "emotional_arc")
    readonly_fields = (
        "id",
        "owner",
        "status",
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
        "enrichment_status",
        "enrichment_error",
        "enriched_key",
        "enriched_at",
        "validation_report",
        "structure_score",
        "judge_scores",
        "judge_mean",
        "reviewer_score",
        "quality_score",
        "quality_tier",
        "duplicate_group",
        "minhash",
        "is_flagged",
        "flag_reasons",
        "reviewed_at",
        "created_at",
        "updated_at",
    )
    inlines = [TurnInline, ReviewActionInline]
    actions = ("approve", "reject", "needs_revision", "archive")

    def _bulk(self, request: HttpRequest, queryset: QuerySet, action: str, **kwargs) -> None:
        """Run the review service on each selected conversation and report every outcome."""
        results = conversations_bulk_review(conversations=list(queryset), actor=request.user, action=action, **kwargs)
        done = [r for r in results if r.ok]
        if done:
            self.message_user(request, f"{action}: {len(done)} conversation(s) updated.", messages.SUCCESS)
        for r in results:
            if not r.ok:
                self.message_user(
                    request, f"{action} skipped {r.conversation_id}: {r.code} — {r.message}", messages.ERROR
                )

    @admin.action(description="Approve selected conversations")
    def approve(self, request, queryset):
        self._bulk(request, queryset, "approve")

    @admin.action(description="Reject selected conversations (reason: other)")
    def reject(self, request, queryset):
        self._bulk(request, queryset, "reject", reason_codes=["other"], comment="rejected in the admin")

    @admin.action(description="Mark selected conversations as needing revision")
    def needs_revision(self, request, queryset):
        self._bulk(request, queryset, "needs_revision")

    @admin.action(description="Archive selected conversations")
    def archive(self, request, queryset):
        self._bulk(request, queryset, "archive")
