"""Scaffolding: the vertical, personas, emotional arcs, training topics and prompt templates.

Scaffolding is installation data shared by every user (read by all logged-in users, edited
by staff in the admin), so these models are not owned. Keys are stable identifiers used in
training files and templates; names are for people.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

UNIT = [MinValueValidator(0.0), MaxValueValidator(1.0)]


class ActiveQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)


class VerticalProfile(models.Model):
    """The consultant whose voice the fine-tune learns; one active per installation."""

    key = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120, help_text='Consultant name, e.g. "Elena Morales, CFP".')
    business = models.CharField(max_length=160)
    expertise = models.CharField(max_length=300)
    years_experience = models.PositiveSmallIntegerField()
    core_philosophy = models.JSONField(default=list, help_text="Five principles, in order.")
    communication_style = models.JSONField(default=dict, help_text='{"tone": str, "techniques": [..], "avoid": [..]}')
    inference_system_prompt = models.TextField(
        help_text="The exact system prompt the fine-tuned model receives in production; "
        "written into every training example."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ActiveQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_vertical"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Persona(models.Model):
    key = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    archetype = models.CharField(max_length=120)
    age = models.PositiveSmallIntegerField()
    gender = models.CharField(max_length=40)
    family_status = models.CharField(max_length=160)
    location = models.CharField(max_length=120)
    occupation = models.CharField(max_length=160)
    income_range = models.CharField(max_length=60)
    financial_situation = models.TextField()
    communication_style = models.TextField()
    emotional_baseline = models.TextField()
    typical_questions = models.JSONField(default=list, blank=True)
    common_concerns = models.JSONField(default=list, blank=True)
    language_patterns = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    usage_count = models.PositiveIntegerField(default=0)

    objects = ActiveQuerySet.as_manager()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return f"{self.name} - {self.archetype}"


class Tier(models.TextChoices):
    TEMPLATE = "template"
    SCENARIO = "scenario"
    EDGE_CASE = "edge_case"


class EmotionalArc(models.Model):
    class ArcTier(models.TextChoices):
        TEMPLATE = "template"
        EDGE_CASE = "edge_case"

    key = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    starting_emotion = models.CharField(max_length=60)
    ending_emotion = models.CharField(max_length=60)
    start_intensity_min = models.FloatField(validators=UNIT)
    start_intensity_max = models.FloatField(validators=UNIT)
    end_intensity_min = models.FloatField(validators=UNIT)
    end_intensity_max = models.FloatField(validators=UNIT)
    strategy = models.TextField()
    key_principles = models.JSONField(default=list, blank=True)
    characteristic_phrases = models.JSONField(default=list, blank=True)
    response_techniques = models.JSONField(default=list, blank=True)
    avoid_tactics = models.JSONField(default=list, blank=True)
    typical_turns_min = models.PositiveSmallIntegerField(help_text="Exchanges (user + assistant turns).")
    typical_turns_max = models.PositiveSmallIntegerField()
    complexity = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(10)])
    tier = models.CharField(max_length=20, choices=ArcTier.choices, default=ArcTier.TEMPLATE)
    suitable_personas = models.JSONField(default=list, blank=True, help_text="Persona keys; empty = all.")
    suitable_topics = models.JSONField(default=list, blank=True, help_text="Topic keys; empty = all.")
    is_active = models.BooleanField(default=True)

    objects = ActiveQuerySet.as_manager()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class TrainingTopic(models.Model):
    class Category(models.TextChoices):
        CAREER = "career"
        CASH_FLOW = "cash_flow"
        DEBT = "debt"
        EDUCATION = "education"
        ESTATE = "estate"
        FAMILY = "family"
        INSURANCE = "insurance"
        INVESTMENT = "investment"
        ORGANIZATION = "organization"
        RELATIONSHIPS = "relationships"
        RETIREMENT = "retirement"
        TAX = "tax"

    class Complexity(models.TextChoices):
        BEGINNER = "beginner"
        INTERMEDIATE = "intermediate"
        ADVANCED = "advanced"

    key = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=160)
    category = models.CharField(max_length=20, choices=Category.choices)
    description = models.TextField()
    complexity = models.CharField(max_length=20, choices=Complexity.choices)
    example_questions = models.JSONField(default=list, blank=True)
    key_concepts = models.JSONField(default=list, blank=True)
    suitable_personas = models.JSONField(default=list, blank=True, help_text="Persona keys; empty = all.")
    suitable_arcs = models.JSONField(default=list, blank=True, help_text="Arc keys; empty = all.")
    requires_specialist = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    objects = ActiveQuerySet.as_manager()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class PromptTemplate(models.Model):
    """A generation prompt for one arc (or any arc) and tier. Its text lives in versions."""

    key = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=160)
    emotional_arc = models.ForeignKey(
        EmotionalArc,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="templates",
        help_text="Empty = usable for any arc.",
    )
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.TEMPLATE)
    suitable_personas = models.JSONField(default=list, blank=True, help_text="Persona keys; empty = all.")
    suitable_topics = models.JSONField(default=list, blank=True, help_text="Topic keys; empty = all.")
    is_active = models.BooleanField(default=True)
    current_version = models.ForeignKey(
        "PromptTemplateVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ActiveQuerySet.as_manager()

    class Meta:
        ordering = ("key",)

    def __str__(self) -> str:
        return self.name


class PromptTemplateVersion(models.Model):
    """An immutable text of a template. Conversations record the exact version they came from."""

    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    body = models.TextField()
    variables = models.JSONField(default=list, help_text="Placeholders the body uses (checked at save).")
    change_note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("template", "-number")
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="template_version_number_unique")]

    def __str__(self) -> str:
        return f"{self.template.key} v{self.number}"
