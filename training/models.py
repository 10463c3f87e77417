"""Training: catalogues, jobs, their events and metrics, and model artifacts (SPEC §10).

Catalogue rows (base models, presets, GPU types) are shared installation data edited in the admin; jobs,
events, metric points and artifacts are owned. Rows are written only by ``training.services``; job status
changes are conditional updates along ``TrainingJob.TRANSITIONS`` and terminal states are final.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.db import models

from brightrun.ownership import OwnedModel, OwnedQuerySet


class CatalogueQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)


class BaseModel(models.Model):
    """An open model a LoRA adapter can be trained on. Architecture fields feed the memory estimate."""

    hf_id = models.CharField(max_length=200, unique=True, help_text="Hugging Face id, e.g. Qwen/Qwen2.5-7B-Instruct")
    display_name = models.CharField(max_length=200)
    parameters_billions = models.DecimalField(max_digits=12, decimal_places=6)
    context_length = models.PositiveIntegerField()
    hidden_size = models.PositiveIntegerField(help_text="Model width (memory estimate).")
    num_layers = models.PositiveIntegerField()
    intermediate_size = models.PositiveIntegerField(help_text="MLP width (LoRA parameter count).")
    has_chat_template = models.BooleanField(default=True)
    license_note = models.CharField(max_length=300, blank=True)
    local_path = models.CharField(
        max_length=500, blank=True, help_text="Load from this folder (absolute or under TRAINING_MODELS_DIR)."
    )
    is_test_model = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    objects = CatalogueQuerySet.as_manager()

    class Meta:
        ordering = ("parameters_billions", "display_name")

    def __str__(self) -> str:
        return self.display_name


class HyperparameterPreset(models.Model):
    """One row of the preset catalogue (SPEC §10.1); cosine schedule."""

    key = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    rank = models.PositiveSmallIntegerField()
    alpha = models.PositiveSmallIntegerField()
    dropout = models.FloatField()
    learning_rate = models.FloatField()
    epochs = models.PositiveSmallIntegerField()
    batch_size = models.PositiveSmallIntegerField()
    grad_accum = models.PositiveSmallIntegerField()
    warmup_ratio = models.FloatField()
    target_modules = models.JSONField(default=list)
    is_default = models.BooleanField(default=False)
    suggested_min_conversations = models.PositiveIntegerField(default=0)
    suggested_max_conversations = models.PositiveIntegerField(null=True, blank=True)
    sort_order = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    objects = CatalogueQuerySet.as_manager()

    class Meta:
        ordering = ("sort_order", "key")

    def __str__(self) -> str:
        return self.name


class GpuType(models.Model):
    """A GPU offer: memory, peak dense BF16 TFLOPS and price per GPU-hour."""

    key = models.CharField(max_length=40, unique=True, help_text="e.g. H100-80GB")
    name = models.CharField(max_length=100)
    memory_gb = models.PositiveSmallIntegerField()
    peak_tflops_bf16 = models.PositiveIntegerField()
    price_per_hour = models.DecimalField(max_digits=8, decimal_places=2)
    max_count = models.PositiveSmallIntegerField(default=8)
    is_active = models.BooleanField(default=True)

    objects = CatalogueQuerySet.as_manager()

    class Meta:
        ordering = ("price_per_hour", "key")

    def __str__(self) -> str:
        return self.name


def _callback_secret() -> str:
    return secrets.token_urlsafe(32)


class TrainingJobQuerySet(OwnedQuerySet):
    def active(self):
        return self.filter(status__in=TrainingJob.ACTIVE)


class TrainingJob(OwnedModel):
    """One LoRA fine-tune of a base model on a ready dataset."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        PREPARING = "preparing"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Backend(models.TextChoices):
        LOCAL = "local"
        REMOTE = "remote"

    # preparing/running → queued only when a local job's worker was lost and the job gets another attempt.
    TRANSITIONS = {
        Status.QUEUED: {Status.PREPARING, Status.FAILED, Status.CANCELLED},
        Status.PREPARING: {Status.RUNNING, Status.FAILED, Status.CANCELLED, Status.QUEUED},
        Status.RUNNING: {Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.QUEUED},
        Status.COMPLETED: set(),
        Status.FAILED: set(),
        Status.CANCELLED: set(),
    }
    ACTIVE = (Status.QUEUED, Status.PREPARING, Status.RUNNING)
    TERMINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    name = models.CharField(max_length=200, blank=True)
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="training_jobs")
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="jobs")
    preset = models.ForeignKey(HyperparameterPreset, null=True, blank=True, on_delete=models.SET_NULL)
    hyperparameters = models.JSONField(help_text="Final values: preset + overrides, seed, max_seq_length.")
    gpu_type = models.ForeignKey(GpuType, on_delete=models.PROTECT, related_name="jobs")
    gpu_count = models.PositiveSmallIntegerField(default=1)
    backend = models.CharField(max_length=10, choices=Backend.choices, default=Backend.LOCAL)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    stage = models.CharField(max_length=200, blank=True)
    progress = models.FloatField(default=0.0, help_text="0–100")
    current_epoch = models.FloatField(default=0.0)
    current_step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    latest_metrics = models.JSONField(default=dict, blank=True)
    estimate = models.JSONField(default=dict, blank=True, help_text="The estimate at creation (SPEC §10.2).")
    estimated_cost = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("0"))
    actual_cost = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    measured_tokens_per_second = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    error_hint = models.TextField(blank=True)
    external_id = models.CharField(max_length=200, blank=True, db_index=True)
    callback_secret = models.CharField(max_length=100, default=_callback_secret, editable=False)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When a worker took the job.")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life (step or callback).")
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Local runs started (claims); a lost worker's job restarts up to TRAINING_MAX_ATTEMPTS."
    )
    device = models.CharField(max_length=100, blank=True)

    objects = TrainingJobQuerySet.as_manager()

    class Meta(OwnedModel.Meta):
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.name or f"job {self.pk}"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL


class TrainingEvent(OwnedModel):
    """Something that happened to a job: queued, started, restarted (worker lost), epoch_end, checkpoint, completed,
    failed, cancelled."""

    class Kind(models.TextChoices):
        QUEUED = "queued"
        STARTED = "started"
        STAGE = "stage"
        RESTARTED = "restarted"
        EPOCH_END = "epoch_end"
        CHECKPOINT = "checkpoint"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    message = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta(OwnedModel.Meta):
        ordering = ("created_at",)


class MetricPoint(OwnedModel):
    """One measurement: a training step (loss, lr, grad norm, tokens/s) or an evaluation (validation loss)."""

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="metrics")
    step = models.PositiveIntegerField()
    epoch = models.FloatField()
    training_loss = models.FloatField(null=True, blank=True)
    validation_loss = models.FloatField(null=True, blank=True)
    learning_rate = models.FloatField(null=True, blank=True)
    grad_norm = models.FloatField(null=True, blank=True)
    tokens_per_second = models.FloatField(null=True, blank=True)

    class Meta(OwnedModel.Meta):
        ordering = ("step", "created_at")
        indexes = [models.Index(fields=["job", "step"], name="metric_job_step")]


class ModelArtifact(OwnedModel):
    """The adapter a completed job produced: files in storage, lineage and a quality summary from real losses."""

    job = models.OneToOneField(TrainingJob, on_delete=models.PROTECT, related_name="artifact")
    name = models.CharField(max_length=200)
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="+")
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="+")
    training_file_version = models.ForeignKey(
        "training_files.TrainingFileVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    hyperparameters = models.JSONField()
    seed = models.IntegerField()
    files = models.JSONField(default=list, help_text="[{name, key, size, sha256}]")
    quality = models.JSONField(
        null=True, blank=True, help_text="loss reduction %, score 1–5, overfit, perplexity; null without points."
    )
    total_size = models.PositiveBigIntegerField(default=0)

    class Meta(OwnedModel.Meta):
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.name
