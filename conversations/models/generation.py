"""Generation: batches, items, Message Batches submissions, call logs, failures, prices."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from brightrun.ownership import OwnedModel, OwnedQuerySet
from conversations.models.conversation import Conversation
from conversations.models.scaffolding import EmotionalArc, Persona, PromptTemplateVersion, Tier, TrainingTopic


class GenerationBatchQuerySet(OwnedQuerySet):
    def active(self) -> GenerationBatchQuerySet:
        return self.filter(status__in=[GenerationBatch.Status.QUEUED, GenerationBatch.Status.RUNNING])


class GenerationBatch(OwnedModel):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PAUSED = "paused"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    TERMINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)
    TRANSITIONS = {
        Status.QUEUED: {Status.RUNNING, Status.CANCELLED, Status.PAUSED},
        Status.RUNNING: {Status.PAUSED, Status.COMPLETED, Status.FAILED, Status.CANCELLED},
        Status.PAUSED: {Status.RUNNING, Status.CANCELLED},
    }

    class Priority(models.TextChoices):
        LOW = "low"
        NORMAL = "normal"
        HIGH = "high"

    PRIORITY_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2}

    class ErrorPolicy(models.TextChoices):
        CONTINUE = "continue"
        STOP = "stop"

    class Mode(models.TextChoices):
        LIVE = "live"
        MESSAGE_BATCHES = "message_batches"

    name = models.CharField(max_length=200)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    priority_rank = models.PositiveSmallIntegerField(default=1, db_index=True)
    concurrency = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(10)])
    error_policy = models.CharField(max_length=10, choices=ErrorPolicy.choices, default=ErrorPolicy.CONTINUE)
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.LIVE)
    model = models.CharField(max_length=100)
    max_tokens = models.PositiveIntegerField(default=16000)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    status_message = models.CharField(max_length=500, blank=True)
    total_items = models.PositiveIntegerField(default=0)
    succeeded_items = models.PositiveIntegerField(default=0)
    failed_items = models.PositiveIntegerField(default=0)
    cancelled_items = models.PositiveIntegerField(default=0)
    estimated_cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    actual_cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = GenerationBatchQuerySet.as_manager()

    def __str__(self) -> str:
        return self.name

    @property
    def done_items(self) -> int:
        return self.succeeded_items + self.failed_items + self.cancelled_items

    @property
    def progress_percent(self) -> float:
        return round(100.0 * self.done_items / self.total_items, 1) if self.total_items else 0.0

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL


class BatchItemQuerySet(OwnedQuerySet):
    def open(self) -> BatchItemQuerySet:
        return self.filter(status__in=[BatchItem.Status.QUEUED, BatchItem.Status.RUNNING])


class BatchItem(OwnedModel):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    batch = models.ForeignKey(GenerationBatch, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    persona = models.ForeignKey(Persona, on_delete=models.PROTECT, related_name="+")
    emotional_arc = models.ForeignKey(EmotionalArc, on_delete=models.PROTECT, related_name="+")
    training_topic = models.ForeignKey(TrainingTopic, on_delete=models.PROTECT, related_name="+")
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.TEMPLATE)
    template_version = models.ForeignKey(
        PromptTemplateVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    temperature = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When a task was enqueued for it.")
    not_before = models.DateTimeField(null=True, blank=True, help_text="Rescheduled after a long retry-after.")
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)
    conversation = models.OneToOneField(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="batch_item"
    )
    submission = models.ForeignKey(
        "MessageBatchSubmission", null=True, blank=True, on_delete=models.SET_NULL, related_name="items"
    )

    objects = BatchItemQuerySet.as_manager()

    class Meta:
        ordering = ("batch", "position")
        constraints = [models.UniqueConstraint(fields=["batch", "position"], name="batch_item_position_unique")]
        indexes = [models.Index(fields=["status", "dispatched_at"]), models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"{self.batch_id}#{self.position}"


class MessageBatchSubmission(OwnedModel):
    """One Anthropic Message Batch carrying some of a generation batch's items."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        ENDED = "ended"
        FAILED = "failed"

    batch = models.ForeignKey(GenerationBatch, on_delete=models.CASCADE, related_name="submissions")
    external_id = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.IN_PROGRESS, db_index=True)
    request_count = models.PositiveIntegerField()
    last_polled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.external_id


class GenerationLog(OwnedModel):
    """One Claude call, successful or not."""

    class Status(models.TextChoices):
        SUCCESS = "success"
        FAILED = "failed"
        RATE_LIMITED = "rate_limited"
        TIMEOUT = "timeout"

    class Purpose(models.TextChoices):
        GENERATION = "generation"
        REGENERATION = "regeneration"
        JUDGING = "judging"

    batch = models.ForeignKey(GenerationBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="logs")
    item = models.ForeignKey(BatchItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="logs")
    conversation = models.ForeignKey(Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    template_version = models.ForeignKey(
        PromptTemplateVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.GENERATION)
    model = models.CharField(max_length=100)
    is_batch_api = models.BooleanField(default=False)
    request_summary = models.JSONField(default=dict)
    stop_reason = models.CharField(max_length=40, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    duration_ms = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status.choices, db_index=True)
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    raw_response_key = models.CharField(max_length=500, blank=True, help_text="Storage key of the raw body.")

    def __str__(self) -> str:
        return f"{self.model} {self.status}"


class FailedGeneration(OwnedModel):
    class FailureType(models.TextChoices):
        TRUNCATION = "truncation"
        PARSE_ERROR = "parse_error"
        SCHEMA_ERROR = "schema_error"
        API_ERROR = "api_error"
        STOP_REASON = "stop_reason"

    batch = models.ForeignKey(
        GenerationBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="failures"
    )
    item = models.ForeignKey(BatchItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="failures")
    log = models.ForeignKey(GenerationLog, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    failure_type = models.CharField(max_length=20, choices=FailureType.choices, db_index=True)
    message = models.TextField()
    details = models.JSONField(default=dict, help_text="Per-turn findings and other machine-readable detail.")
    model = models.CharField(max_length=100, blank=True)
    stop_reason = models.CharField(max_length=40, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    max_tokens = models.PositiveIntegerField(default=0)
    remaining_tokens_analysis = models.JSONField(default=dict)
    scaffolding = models.JSONField(default=dict)
    raw_response_key = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"{self.failure_type}: {self.message[:60]}"


class ModelPrice(models.Model):
    """Price per million tokens for a Claude model (admin-editable; seeded by a migration)."""

    model = models.CharField(max_length=100, unique=True, help_text="Model id or id prefix, e.g. claude-sonnet-4-5")
    display_name = models.CharField(max_length=100)
    input_per_mtok = models.DecimalField(max_digits=10, decimal_places=4)
    output_per_mtok = models.DecimalField(max_digits=10, decimal_places=4)
    batch_multiplier = models.DecimalField(max_digits=5, decimal_places=3, default=Decimal("0.5"))
    cache_write_multiplier = models.DecimalField(max_digits=5, decimal_places=3, default=Decimal("1.25"))
    cache_read_multiplier = models.DecimalField(max_digits=5, decimal_places=3, default=Decimal("0.1"))

    class Meta:
        ordering = ("model",)

    def __str__(self) -> str:
        return self.display_name


class RateLimitWindow(models.Model):
    """A sliding 60-second window shared by every worker (one row per model and limit kind).

    ``events`` holds ``[unix time, amount]`` pairs of the last minute; the row is locked
    (``SELECT … FOR UPDATE``) while a worker reads and appends to it.
    """

    key = models.CharField(max_length=150, unique=True)
    events = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.key
