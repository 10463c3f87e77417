"""Admin for the scaffolding: vertical, personas, arcs, topics, prompt templates and their versions.

Template bodies are never edited in place: the template form has a "new body" field whose
text becomes a new immutable version through ``template_version_create``, and versions
themselves are read-only.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html

from brightrun.errors import ApplicationError
from conversations.models import (
    EmotionalArc,
    Persona,
    PromptTemplate,
    PromptTemplateVersion,
    TrainingTopic,
    VerticalProfile,
)
from conversations.services.scaffolding import template_body_validate, template_version_create


@admin.register(VerticalProfile)
class VerticalProfileAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "business", "years_experience", "is_active", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("key", "name", "business", "expertise")
    readonly_fields = ("created_at", "updated_at")


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "archetype", "age", "occupation", "income_range", "is_active", "usage_count")
    list_filter = ("is_active", "gender")
    search_fields = ("key", "name", "archetype", "occupation", "financial_situation")
    readonly_fields = ("usage_count",)


@admin.register(EmotionalArc)
class EmotionalArcAdmin(admin.ModelAdmin):
    list_display = (
        "name", "key", "tier", "starting_emotion", "ending_emotion", "typical_turns_min", "typical_turns_max",
        "complexity", "is_active",
    )  # fmt: skip
    list_filter = ("tier", "is_active", "complexity")
    search_fields = ("key", "name", "starting_emotion", "ending_emotion", "strategy")


@admin.register(TrainingTopic)
class TrainingTopicAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "category", "complexity", "requires_specialist", "is_active")
    list_filter = ("category", "complexity", "requires_specialist", "is_active")
    search_fields = ("key", "name", "description")


class PromptTemplateVersionInline(admin.TabularInline):
    """Read-only history of the template's versions (newest first)."""

    model = PromptTemplateVersion
    fields = ("number", "change_note", "created_by", "created_at", "variable_count")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-number",)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="variables")
    def variable_count(self, obj: PromptTemplateVersion) -> int:
        return len(obj.variables or [])


class PromptTemplateAdminForm(forms.ModelForm):
    """The template's fields plus the text of its next version.

    The body is validated against the documented variable list here, so unknown variables
    are form errors; saving calls ``template_version_create`` when the text changed.
    """

    new_body = forms.CharField(
        label="Body",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 30, "cols": 120, "style": "font-family: monospace"}),
        help_text=(
            "Editing the body creates a new immutable version; earlier versions are kept. "
            "Use {{variable}} placeholders from the documented list (conversations/services/rendering.py)."
        ),
    )
    change_note = forms.CharField(label="Change note", required=False, max_length=300)

    class Meta:
        model = PromptTemplate
        fields = (
            "key", "name", "emotional_arc", "tier", "suitable_personas", "suitable_topics", "is_active",
        )  # fmt: skip

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        current = self.instance.current_version if self.instance.pk else None
        if current is not None and not self.is_bound:
            self.fields["new_body"].initial = current.body
        if current is None:
            self.fields["new_body"].required = True

    def body_changed(self) -> bool:
        body = self.cleaned_data.get("new_body") or ""
        current = self.instance.current_version if self.instance.pk else None
        return bool(body.strip()) and (current is None or body != current.body)

    def clean_new_body(self) -> str:
        body = (self.cleaned_data.get("new_body") or "").replace("\r\n", "\n")
        if body.strip():
            try:
                template_body_validate(body=body)
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message, code=exc.code) from exc
        return body


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    form = PromptTemplateAdminForm
    list_display = ("name", "key", "emotional_arc", "tier", "current_version_number", "is_active", "updated_at")
    list_filter = ("tier", "is_active", "emotional_arc")
    search_fields = ("key", "name")
    list_select_related = ("emotional_arc", "current_version")
    readonly_fields = ("current_version", "created_at", "updated_at")
    inlines = (PromptTemplateVersionInline,)
    fieldsets = (
        (None, {"fields": ("key", "name", "emotional_arc", "tier", "is_active")}),
        ("Suitability (empty = all)", {"fields": ("suitable_personas", "suitable_topics")}),
        ("Text", {"fields": ("current_version", "new_body", "change_note")}),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="version", ordering="current_version__number")
    def current_version_number(self, obj: PromptTemplate) -> str:
        return f"v{obj.current_version.number}" if obj.current_version else "—"

    def save_model(
        self, request: HttpRequest, obj: PromptTemplate, form: PromptTemplateAdminForm, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        if form.body_changed():
            version = template_version_create(
                template=obj,
                body=form.cleaned_data["new_body"],
                actor=request.user,
                change_note=form.cleaned_data.get("change_note") or "",
            )
            messages.success(request, f"Saved the body as version {version.number}.")


@admin.register(PromptTemplateVersion)
class PromptTemplateVersionAdmin(admin.ModelAdmin):
    """Versions are immutable: viewable, never added, changed or deleted here."""

    list_display = ("template", "number", "change_note", "created_by", "created_at")
    list_filter = ("template__tier", "template")
    search_fields = ("template__key", "template__name", "change_note", "body")
    list_select_related = ("template", "created_by")
    fields = ("template", "number", "change_note", "created_by", "created_at", "variables", "body_preformatted")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="body")
    def body_preformatted(self, obj: PromptTemplateVersion):
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.body)
