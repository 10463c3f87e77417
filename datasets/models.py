"""Datasets: uploaded or imported JSONL files, validated in the background (SPEC §9).

Written only by ``datasets.services``; status changes are conditional updates along ``TRANSITIONS``.
"""

from __future__ import annotations

from django.db import models

from brightrun.ownership import OwnedModel, OwnedQuerySet


class DatasetQuerySet(OwnedQuerySet):
    def visible(self) -> DatasetQuerySet:
        """Datasets that are not soft-deleted (what lists and pickers show)."""
        return self.exclude(status=Dataset.Status.DELETED)

    def ready(self) -> DatasetQuerySet:
        return self.filter(status=Dataset.Status.READY)


class Dataset(OwnedModel):
    """One JSONL file of training examples and the result of its latest validation.

    ``storage_key`` lives under the owner's prefix; ``report`` is the latest validation report without its
    issues (those are in :class:`DatasetValidation`), so lists and the API read counts and statistics from one
    row.
    """

    class Status(models.TextChoices):
        UPLOADING = "uploading"
        VALIDATING = "validating"
        READY = "ready"
        INVALID = "invalid"
        DELETED = "deleted"

    class Source(models.TextChoices):
        UPLOAD = "upload"
        IMPORT = "import"

    class Format(models.TextChoices):
        AUTO = "auto"
        CHAT = "chat"
        BRIGHTRUN_V4 = "brightrun-v4"
        TURNS = "turns"

    TRANSITIONS = {
        Status.UPLOADING: {Status.VALIDATING, Status.DELETED},
        Status.VALIDATING: {Status.READY, Status.INVALID, Status.VALIDATING, Status.DELETED},
        Status.READY: {Status.VALIDATING, Status.DELETED},
        Status.INVALID: {Status.VALIDATING, Status.DELETED},
        Status.DELETED: set(),
    }

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.UPLOAD)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UPLOADING, db_index=True)
    requested_format = models.CharField(
        max_length=16, choices=Format.choices, default=Format.AUTO, help_text="Format the owner declared."
    )
    format = models.CharField(max_length=16, blank=True, help_text="Format the validator detected.")
    file_name = models.CharField(max_length=255)
    declared_size = models.PositiveBigIntegerField(default=0, help_text="Size the client announced.")
    size = models.PositiveBigIntegerField(default=0, help_text="Size of the stored object.")
    storage_key = models.CharField(max_length=500)
    context_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Context length to check examples against (EXCEEDS_CONTEXT)."
    )
    context_model = models.CharField(max_length=200, blank=True, help_text="Base model the context length is from.")
    training_file_version = models.ForeignKey(
        "training_files.TrainingFileVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="datasets",
        help_text="Lineage of an imported dataset.",
    )
    example_count = models.PositiveIntegerField(default=0)
    trainable_pairs = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    warning_count = models.PositiveIntegerField(default=0)
    issue_counts = models.JSONField(default=dict, blank=True, help_text="{code: occurrences} of the latest run.")
    statistics = models.JSONField(default=dict, blank=True)
    validation_attempts = models.PositiveSmallIntegerField(default=0)
    validation_enqueued_at = models.DateTimeField(null=True, blank=True)
    validation_started_at = models.DateTimeField(null=True, blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    upload_expires_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    file_removed_at = models.DateTimeField(null=True, blank=True, help_text="When cleanup removed the stored file.")
    error = models.TextField(blank=True, help_text="Why validation could not run (not a data issue).")

    objects = DatasetQuerySet.as_manager()

    class Meta(OwnedModel.Meta):
        ordering = ("-created_at",)
        indexes = [models.Index(fields=["owner", "status"], name="dataset_owner_status")]

    def __str__(self) -> str:
        return self.name


class DatasetValidation(OwnedModel):
    """One validation run of a dataset: the full report, including the first 200 issues."""

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="validations")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    result = models.CharField(max_length=10, blank=True, help_text="valid | invalid once completed.")
    format = models.CharField(max_length=16, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    error_count = models.PositiveIntegerField(default=0)
    warning_count = models.PositiveIntegerField(default=0)
    issues = models.JSONField(default=list, blank=True, help_text="First 200 issues: line, code, severity, path, ...")
    issues_truncated = models.BooleanField(default=False)
    statistics = models.JSONField(default=dict, blank=True)
    settings = models.JSONField(default=dict, blank=True, help_text="min_examples, validation_percent, ...")
    bytes_read = models.PositiveBigIntegerField(default=0)
    lines = models.PositiveIntegerField(default=0)
    duration_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(OwnedModel.Meta):
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"validation of {self.dataset_id} ({self.status})"
