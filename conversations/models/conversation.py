"""Conversations and their turns (owned by the expert whose batch generated them)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models

from brightrun.ownership import OwnedModel, OwnedQuerySet
from conversations.models.scaffolding import EmotionalArc, Persona, PromptTemplateVersion, Tier, TrainingTopic


class ConversationQuerySet(OwnedQuerySet):
    def with_scaffolding(self) -> ConversationQuerySet:
        return self.select_related("persona", "emotional_arc", "training_topic", "template_version__template")

    def unscoped_review_scope(self, user) -> ConversationQuerySet:
        """What ``user`` may review: every conversation for reviewers, their own for everyone else.

        Used only by review actions and the review queue; every other path stays ``for_user``.
        """
        if (
            user is not None
            and getattr(user, "is_active", False)
            and user.has_perm("conversations.review_conversation")
        ):
            return self.all()
        return self.for_user(user)

    def review_queue(self) -> ConversationQuerySet:
        """Pending conversations: flagged first, then lowest quality (unscored last), then oldest."""
        return self.filter(status=Conversation.Status.PENDING_REVIEW).order_by(
            models.F("is_flagged").desc(), models.F("quality_score").asc(nulls_last=True), "created_at"
        )


class Conversation(OwnedModel):
    class Status(models.TextChoices):
        PENDING_REVIEW = "pending_review"
        APPROVED = "approved"
        REJECTED = "rejected"
        NEEDS_REVISION = "needs_revision"
        ARCHIVED = "archived"

    class EnrichmentStatus(models.TextChoices):
        NOT_STARTED = "not_started"
        VALIDATED = "validated"
        VALIDATION_FAILED = "validation_failed"
        ENRICHED = "enriched"
        COMPLETED = "completed"
        NORMALIZATION_FAILED = "normalization_failed"

    title = models.CharField(max_length=300)
    persona = models.ForeignKey(Persona, on_delete=models.PROTECT, related_name="+")
    emotional_arc = models.ForeignKey(EmotionalArc, on_delete=models.PROTECT, related_name="+")
    training_topic = models.ForeignKey(TrainingTopic, on_delete=models.PROTECT, related_name="+")
    tier = models.CharField(max_length=20, choices=Tier.choices)
    template_version = models.ForeignKey(
        PromptTemplateVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="conversations"
    )
    generation_system_prompt = models.TextField(help_text="The system prompt actually sent to Claude.")
    conversation_metadata = models.JSONField(
        default=dict, help_text="client_persona, session_context, conversation_phase, expected_outcome"
    )
    model = models.CharField(max_length=100)
    temperature = models.FloatField()
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING_REVIEW, db_index=True)
    enrichment_status = models.CharField(
        max_length=30, choices=EnrichmentStatus.choices, default=EnrichmentStatus.NOT_STARTED
    )

    class QualityTier(models.TextChoices):
        SEED_DATASET = "seed_dataset"
        PRODUCTION = "production"
        EXPERIMENTAL = "experimental"
        REJECTED = "rejected"
        UNSCORED = "unscored"

    validation_report = models.JSONField(null=True, blank=True, help_text="Blockers and warnings (SPEC §5.2).")
    structure_score = models.FloatField(null=True, blank=True, help_text="0–10, deterministic (SPEC §5.3).")
    judge_scores = models.JSONField(
        null=True, blank=True, help_text="{criterion: {score 1–5, rationale}} from the LLM judge; null if not judged."
    )
    judge_mean = models.FloatField(null=True, blank=True)
    reviewer_score = models.FloatField(null=True, blank=True, help_text="1–5, set by a reviewer.")
    quality_score = models.FloatField(
        null=True, blank=True, db_index=True, help_text="Reviewer score, else judge mean, else null."
    )
    quality_tier = models.CharField(max_length=20, choices=QualityTier.choices, default=QualityTier.UNSCORED)
    duplicate_group = models.ForeignKey(
        "NearDuplicateGroup", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    minhash = models.JSONField(null=True, blank=True, help_text="MinHash signature of the assistant turns.")
    enriched_key = models.CharField(max_length=500, blank=True, help_text="Storage key of the individual v4 JSON.")
    enrichment_error = models.TextField(blank=True)
    enriched_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    turn_count = models.PositiveSmallIntegerField(default=0)
    exchange_count = models.PositiveSmallIntegerField(default=0)
    is_flagged = models.BooleanField(default=False)
    flag_reasons = models.JSONField(default=list, blank=True)

    objects = ConversationQuerySet.as_manager()

    class Meta(OwnedModel.Meta):
        indexes = [models.Index(fields=["owner", "status", "-created_at"])]
        permissions = [("review_conversation", "Can review the conversations of every user")]

    def __str__(self) -> str:
        return self.title


class NearDuplicateGroup(OwnedModel):
    """Conversations of one owner whose assistant turns are near-identical (MinHash Jaccard ≥ 0.8)."""

    def __str__(self) -> str:
        return f"group {self.pk}"


class ReviewAction(OwnedModel):
    """One review transition. ``owner`` is the conversation's owner; ``actor`` who acted."""

    class Action(models.TextChoices):
        APPROVE = "approve"
        REJECT = "reject"
        NEEDS_REVISION = "needs_revision"
        RETRACT = "retract"
        ARCHIVE = "archive"
        RESUBMIT = "resubmit"
        EDIT = "edit"
        REGENERATE = "regenerate"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="review_actions")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=20, choices=Action.choices)
    from_status = models.CharField(max_length=20, choices=Conversation.Status.choices)
    to_status = models.CharField(max_length=20, choices=Conversation.Status.choices)
    reason_codes = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True)

    class Meta(OwnedModel.Meta):
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.action}: {self.from_status} → {self.to_status}"


class Turn(OwnedModel):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveSmallIntegerField(help_text="1-based position in the conversation.")
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField()
    primary_emotion = models.CharField(max_length=60, blank=True)
    secondary_emotion = models.CharField(max_length=60, blank=True)
    intensity = models.FloatField(null=True, blank=True)
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    edited_at = models.DateTimeField(null=True, blank=True)
    original_content = models.TextField(null=True, blank=True, help_text="The generated text, kept when edited.")

    class Meta:
        ordering = ("conversation", "index")
        constraints = [models.UniqueConstraint(fields=["conversation", "index"], name="turn_index_unique")]

    def __str__(self) -> str:
        return f"{self.index}. {self.role}"
