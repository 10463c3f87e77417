"""The seeded training catalogues (SPEC §10.1): base models, hyperparameter presets, GPU types.

``catalogue_seed`` creates the rows that are missing and leaves every existing row exactly as it is: staff edit
prices, descriptions, active flags and ranges in the admin, and a deploy must never undo that. Rows are matched
by ``hf_id`` (base models) or ``key`` (presets, GPU types); rows staff added are never touched or deleted. A
changed seed value therefore reaches an existing installation only through the admin (or a data migration),
and a seeded row that staff delete comes back on the next start: retire a row by unticking "active" instead.

Architecture values (hidden size, layers, MLP width) come from each model's public ``config.json`` and feed the
memory estimate. The tiny test model is the LLaMA-style config that ``training.trainer.tiny`` builds locally
(vocab 512, hidden 64, 2 layers, 4 heads, MLP 128, untied embeddings): 512×64 embeddings + 64×512 LM head +
2 × (4×64×64 attention + 3×64×128 MLP + 2×64 norms) + 64 final norm = 32,768 + 32,768 + 2 × 41,088 + 64
= 147,776 parameters (checked against ``transformers.LlamaForCausalLM`` on the meta device). The column keeps
6 decimals, so it is stored as 0.000148 billion.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction

from training.models import BaseModel, GpuType, HyperparameterPreset

TINY_TEST_MODEL_HF_ID = "brightrun/tiny-test-llama"
TINY_TEST_MODEL_PARAMETERS = 512 * 64 + 64 * 512 + 2 * (4 * 64 * 64 + 3 * 64 * 128 + 2 * 64) + 64  # 147,776

BASE_MODELS: list[dict[str, Any]] = [
    {
        "hf_id": "Qwen/Qwen2.5-7B-Instruct",
        "display_name": "Qwen2.5 7B Instruct",
        "parameters_billions": Decimal("7.6"),
        "context_length": 32768,
        "hidden_size": 3584,
        "num_layers": 28,
        "intermediate_size": 18944,
        "license_note": "Apache 2.0",
    },
    {
        "hf_id": "meta-llama/Llama-3.1-8B-Instruct",
        "display_name": "Llama 3.1 8B Instruct",
        "parameters_billions": Decimal("8.0"),
        "context_length": 131072,
        "hidden_size": 4096,
        "num_layers": 32,
        "intermediate_size": 14336,
        "license_note": "Llama 3.1 Community License (gated on Hugging Face; accept the license first)",
    },
    {
        "hf_id": "mistralai/Mistral-7B-Instruct-v0.3",
        "display_name": "Mistral 7B Instruct v0.3",
        "parameters_billions": Decimal("7.2"),
        "context_length": 32768,
        "hidden_size": 4096,
        "num_layers": 32,
        "intermediate_size": 14336,
        "license_note": "Apache 2.0",
    },
    {
        "hf_id": "Qwen/Qwen2.5-0.5B-Instruct",
        "display_name": "Qwen2.5 0.5B Instruct",
        "parameters_billions": Decimal("0.5"),
        "context_length": 32768,
        "hidden_size": 896,
        "num_layers": 24,
        "intermediate_size": 4864,
        "license_note": "Apache 2.0",
    },
    {
        "hf_id": TINY_TEST_MODEL_HF_ID,
        "display_name": "Tiny test model (CPU, seconds)",
        "parameters_billions": (Decimal(TINY_TEST_MODEL_PARAMETERS) / Decimal(10**9)).quantize(Decimal("0.000001")),
        "context_length": 2048,
        "hidden_size": 64,
        "num_layers": 2,
        "intermediate_size": 128,
        "license_note": "built locally for tests",
        "local_path": "tiny-test",
        "is_test_model": True,
    },
]

PRESETS: list[dict[str, Any]] = [
    {
        "key": "conservative",
        "name": "Conservative",
        "description": "Small adapter on the attention projections; for small datasets (under 150 conversations).",
        "rank": 8,
        "alpha": 16,
        "dropout": 0.05,
        "learning_rate": 1e-4,
        "epochs": 2,
        "batch_size": 4,
        "grad_accum": 1,
        "warmup_ratio": 0.03,
        "target_modules": ["q", "k", "v", "o"],
        "is_default": False,
        "suggested_min_conversations": 0,
        "suggested_max_conversations": 149,
        "sort_order": 1,
    },
    {
        "key": "balanced",
        "name": "Balanced",
        "description": "Attention and MLP projections; the default for 150–300 conversations.",
        "rank": 16,
        "alpha": 32,
        "dropout": 0.05,
        "learning_rate": 2e-4,
        "epochs": 3,
        "batch_size": 2,
        "grad_accum": 2,
        "warmup_ratio": 0.05,
        "target_modules": ["q", "k", "v", "o", "gate", "up", "down"],
        "is_default": True,
        "suggested_min_conversations": 150,
        "suggested_max_conversations": 300,
        "sort_order": 2,
    },
    {
        "key": "aggressive",
        "name": "Aggressive",
        "description": "Larger adapter, more epochs; for datasets over 300 conversations.",
        "rank": 32,
        "alpha": 64,
        "dropout": 0.1,
        "learning_rate": 3e-4,
        "epochs": 4,
        "batch_size": 1,
        "grad_accum": 4,
        "warmup_ratio": 0.05,
        "target_modules": ["q", "k", "v", "o", "gate", "up", "down"],
        "is_default": False,
        "suggested_min_conversations": 301,
        "suggested_max_conversations": None,
        "sort_order": 3,
    },
]

GPU_TYPES: list[dict[str, Any]] = [
    {"key": "A100-40GB", "name": "NVIDIA A100 40GB", "memory_gb": 40, "peak_tflops_bf16": 312, "price": "2.80"},
    {"key": "A100-80GB", "name": "NVIDIA A100 80GB", "memory_gb": 80, "peak_tflops_bf16": 312, "price": "3.50"},
    {"key": "H100-80GB", "name": "NVIDIA H100 80GB", "memory_gb": 80, "peak_tflops_bf16": 989, "price": "4.20"},
    {"key": "H200-141GB", "name": "NVIDIA H200 141GB", "memory_gb": 141, "peak_tflops_bf16": 989, "price": "4.90"},
    {"key": "L40S-48GB", "name": "NVIDIA L40S 48GB", "memory_gb": 48, "peak_tflops_bf16": 362, "price": "1.90"},
]


@transaction.atomic
def catalogue_seed() -> dict[str, int]:
    """Create the missing seeded catalogue rows; existing rows (and admin additions) stay untouched.

    Called by ``manage.py seed_training`` on every start (``make run``, the Docker entrypoint) and by tests.
    One transaction; idempotent: a second run creates nothing. Returns the number of rows created per
    catalogue: ``{"base_models": n, "presets": n, "gpu_types": n}``.
    """
    created = {"base_models": 0, "presets": 0, "gpu_types": 0}
    for row in BASE_MODELS:
        values = {k: v for k, v in row.items() if k != "hf_id"}
        _, was_created = BaseModel.objects.get_or_create(hf_id=row["hf_id"], defaults=values)
        created["base_models"] += was_created
    for row in PRESETS:
        values = {k: v for k, v in row.items() if k != "key"}
        _, was_created = HyperparameterPreset.objects.get_or_create(key=row["key"], defaults=values)
        created["presets"] += was_created
    for row in GPU_TYPES:
        values = {
            "name": row["name"],
            "memory_gb": row["memory_gb"],
            "peak_tflops_bf16": row["peak_tflops_bf16"],
            "price_per_hour": Decimal(row["price"]),
            "max_count": 8,
        }
        _, was_created = GpuType.objects.get_or_create(key=row["key"], defaults=values)
        created["gpu_types"] += was_created
    return created
