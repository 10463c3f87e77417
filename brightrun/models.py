"""Project-wide models: notifications, cost records, API tokens and worker heartbeats."""

from __future__ import annotations

from django.db import models

from brightrun.ownership import OwnedModel, OwnedQuerySet


class NotificationQuerySet(OwnedQuerySet):
    def unread(self) -> NotificationQuerySet:
        return self.filter(is_read=False)


class Notification(OwnedModel):
    class Type(models.TextChoices):
        GENERATION_BATCH_COMPLETED = "generation_batch_completed"
        GENERATION_BATCH_FAILED = "generation_batch_failed"
        DATASET_READY = "dataset_ready"
        DATASET_INVALID = "dataset_invalid"
        TRAINING_STARTED = "training_started"
        TRAINING_COMPLETED = "training_completed"
        TRAINING_FAILED = "training_failed"
        TRAINING_CANCELLED = "training_cancelled"
        ARTIFACT_READY = "artifact_ready"
        EXPORT_READY = "export_ready"

    class Priority(models.TextChoices):
        LOW = "low"
        MEDIUM = "medium"
        HIGH = "high"

    type = models.CharField(max_length=40, choices=Type.choices)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.MEDIUM)
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True, help_text="Site-relative path of the object.")
    is_read = models.BooleanField(default=False)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta(OwnedModel.Meta):
        indexes = [models.Index(fields=["owner", "is_read", "-created_at"])]

    def __str__(self) -> str:
        return self.title


class CostRecord(OwnedModel):
    """Money spent on the owner's behalf; one row per finished batch, judging run or job."""

    class Kind(models.TextChoices):
        GENERATION = "generation"
        JUDGING = "judging"
        TRAINING = "training"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    amount_usd = models.DecimalField(max_digits=14, decimal_places=6)
    description = models.CharField(max_length=300, blank=True)
    source_type = models.CharField(max_length=60, help_text="Model label of the source, e.g. training.trainingjob")
    source_id = models.UUIDField()
    incurred_at = models.DateTimeField(db_index=True)

    class Meta(OwnedModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["source_type", "source_id", "kind"], name="cost_record_once_per_source"),
            models.CheckConstraint(condition=models.Q(amount_usd__gte=0), name="cost_record_amount_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ${self.amount_usd}"


class ApiTokenQuerySet(OwnedQuerySet):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiToken(OwnedModel):
    """A named API token. Only its SHA-256 digest is stored; the key is shown once."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True, help_text="First characters, to recognise the key.")
    digest = models.CharField(max_length=64, unique=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class WorkerHeartbeat(models.Model):
    """Last time each Celery worker host ran the heartbeat task (read by /healthz)."""

    hostname = models.CharField(max_length=255, unique=True)
    last_seen = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.hostname
