"""Estimate arithmetic (SPEC §10.2), hyperparameter ranges and presets (SPEC §10.1), the catalogue seed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command

from brightrun.errors import ApplicationError
from tests.factories import DatasetFactory
from training.models import BaseModel, GpuType, HyperparameterPreset
from training.services import (
    RANGES,
    catalogue_seed,
    hyperparameters_resolve,
    lora_parameter_count,
    preset_suggest,
    training_estimate,
)
from training.services.catalogue import BASE_MODELS, TINY_TEST_MODEL_HF_ID, TINY_TEST_MODEL_PARAMETERS


def statistics(train_tokens: int, validation_tokens: int, examples: int = 200) -> dict:
    """A statistics block shaped like the validator's (``datasets.validation.stats``)."""
    validation_examples = examples // 10
    return {
        "examples": examples,
        "trainable_pairs": examples * 3,
        "duplicates": 0,
        "estimated_tokens": {
            "estimator": "utf8_chars_div_4",
            "label": "estimated",
            "total": train_tokens + validation_tokens,
            "assistant": (train_tokens + validation_tokens) // 2,
            "per_example": {"p50": 900, "p95": 1800, "max": 2400},
        },
        "split": {
            "validation_percent": 10,
            "train": {
                "examples": examples - validation_examples,
                "trainable_pairs": (examples - validation_examples) * 3,
                "tokens": train_tokens,
                "assistant_tokens": train_tokens // 2,
            },
            "validation": {
                "examples": validation_examples,
                "trainable_pairs": validation_examples * 3,
                "tokens": validation_tokens,
                "assistant_tokens": validation_tokens // 2,
            },
        },
    }


@pytest.fixture
def one_b_model(db):
    return BaseModel.objects.create(
        hf_id="test/one-b",
        display_name="One B",
        parameters_billions=Decimal("1.0"),
        context_length=8192,
        hidden_size=2048,
        num_layers=16,
        intermediate_size=8192,
    )


@pytest.fixture
def test_gpu(db):
    return GpuType.objects.create(
        key="TEST-80GB", name="Test 80GB", memory_gb=80, peak_tflops_bf16=600, price_per_hour=Decimal("3.60")
    )


def _hp(**overrides):
    return hyperparameters_resolve(preset=None, overrides=overrides)  # balanced row: r16, 3 ep, batch 2, 2048


# --- arithmetic ---------------------------------------------------------------------------


def test_estimate_matches_hand_computation(one_b_model, test_gpu, owner_user):
    dataset = DatasetFactory(owner=owner_user, statistics=statistics(45_000_000, 7_500_000))
    estimate = training_estimate(
        dataset=dataset,
        base_model=one_b_model,
        hyperparameters=_hp(epochs=2),
        gpu_type=test_gpu,
        gpu_count=1,
        mfu=0.5,
    )
    # tokens = 45,000,000 × 2 epochs = 90,000,000
    assert estimate["tokens"] == 90_000_000
    assert estimate["train_tokens_per_epoch"] == 45_000_000
    assert estimate["validation_tokens"] == 7_500_000
    # throughput = 1 × 600e12 × 0.5 / (6 × 1e9) = 50,000 tokens/s
    assert estimate["throughput_tokens_per_second"] == 50_000.0
    # load = 1e9 × 2 B / 1e9 B/s = 2 s; train = 90e6 / 5e4 = 1800 s; evaluation = 7.5e6 × 2 / (3 × 5e4) = 100 s
    assert estimate["time_seconds"] == {"load": 2.0, "train": 1800.0, "evaluation": 100.0, "total": 1902.0}
    # gpu_hours = 1902 / 3600 × 1 = 0.528333…; cost = 0.528333… × 3.60 = 1.902 → "1.90"
    assert estimate["gpu_hours"] == 0.5283
    assert estimate["cost_usd"] == "1.90"
    assert estimate["mfu"] == 0.5
    memory = estimate["memory"]
    # LoRA per layer and rank: q,k,v,o 4 × (2048 + 2048) + gate, up 2 × (2048 + 8192) + down (8192 + 2048)
    #   = 16,384 + 20,480 + 10,240 = 47,104; × 16 layers × rank 16 = 12,058,624 parameters
    assert memory["lora_parameters"] == 12_058_624
    # weights 2 × 1e9 B = 2.0 GB; LoRA 2 × 12,058,624 = 24,117,248 B; optimizer 16 × 12,058,624 = 192,937,984 B
    assert memory["weights_gb"] == 2.0
    assert memory["lora_gb"] == 0.024
    assert memory["optimizer_gb"] == 0.193
    # activations: batch 2 × seq 2048 = 4,096 tokens; 4,096 × 2048 × 16 layers × 2 B = 268,435,456
    #   + one layer 4,096 × 2048 × 34 B = 285,212,672 → 553,648,128 B
    assert memory["activations_gb"] == 0.554
    # total = 2,000,000,000 + 24,117,248 + 192,937,984 + 553,648,128 = 2,770,703,360 B; usable 0.9 × 80 = 72 GB
    assert memory["total_gb"] == 2.771
    assert memory["available_gb"] == 72.0
    assert memory["fits"] is True
    assert memory["suggestions"] == []
    assert estimate["assumptions"]["memory_headroom"] == 0.9


def test_estimate_with_seeded_catalogue_and_default_mfu(owner_user, settings):
    catalogue_seed()
    settings.TRAINING_MFU = 0.35
    dataset = DatasetFactory(owner=owner_user, statistics=statistics(1_000_000, 100_000))
    estimate = training_estimate(
        dataset=dataset,
        base_model=BaseModel.objects.get(hf_id="Qwen/Qwen2.5-7B-Instruct"),
        hyperparameters=_hp(),
        gpu_type=GpuType.objects.get(key="H100-80GB"),
        gpu_count=2,
    )
    # throughput = 2 × 989e12 × 0.35 / (6 × 7.6e9) = 692.3e12 / 45.6e9 = 15,182.017… tokens/s
    assert estimate["throughput_tokens_per_second"] == 15182.0
    # load 7.6e9 × 2 / 1e9 = 15.2 s; train 3,000,000 / 15,182.017 = 197.602 s;
    # evaluation 100,000 × 3 / (3 × 15,182.017) = 6.587 s; total 219.389 s
    assert estimate["time_seconds"] == {"load": 15.2, "train": 197.6, "evaluation": 6.6, "total": 219.4}
    # gpu_hours = 219.389 / 3600 × 2 = 0.121883; cost = 0.121883 × 4.20 = 0.5119 → "0.51"
    assert estimate["gpu_hours"] == 0.1219
    assert estimate["cost_usd"] == "0.51"
    assert estimate["mfu"] == 0.35
    # LoRA: 28 × 16 × (4 × 7168 + 2 × 22,528 + 22,528) = 448 × 96,256 = 43,122,688 parameters
    assert estimate["memory"]["lora_parameters"] == 43_122_688
    # weights 15.2 GB + LoRA 0.086 + optimizer 0.690 + activations (4096 × 3584 × (28 × 2 + 34) = 1.321 GB)
    assert estimate["memory"]["total_gb"] == pytest.approx(15.2 + 0.086 + 0.690 + 1.321, abs=0.002)
    assert estimate["memory"]["available_gb"] == 144.0
    assert estimate["memory"]["fits"] is True


def test_estimate_does_not_fit_and_suggests(one_b_model, owner_user):
    catalogue_seed()
    small = GpuType.objects.create(key="TINY-2GB", name="Tiny", memory_gb=2, peak_tflops_bf16=100, price_per_hour=1)
    dataset = DatasetFactory(owner=owner_user, statistics=statistics(1_000_000, 0))
    estimate = training_estimate(
        dataset=dataset, base_model=one_b_model, hyperparameters=_hp(), gpu_type=small, gpu_count=1
    )
    memory = estimate["memory"]
    # 2.771 GB (see the hand computation above) > 0.9 × 1 × 2 GB = 1.8 GB
    assert memory["fits"] is False
    assert memory["available_gb"] == 1.8
    by_code = {s["code"]: s for s in memory["suggestions"]}
    assert list(by_code) == ["reduce_tokens_per_batch", "load_in_4bit", "larger_gpu"]
    # batch 1: 2.771 − 0.277 (half the activations) = 2.494 GB > 1.8 GB
    assert by_code["reduce_tokens_per_batch"]["would_fit"] is False
    assert "batch size 2 × max sequence length 2048 = 4,096 tokens" in by_code["reduce_tokens_per_batch"]["message"]
    # 4-bit: weights 2.0 → 0.5 GB, total 1.271 GB ≤ 1.8 GB
    assert by_code["load_in_4bit"]["would_fit"] is True
    # fewest GPUs first, then the least memory: one A100-40GB
    assert by_code["larger_gpu"]["gpu_type"] == "A100-40GB"
    assert by_code["larger_gpu"]["gpu_count"] == 1
    assert "A100-40GB" in by_code["larger_gpu"]["message"]


def test_estimate_nothing_in_the_catalogue_fits(owner_user):
    catalogue_seed()
    huge = BaseModel.objects.create(
        hf_id="test/huge",
        display_name="Huge",
        parameters_billions=Decimal("2000"),
        context_length=8192,
        hidden_size=16384,
        num_layers=120,
        intermediate_size=65536,
    )
    dataset = DatasetFactory(owner=owner_user, statistics=statistics(1000, 100))
    estimate = training_estimate(
        dataset=dataset,
        base_model=huge,
        hyperparameters=_hp(),
        gpu_type=GpuType.objects.get(key="H200-141GB"),
        gpu_count=8,
    )
    larger = estimate["memory"]["suggestions"][-1]
    assert estimate["memory"]["fits"] is False
    assert larger == {
        "code": "larger_gpu",
        "message": larger["message"],
        "would_fit": False,
        "gpu_type": None,
        "gpu_count": None,
    }
    assert "No GPU type in the catalogue fits" in larger["message"]


def test_lora_parameters_of_attention_only(one_b_model):
    # 16 layers × rank 8 × 4 × (2048 + 2048) = 2,097,152
    assert lora_parameter_count(base_model=one_b_model, rank=8, target_modules=["q", "k", "v", "o"]) == 2_097_152


def test_estimate_without_split_statistics_counts_zero_tokens(one_b_model, test_gpu, owner_user):
    dataset = DatasetFactory(owner=owner_user, statistics={})
    estimate = training_estimate(
        dataset=dataset, base_model=one_b_model, hyperparameters=_hp(), gpu_type=test_gpu, gpu_count=1
    )
    assert estimate["tokens"] == 0
    assert estimate["time_seconds"]["total"] == 2.0  # the model load only


@pytest.mark.parametrize("count", [0, 9, -1, True])
def test_estimate_refuses_a_bad_gpu_count(count, one_b_model, test_gpu, owner_user):
    dataset = DatasetFactory(owner=owner_user, statistics=statistics(1000, 100))
    with pytest.raises(ApplicationError) as caught:
        training_estimate(
            dataset=dataset, base_model=one_b_model, hyperparameters=_hp(), gpu_type=test_gpu, gpu_count=count
        )
    assert caught.value.code == "invalid_gpu_count"


def test_estimate_refuses_a_dataset_that_is_not_ready(one_b_model, test_gpu, owner_user):
    dataset = DatasetFactory(owner=owner_user, status="validating")
    with pytest.raises(ApplicationError) as caught:
        training_estimate(
            dataset=dataset, base_model=one_b_model, hyperparameters=_hp(), gpu_type=test_gpu, gpu_count=1
        )
    assert caught.value.code == "dataset_not_ready"


# --- hyperparameters ----------------------------------------------------------------------


def test_resolve_without_overrides_is_the_preset_plus_defaults(db):
    catalogue_seed()
    resolved = hyperparameters_resolve(preset=HyperparameterPreset.objects.get(key="conservative"))
    assert resolved == {
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


def test_resolve_applies_overrides_and_normalises(db):
    resolved = hyperparameters_resolve(
        preset=None,
        overrides={"rank": 64.0, "learning_rate": 5e-4, "target_modules": ["down", "q", "q"], "max_seq_length": 4096},
    )
    assert resolved["rank"] == 64 and isinstance(resolved["rank"], int)
    assert resolved["learning_rate"] == 5e-4
    assert resolved["target_modules"] == ["q", "down"]
    assert resolved["max_seq_length"] == 4096
    assert resolved["epochs"] == 3  # the balanced row without a preset


def test_range_bounds_are_inclusive(db):
    low = {name: (lo if kind is float else int(lo)) for name, (kind, lo, _) in RANGES.items()}
    high = {name: (hi if kind is float else int(hi)) for name, (kind, _, hi) in RANGES.items()}
    assert hyperparameters_resolve(preset=None, overrides=low)["seed"] == 0
    assert hyperparameters_resolve(preset=None, overrides=high)["seed"] == 2**31 - 1


OUT_OF_RANGE = [
    ("learning_rate", 9e-6),
    ("learning_rate", 1.1e-3),
    ("batch_size", 0),
    ("batch_size", 65),
    ("grad_accum", 0),
    ("grad_accum", 65),
    ("epochs", 0),
    ("epochs", 21),
    ("rank", 3),
    ("rank", 129),
    ("alpha", 3),
    ("alpha", 257),
    ("dropout", -0.01),
    ("dropout", 0.51),
    ("max_seq_length", 255),
    ("max_seq_length", 32769),
    ("warmup_ratio", -0.1),
    ("warmup_ratio", 0.21),
    ("seed", -1),
    ("seed", 2**31),
]


@pytest.mark.parametrize(("field", "value"), OUT_OF_RANGE)
def test_each_field_out_of_range_is_a_field_error(field, value, db):
    with pytest.raises(ApplicationError) as caught:
        hyperparameters_resolve(preset=None, overrides={field: value})
    assert caught.value.code == "invalid_hyperparameters"
    assert list(caught.value.errors) == [field]
    assert "between" in caught.value.errors[field]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rank", 8.5, "integer"),
        ("rank", True, "integer"),
        ("rank", "16", "integer"),
        ("learning_rate", "fast", "number"),
        ("learning_rate", float("nan"), "finite"),
        ("dropout", None, "null"),
        ("target_modules", [], "at least one"),
        ("target_modules", ["q", "lm_head"], "lm_head"),
        ("target_modules", "q,k", "list"),
        ("bogus", 1, "Unknown"),
    ],
)
def test_bad_types_and_modules_are_field_errors(field, value, message, db):
    with pytest.raises(ApplicationError) as caught:
        hyperparameters_resolve(preset=None, overrides={field: value})
    assert caught.value.code == "invalid_hyperparameters"
    assert message in caught.value.errors[field]


def test_all_bad_fields_are_reported_at_once(db):
    with pytest.raises(ApplicationError) as caught:
        hyperparameters_resolve(preset=None, overrides={"rank": 1, "epochs": 50, "dropout": 0.9})
    assert set(caught.value.errors) == {"rank", "epochs", "dropout"}


# --- presets and the seed -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "key"),
    [(0, "conservative"), (149, "conservative"), (150, "balanced"), (300, "balanced"), (301, "aggressive")],
)
def test_preset_suggestion_boundaries(count, key, db):
    catalogue_seed()
    assert preset_suggest(conversation_count=count).key == key


def test_preset_suggestion_falls_back_to_default_and_none(db):
    assert preset_suggest(conversation_count=10) is None
    catalogue_seed()
    HyperparameterPreset.objects.filter(key="conservative").update(is_active=False)
    assert preset_suggest(conversation_count=10).key == "balanced"


def test_seed_creates_the_catalogue_once(db):
    assert catalogue_seed() == {"base_models": 5, "presets": 3, "gpu_types": 5}
    assert catalogue_seed() == {"base_models": 0, "presets": 0, "gpu_types": 0}
    assert BaseModel.objects.count() == 5 and HyperparameterPreset.objects.count() == 3
    assert list(
        GpuType.objects.order_by("key").values_list("key", "memory_gb", "peak_tflops_bf16", "price_per_hour")
    ) == [
        ("A100-40GB", 40, 312, Decimal("2.80")),
        ("A100-80GB", 80, 312, Decimal("3.50")),
        ("H100-80GB", 80, 989, Decimal("4.20")),
        ("H200-141GB", 141, 989, Decimal("4.90")),
        ("L40S-48GB", 48, 362, Decimal("1.90")),
    ]
    assert HyperparameterPreset.objects.get(is_default=True).key == "balanced"


def test_seed_keeps_admin_edits_and_additions(db):
    catalogue_seed()
    GpuType.objects.filter(key="H100-80GB").update(price_per_hour=Decimal("3.99"), is_active=False)
    HyperparameterPreset.objects.filter(key="balanced").update(rank=24, description="Ours.")
    GpuType.objects.create(key="B200-192GB", name="B200", memory_gb=192, peak_tflops_bf16=2250, price_per_hour=8)
    BaseModel.objects.filter(hf_id="Qwen/Qwen2.5-0.5B-Instruct").delete()

    call_command("seed_training", verbosity=0)

    h100 = GpuType.objects.get(key="H100-80GB")
    assert (h100.price_per_hour, h100.is_active) == (Decimal("3.99"), False)
    balanced = HyperparameterPreset.objects.get(key="balanced")
    assert (balanced.rank, balanced.description) == (24, "Ours.")
    assert GpuType.objects.filter(key="B200-192GB").exists()
    assert BaseModel.objects.filter(hf_id="Qwen/Qwen2.5-0.5B-Instruct").exists()  # missing seeded rows come back


def test_tiny_test_model_row(db):
    catalogue_seed()
    tiny = BaseModel.objects.get(hf_id=TINY_TEST_MODEL_HF_ID)
    # 512×64 embeddings + 64×512 head + 2 × (4×64×64 + 3×64×128 + 2×64) + 64 = 147,776
    assert TINY_TEST_MODEL_PARAMETERS == 147_776
    assert tiny.parameters_billions == Decimal("0.000148")
    assert (tiny.hidden_size, tiny.num_layers, tiny.intermediate_size, tiny.context_length) == (64, 2, 128, 2048)
    assert tiny.is_test_model and tiny.local_path == "tiny-test"
    assert tiny.license_note == "built locally for tests"
    assert {row["hf_id"] for row in BASE_MODELS} == set(BaseModel.objects.values_list("hf_id", flat=True))
