"""Training files: owned collections of approved conversations, built into immutable versions (SPEC §7.1)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from brightrun.ownership import OwnedModel


class TrainingFile(OwnedModel):
    """A named set of one owner's conversations; every membership change is a new version."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    current_version = models.ForeignKey(
        "TrainingFileVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The newest ready version; a failed or building version never becomes current.",
    )

    class Meta(OwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="training_file_name_unique_per_owner")]

    def __str__(self) -> str:
        return self.name


class TrainingFileMember(OwnedModel):
    """One conversation in a training file's current member set (the gate admitted it)."""

    training_file = models.ForeignKey(TrainingFile, on_delete=models.CASCADE, related_name="members")
    conversation = models.ForeignKey("conversations.Conversation", on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField(default=timezone.now)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(OwnedModel.Meta):
        ordering = ("added_at",)
        constraints = [
            models.UniqueConstraint(fields=["training_file", "conversation"], name="training_file_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.training_file_id}: {self.conversation_id}"


class TrainingFileVersion(OwnedModel):
    """One build of a training file: its member snapshot, counts, summaries and rendered files.

    Written only by ``training_files.services``; immutable once ``ready``. ``files`` maps a format
    (``chat-jsonl``, ``v4-jsonl``, ``v4-json``) to ``{key, filename, size, sha256}``.
    """

    class Status(models.TextChoices):
        BUILDING = "building"
        READY = "ready"
        FAILED = "failed"

    TRANSITIONS = {
        Status.BUILDING: {Status.READY, Status.FAILED},
        Status.FAILED: {Status.BUILDING},  # retry
        Status.READY: set(),
    }

    training_file = models.ForeignKey(TrainingFile, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BUILDING, db_index=True)
    member_ids = models.JSONField(default=list, help_text="Conversation ids of this version, as strings.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    conversation_count = models.PositiveIntegerField(default=0)
    training_pair_count = models.PositiveIntegerField(default=0)
    quality_summary = models.JSONField(default=dict, blank=True)
    scaffolding_distribution = models.JSONField(default=dict, blank=True)
    files = models.JSONField(default=dict, blank=True, help_text="{format: {key, filename, size, sha256}}")
    error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker took this build; refreshed by its heartbeat while it runs."
    )
    build_attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Builds started for this version (the sweeper gives up after the last allowed one)."
    )
    built_at = models.DateTimeField(null=True, blank=True)

    class Meta(OwnedModel.Meta):
        ordering = ("training_file", "-number")
        constraints = [models.UniqueConstraint(fields=["training_file", "number"], name="training_file_version_unique")]

    def __str__(self) -> str:
        return f"{self.training_file_id} v{self.number} ({self.status})"


def _export_expiry():
    from datetime import timedelta

    return timezone.now() + timedelta(days=7)


class Export(OwnedModel):
    """One conversation export (SPEC §8), rendered by a worker and streamed to storage.

    Written only by ``training_files.services.exports``; status changes are conditional updates along
    ``TRANSITIONS``. ``expired`` is terminal: the stored object is gone.
    """

    class Scope(models.TextChoices):
        SELECTED = "selected"
        FILTER = "filter"
        ALL_APPROVED = "all_approved"

    class Format(models.TextChoices):
        CHAT_JSONL = "chat-jsonl"
        V4_JSONL = "v4-jsonl"
        V4_JSON = "v4-json"
        CSV = "csv"
        MARKDOWN = "markdown"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        EXPIRED = "expired"

    TRANSITIONS = {
        Status.QUEUED: {Status.RUNNING, Status.FAILED},
        Status.RUNNING: {Status.COMPLETED, Status.FAILED},
        Status.COMPLETED: {Status.EXPIRED},
        Status.FAILED: set(),
        Status.EXPIRED: set(),
    }

    scope = models.CharField(max_length=20, choices=Scope.choices)
    conversation_ids = models.JSONField(default=list, blank=True, help_text="Conversation ids (scope selected).")
    filters = models.JSONField(
        default=dict, blank=True, help_text="status, persona, emotional_arc, training_topic (keys), quality_tier."
    )
    format = models.CharField(max_length=20, choices=Format.choices)
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text="include_metadata, include_quality, include_timestamps, include_review_history (booleans).",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    conversation_count = models.PositiveIntegerField(default=0)
    row_count = models.PositiveIntegerField(default=0, help_text="Pairs (JSON formats), turns (CSV), sections (MD).")
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    storage_key = models.CharField(max_length=500, blank=True)
    filename = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(default=_export_expiry, db_index=True)
    download_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta(OwnedModel.Meta):
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"export {self.pk} ({self.format}, {self.status})"
