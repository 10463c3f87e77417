"""factory_boy factories shared by every app's tests."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from brightrun.models import CostRecord, Notification

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    owner = factory.SubFactory(UserFactory)
    type = Notification.Type.DATASET_READY
    title = factory.Sequence(lambda n: f"Dataset {n} is ready")
    message = "Validation passed."
    link = "/"


class CostRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CostRecord

    owner = factory.SubFactory(UserFactory)
    kind = CostRecord.Kind.GENERATION
    amount_usd = "1.250000"
    source_type = "conversations.generationbatch"
    source_id = factory.Faker("uuid4", cast_to=None)
    incurred_at = factory.LazyFunction(timezone.now)


# --- conversations -----------------------------------------------------------------------


class PersonaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "conversations.Persona"
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"persona_{n}")
    name = factory.Sequence(lambda n: f"Client {n}")
    archetype = "Test Archetype"
    age = 40
    gender = "female"
    family_status = "single"
    location = "Denver, CO"
    occupation = "Engineer"
    income_range = "$90-120k"
    financial_situation = "Stable income, unsure about retirement savings."
    communication_style = "Direct"
    emotional_baseline = "Calm but worried"


class EmotionalArcFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "conversations.EmotionalArc"
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"arc_{n}")
    name = factory.Sequence(lambda n: f"Worry {n} → Calm")
    starting_emotion = "worry"
    ending_emotion = "calm"
    start_intensity_min = 0.7
    start_intensity_max = 0.8
    end_intensity_min = 0.6
    end_intensity_max = 0.7
    strategy = "Acknowledge, educate, plan."
    typical_turns_min = 3
    typical_turns_max = 4
    complexity = 5


class TrainingTopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "conversations.TrainingTopic"
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"topic_{n}")
    name = factory.Sequence(lambda n: f"Topic {n}")
    category = "retirement"
    description = "A test topic."
    complexity = "intermediate"


class GenerationBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "conversations.GenerationBatch"

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Batch {n}")
    model = "claude-sonnet-4-5-20250929"
    status = "running"
    total_items = 1


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "conversations.Conversation"

    owner = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Conversation {n}")
    persona = factory.SubFactory(PersonaFactory)
    emotional_arc = factory.SubFactory(EmotionalArcFactory)
    training_topic = factory.SubFactory(TrainingTopicFactory)
    tier = "template"
    generation_system_prompt = "system"
    model = "claude-sonnet-4-5-20250929"
    temperature = 0.7
    turn_count = 2
    exchange_count = 1


class TurnFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "conversations.Turn"

    conversation = factory.SubFactory(ConversationFactory)
    owner = factory.SelfAttribute("conversation.owner")
    index = factory.Sequence(lambda n: n + 1)
    role = "user"
    content = "Hello, I need help with my budget."


class BatchItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "conversations.BatchItem"

    batch = factory.SubFactory(GenerationBatchFactory)
    owner = factory.SelfAttribute("batch.owner")
    position = factory.Sequence(lambda n: n + 1)
    persona = factory.SubFactory(PersonaFactory)
    emotional_arc = factory.SubFactory(EmotionalArcFactory)
    training_topic = factory.SubFactory(TrainingTopicFactory)


class GenerationLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "conversations.GenerationLog"

    owner = factory.SubFactory(UserFactory)
    model = "claude-sonnet-4-5-20250929"
    status = "success"
    duration_ms = 1200


class FailedGenerationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "conversations.FailedGeneration"

    owner = factory.SubFactory(UserFactory)
    failure_type = "truncation"
    message = "Turn 4 looks truncated."
    raw_response_key = factory.LazyAttribute(lambda f: f"users/{f.owner.pk}/generation/raw/test.json")


# --- training files ------------------------------------------------------------------------


class TrainingFileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "training_files.TrainingFile"

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Training file {n}")


class TrainingFileMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "training_files.TrainingFileMember"

    training_file = factory.SubFactory(TrainingFileFactory)
    owner = factory.SelfAttribute("training_file.owner")
    conversation = factory.SubFactory(ConversationFactory, owner=factory.SelfAttribute("..owner"))


def _version_files(version) -> dict:
    """Storage entries for a ready version (keys under the owner's prefix; nothing is written)."""
    files = {}
    for fmt, suffix in (("chat-jsonl", ".chat.jsonl"), ("v4-jsonl", ".v4.jsonl"), ("v4-json", ".v4.json")):
        name = f"file-v{version.number}{suffix}"
        key = f"users/{version.owner.pk}/training-files/{version.training_file.pk}/v{version.number}/{name}"
        files[fmt] = {"key": key, "filename": name, "size": 1, "sha256": "0" * 64}
    return files


class TrainingFileVersionFactory(factory.django.DjangoModelFactory):
    """A ready version (``status="failed"`` for a failed one); its ``files`` point at keys that need not exist."""

    class Meta:
        model = "training_files.TrainingFileVersion"

    training_file = factory.SubFactory(TrainingFileFactory)
    owner = factory.SelfAttribute("training_file.owner")
    number = factory.Sequence(lambda n: n + 1)
    status = "ready"
    conversation_count = 1
    training_pair_count = 1
    files = factory.LazyAttribute(lambda v: _version_files(v) if v.status == "ready" else {})


class DatasetFactory(factory.django.DjangoModelFactory):
    """A ready uploaded dataset; its ``storage_key`` need not exist unless a test writes it."""

    class Meta:
        model = "datasets.Dataset"

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Dataset {n}")
    file_name = "train.jsonl"
    status = "ready"
    format = "chat"
    size = 2048
    declared_size = 2048
    example_count = 12
    trainable_pairs = 30
    storage_key = factory.LazyAttribute(lambda d: f"users/{d.owner.pk}/datasets/{d.name.replace(' ', '_')}/train.jsonl")


class DatasetValidationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "datasets.DatasetValidation"

    dataset = factory.SubFactory(DatasetFactory)
    owner = factory.SelfAttribute("dataset.owner")
    status = "completed"
    result = "valid"
    format = "chat"


# --- training ------------------------------------------------------------------------------


class BaseModelFactory(factory.django.DjangoModelFactory):
    """A catalogue base model (tiny-test-sized architecture numbers; nothing is loaded)."""

    class Meta:
        model = "training.BaseModel"
        django_get_or_create = ("hf_id",)

    hf_id = factory.Sequence(lambda n: f"test-org/test-model-{n}")
    display_name = factory.Sequence(lambda n: f"Test model {n}")
    parameters_billions = Decimal("0.500000")
    context_length = 32768
    hidden_size = 896
    num_layers = 24
    intermediate_size = 4864


class PresetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "training.HyperparameterPreset"
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"preset-{n}")
    name = factory.Sequence(lambda n: f"Preset {n}")
    rank = 8
    alpha = 16
    dropout = 0.05
    learning_rate = 1e-4
    epochs = 2
    batch_size = 4
    grad_accum = 1
    warmup_ratio = 0.03
    target_modules = factory.LazyFunction(lambda: ["q", "k", "v", "o"])


class GpuTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "training.GpuType"
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"GPU-{n}")
    name = factory.Sequence(lambda n: f"Test GPU {n}")
    memory_gb = 80
    peak_tflops_bf16 = 989
    price_per_hour = Decimal("4.20")


def _job_hyperparameters() -> dict:
    return {
        "rank": 8,
        "alpha": 16,
        "dropout": 0.05,
        "learning_rate": 1e-4,
        "epochs": 2,
        "batch_size": 4,
        "grad_accum": 1,
        "warmup_ratio": 0.03,
        "target_modules": ["q", "k", "v", "o"],
        "max_seq_length": 2048,
        "seed": 42,
    }


class TrainingJobFactory(factory.django.DjangoModelFactory):
    """A queued local job on a ready dataset of its owner (no task is enqueued: rows only)."""

    class Meta:
        model = "training.TrainingJob"

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Job {n}")
    dataset = factory.SubFactory(DatasetFactory, owner=factory.SelfAttribute("..owner"))
    base_model = factory.SubFactory(BaseModelFactory)
    gpu_type = factory.SubFactory(GpuTypeFactory)
    gpu_count = 1
    hyperparameters = factory.LazyFunction(_job_hyperparameters)
    status = "queued"


def _artifact_files(artifact) -> list:
    prefix = f"users/{artifact.owner.pk}/models/{artifact.job.pk}/"
    names = (("adapter_model.safetensors", 4, "0"), ("adapter_config.json", 2, "1"))
    return [{"name": name, "key": prefix + name, "size": size, "sha256": digit * 64} for name, size, digit in names]


class ModelArtifactFactory(factory.django.DjangoModelFactory):
    """The artifact of a completed job; its ``files`` point at keys that need not exist."""

    class Meta:
        model = "training.ModelArtifact"

    job = factory.SubFactory(TrainingJobFactory, status="completed")
    owner = factory.SelfAttribute("job.owner")
    name = factory.SelfAttribute("job.name")
    base_model = factory.SelfAttribute("job.base_model")
    dataset = factory.SelfAttribute("job.dataset")
    hyperparameters = factory.SelfAttribute("job.hyperparameters")
    seed = 42
    files = factory.LazyAttribute(_artifact_files)
    quality = factory.LazyFunction(lambda: {"score": 4, "label": "good", "loss_reduction_percent": 42.0})
    total_size = 6
