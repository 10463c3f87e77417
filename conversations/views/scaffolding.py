"""The scaffolding browser: personas, arcs, topics and templates, and a template preview.

Read-only pages for every logged-in user (scaffolding is shared installation data; staff
edit it in the admin). The preview is a GET form: it renders, it never saves.
"""

from __future__ import annotations

import random
import re
from itertools import groupby

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.views.decorators.http import require_GET

from brightrun.errors import ApplicationError
from conversations.models import (
    Conversation,
    EmotionalArc,
    Persona,
    PromptTemplate,
    PromptTemplateVersion,
    TrainingTopic,
    VerticalProfile,
)
from conversations.services.scaffolding import (
    compatibility_check,
    generation_prompt_build,
    template_version_analytics,
)


class _KeyChoiceField(forms.ModelChoiceField):
    """A row chosen by key; values that cannot be keys are invalid before any query (PostgreSQL
    refuses NUL bytes with an error rather than "no row")."""

    def to_python(self, value):
        if value not in self.empty_values and not re.fullmatch(r"[-a-zA-Z0-9_]+", str(value)):
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class TemplatePreviewForm(forms.Form):
    """Pick what to render a template version for (all optional for an any-arc template's arc)."""

    persona = _KeyChoiceField(queryset=Persona.objects.active(), to_field_name="key")
    training_topic = _KeyChoiceField(
        queryset=TrainingTopic.objects.active().order_by("category", "name"), to_field_name="key", label="Topic"
    )
    emotional_arc = _KeyChoiceField(
        queryset=EmotionalArc.objects.active(),
        to_field_name="key",
        required=False,
        label="Arc",
        help_text="Only for templates usable with any arc.",
    )
    version = forms.TypedChoiceField(coerce=int, required=False, label="Version")
    target_turns = forms.IntegerField(
        min_value=1, max_value=100, required=False, label="Exchanges", help_text="Empty: chosen in the arc's range."
    )

    def __init__(self, *args, template: PromptTemplate, versions: list[PromptTemplateVersion], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.template = template
        self.fields["version"].choices = [("", "current")] + [(v.number, f"v{v.number}") for v in versions]
        if template.emotional_arc_id is not None:
            del self.fields["emotional_arc"]

    def clean(self) -> dict:
        data = super().clean()
        if self.template.emotional_arc_id is None and not data.get("emotional_arc"):
            self.add_error("emotional_arc", "Choose the arc to render this any-arc template for.")
        return data


def _analytics_by_version(versions: list[PromptTemplateVersion], user) -> dict[int, dict]:
    rows = template_version_analytics(versions=versions, conversations=Conversation.objects.for_user(user))
    return {row["version"].pk: row for row in rows}


@require_GET
def scaffolding(request: HttpRequest) -> HttpResponse:
    """Everything the generator combines: personas, arcs, topics by category and templates."""
    templates = list(PromptTemplate.objects.select_related("emotional_arc", "current_version__template"))
    current = [t.current_version for t in templates if t.current_version is not None]
    analytics = _analytics_by_version(current, request.user)
    topics = TrainingTopic.objects.order_by("category", "name")
    context = {
        "vertical": VerticalProfile.objects.active().first(),
        "personas": Persona.objects.all(),
        "arcs": EmotionalArc.objects.order_by("tier", "name"),
        "topic_groups": [
            (category, list(rows)) for category, rows in groupby(topics, key=lambda t: t.get_category_display())
        ],
        "templates": [(t, analytics.get(t.current_version_id) if t.current_version_id else None) for t in templates],
    }
    return render(request, "conversations/scaffolding.html", context)


@require_GET
def scaffolding_template(request: HttpRequest, key: str) -> HttpResponse:
    """One template: its versions with analytics, and a preview rendered for a chosen persona and topic."""
    template = get_object_or_404(PromptTemplate.objects.select_related("emotional_arc", "current_version"), key=key)
    versions = list(template.versions.select_related("template", "created_by").order_by("-number"))
    analytics = _analytics_by_version(versions, request.user)
    form = TemplatePreviewForm(request.GET or None, template=template, versions=versions)
    preview = compatibility = error = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        arc = template.emotional_arc or data["emotional_arc"]
        version = next((v for v in versions if v.number == data["version"]), None) if data.get("version") else None
        version = version or template.current_version
        compatibility = compatibility_check(persona=data["persona"], arc=arc, topic=data["training_topic"])
        try:
            if version is None:
                raise ApplicationError("This template has no version yet.", code="no_version")
            preview = generation_prompt_build(
                persona=data["persona"],
                arc=arc,
                topic=data["training_topic"],
                tier=template.tier,
                template_version=version,
                target_turns=data.get("target_turns"),
                rng=random.Random(f"{template.key}:{data['persona'].key}:{arc.key}:{data['training_topic'].key}"),
            )
        except ApplicationError as exc:
            error = exc
    context = {
        "template": template,
        "versions": [(v, analytics.get(v.pk)) for v in versions],
        "form": form,
        "preview": preview,
        "compatibility": compatibility,
        "error": error,
    }
    status = 400 if form.errors or error is not None else 200
    return render(request, "conversations/scaffolding_template.html", context, status=status)


urlpatterns = [
    path("scaffolding/", scaffolding, name="scaffolding"),
    path("scaffolding/templates/<slug:key>/", scaffolding_template, name="scaffolding_template"),
]
