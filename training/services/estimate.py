"""The training estimate of SPEC §10.2: tokens, throughput, time, GPU-hours, cost and a memory check.

Every number is a documented approximation, made server-side so the UI, the API and the stored job agree.

Tokens
    ``train tokens per epoch`` is ``dataset.statistics["split"]["train"]["tokens"]``: all tokens of the training
    split, because every token runs forward and backward even though the loss covers assistant tokens only.
    The dataset's counts are the validator's estimate (UTF-8 characters / 4). Examples longer than
    ``max_seq_length`` are truncated by the trainer, but the estimate uses the counts as they are, so it is an
    upper bound for such datasets. ``tokens = train tokens per epoch × epochs``.
Throughput
    ``gpu_count × peak_tflops_bf16 × 1e12 × MFU / (6 × parameters)`` tokens/s: about 6 FLOPs per parameter per
    token for forward + backward (Kaplan et al. 2020). LoRA freezes the base model, but activations still flow
    backward through it, so the 6 × N rule stays a fair (slightly pessimistic) cost. MFU (model FLOPs
    utilisation) defaults to ``settings.TRAINING_MFU`` (0.35); multi-GPU scaling is assumed linear.
Time
    ``load`` = parameters × 2 bytes (bf16) at 1 GB/s; ``train`` = tokens / throughput; ``evaluation`` =
    validation tokens × epochs / (3 × throughput) (one evaluation pass per epoch, forward only ≈ ⅓ of a training
    step). ``gpu_hours = total seconds / 3600 × gpu_count``; ``cost_usd = gpu_hours × price_per_hour`` as a
    Decimal string with 2 decimals (half up).
Memory (1 GB = 1e9 bytes, also for the catalogue's ``memory_gb``: conservative, cards have GiB)
    * weights: 2 bytes × parameters (bf16).
    * LoRA parameters: ``num_layers × rank × Σ (d_in + d_out)`` over the target modules: q, k, v, o use
      hidden → hidden (models with grouped-query attention have narrower k/v projections, so hidden is an
      upper bound), gate and up hidden → intermediate, down intermediate → hidden. Stored in bf16 (2 bytes
      each, ``lora_gb``) with an fp32 master copy, fp32 gradient and Adam m and v (16 bytes each,
      ``optimizer_gb``).
    * activations with gradient checkpointing (Korthikanti et al. 2022, "Reducing Activation Recomputation in
      Large Transformer Models"): each layer keeps its bf16 input, ``batch × max_seq_length × hidden × 2``
      bytes × layers, plus one layer's full activations during recomputation, ``batch × max_seq_length ×
      hidden × 34`` bytes (the paper's 34·s·b·h without the attention-score term, which fused / flash
      attention does not materialise). Logits, the CUDA context and fragmentation are not modelled; the 10%
      headroom below is meant to absorb them. Approximate.
    * fits when ``total ≤ 0.9 × gpu_count × memory_gb``. Memory is pooled over the GPUs as SPEC §10.2 states
      (sharded weights); with plain data parallelism each GPU would need the whole model.
    When it does not fit, ``suggestions`` (each ``{code, message, would_fit}``) name fewer tokens per batch
    (batch size 1 at the same sequence length), 4-bit loading (QLoRA: weights ÷ 4) and a larger GPU or more GPUs
    (the smallest active catalogue option that fits: fewest GPUs, then least memory, then cheapest).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings

from brightrun.errors import ApplicationError
from datasets.models import Dataset
from training.models import BaseModel, GpuType

GB = 1e9
BF16_BYTES = 2
LORA_TRAINING_BYTES = 16  # fp32 master weight, gradient, Adam m and v
LOAD_BYTES_PER_SECOND = 1e9
FLOPS_PER_PARAMETER_TOKEN = 6
EVALUATION_COST_FACTOR = 3  # an evaluation token costs 1/3 of a training token (forward only)
ACTIVATION_BYTES_PER_LAYER_INPUT = 2  # checkpointed bf16 layer input per token × hidden
ACTIVATION_BYTES_FULL_LAYER = 34  # Korthikanti et al. 2022, per token × hidden, one layer recomputed
MEMORY_HEADROOM = 0.9
QUANTIZED_WEIGHT_DIVISOR = 4  # 4-bit instead of 16-bit weights


def _split_tokens(dataset: Dataset) -> tuple[int, int]:
    split = (dataset.statistics or {}).get("split") or {}

    def tokens(part: str) -> int:
        value = (split.get(part) or {}).get("tokens") or 0
        return max(int(value), 0) if isinstance(value, (int, float)) else 0

    return tokens("train"), tokens("validation")


def lora_parameter_count(*, base_model: BaseModel, rank: int, target_modules: list[str]) -> int:
    """LoRA parameters for ``rank`` on ``target_modules`` (k/v counted at hidden width: an upper bound)."""
    hidden, inter = base_model.hidden_size, base_model.intermediate_size
    widths = {
        "q": hidden + hidden,
        "k": hidden + hidden,
        "v": hidden + hidden,
        "o": hidden + hidden,
        "gate": hidden + inter,
        "up": hidden + inter,
        "down": inter + hidden,
    }
    return base_model.num_layers * rank * sum(widths[m] for m in target_modules)


def _memory_bytes(
    *, base_model: BaseModel, parameters: float, hyperparameters: dict[str, Any], batch_size: int, weight_divisor=1
) -> dict[str, float]:
    lora = lora_parameter_count(
        base_model=base_model, rank=hyperparameters["rank"], target_modules=hyperparameters["target_modules"]
    )
    tokens_per_batch = batch_size * hyperparameters["max_seq_length"]
    hidden = base_model.hidden_size
    parts = {
        "weights": BF16_BYTES * parameters / weight_divisor,
        "lora": BF16_BYTES * lora,
        "optimizer": LORA_TRAINING_BYTES * lora,
        "activations": tokens_per_batch * hidden * base_model.num_layers * ACTIVATION_BYTES_PER_LAYER_INPUT
        + tokens_per_batch * hidden * ACTIVATION_BYTES_FULL_LAYER,
    }
    parts["total"] = sum(parts.values())
    parts["lora_parameters"] = lora
    return parts


def _usable_bytes(gpu_type: GpuType, gpu_count: int) -> float:
    return MEMORY_HEADROOM * gpu_count * gpu_type.memory_gb * GB


def _smallest_fitting_gpu(total_bytes: float) -> tuple[GpuType, int] | None:
    options = []
    for candidate in GpuType.objects.active():
        if candidate.memory_gb <= 0:
            continue
        count = max(1, math.ceil(total_bytes / (MEMORY_HEADROOM * candidate.memory_gb * GB)))
        if count <= candidate.max_count:
            options.append((count, candidate.memory_gb, candidate.price_per_hour, candidate.key, candidate))
    if not options:
        return None
    best = min(options, key=lambda o: o[:4])
    return best[4], best[0]


def _suggestions(
    *,
    base_model: BaseModel,
    parameters: float,
    hyperparameters: dict[str, Any],
    gpu_type: GpuType,
    gpu_count: int,
    memory: dict[str, float],
) -> list[dict[str, Any]]:
    usable = _usable_bytes(gpu_type, gpu_count)
    batch, seq = hyperparameters["batch_size"], hyperparameters["max_seq_length"]
    smaller = _memory_bytes(base_model=base_model, parameters=parameters, hyperparameters=hyperparameters, batch_size=1)
    quantized = _memory_bytes(
        base_model=base_model,
        parameters=parameters,
        hyperparameters=hyperparameters,
        batch_size=batch,
        weight_divisor=QUANTIZED_WEIGHT_DIVISOR,
    )
    suggestions = [
        {
            "code": "reduce_tokens_per_batch",
            "message": (
                f"Use fewer tokens per batch: batch size {batch} × max sequence length {seq} = {batch * seq:,} "
                f"tokens need about {memory['activations'] / GB:.1f} GB of activations. Lower the batch size "
                f"(raise gradient accumulation to keep the effective batch) or the max sequence length; "
                f"batch size 1 {'would fit' if smaller['total'] <= usable else 'alone would not fit'}."
            ),
            "would_fit": smaller["total"] <= usable,
        },
        {
            "code": "load_in_4bit",
            "message": (
                f"Load the base model in 4-bit (QLoRA): weights drop from {memory['weights'] / GB:.1f} GB to "
                f"about {quantized['weights'] / GB:.1f} GB; "
                f"{'that would fit' if quantized['total'] <= usable else 'that alone would not fit'}."
            ),
            "would_fit": quantized["total"] <= usable,
        },
    ]
    option = _smallest_fitting_gpu(memory["total"])
    if option is None:
        suggestions.append(
            {
                "code": "larger_gpu",
                "message": "No GPU type in the catalogue fits this configuration; combine 4-bit loading with fewer "
                "tokens per batch.",
                "would_fit": False,
                "gpu_type": None,
                "gpu_count": None,
            }
        )
    else:
        larger, count = option
        suggestions.append(
            {
                "code": "larger_gpu",
                "message": f"Use a larger GPU or more GPUs: {count} × {larger.key} ({larger.memory_gb} GB each) fits.",
                "would_fit": True,
                "gpu_type": larger.key,
                "gpu_count": count,
            }
        )
    return suggestions


def _gb(value: float) -> float:
    return round(value / GB, 3)


def training_estimate(
    *,
    dataset: Dataset,
    base_model: BaseModel,
    hyperparameters: dict[str, Any],
    gpu_type: GpuType,
    gpu_count: int,
    mfu: float | None = None,
) -> dict[str, Any]:
    """Estimate tokens, time, GPU-hours, cost and memory fit of one training job (formulas: module docstring).

    Called by the estimate API, the training form and ``training_job_create`` (which stores the result on the
    job). Read-only apart from one query over active GPU types when the job does not fit; pure otherwise.
    ``hyperparameters`` must be the resolved dict (``hyperparameters_resolve``). The caller scopes ``dataset``
    to its user; this function only checks it is ready.

    Raises ``ApplicationError`` with code ``dataset_not_ready``, ``invalid_gpu_count`` (outside 1 ..
    ``gpu_type.max_count``) or ``invalid_catalogue`` (a catalogue row with zero parameters or TFLOPS).
    """
    if dataset.status != Dataset.Status.READY:
        raise ApplicationError(
            f"The dataset is {dataset.status}; only a ready dataset can be trained on.", code="dataset_not_ready"
        )
    if isinstance(gpu_count, bool) or not isinstance(gpu_count, int) or not 1 <= gpu_count <= gpu_type.max_count:
        raise ApplicationError(
            f"GPU count must be between 1 and {gpu_type.max_count} for {gpu_type.key}.",
            code="invalid_gpu_count",
            errors={"gpu_count": f"Must be between 1 and {gpu_type.max_count}."},
        )
    parameters = float(base_model.parameters_billions) * 1e9
    if parameters <= 0 or gpu_type.peak_tflops_bf16 <= 0:
        raise ApplicationError(
            "The catalogue row has no parameter count or throughput; fix it in the admin.", code="invalid_catalogue"
        )
    mfu = float(settings.TRAINING_MFU if mfu is None else mfu)
    epochs = hyperparameters["epochs"]

    train_per_epoch, validation_tokens = _split_tokens(dataset)
    tokens = train_per_epoch * epochs
    throughput = gpu_count * gpu_type.peak_tflops_bf16 * 1e12 * mfu / (FLOPS_PER_PARAMETER_TOKEN * parameters)
    load_seconds = parameters * BF16_BYTES / LOAD_BYTES_PER_SECOND
    train_seconds = tokens / throughput
    evaluation_seconds = validation_tokens * epochs / (EVALUATION_COST_FACTOR * throughput)
    total_seconds = load_seconds + train_seconds + evaluation_seconds
    gpu_hours = total_seconds / 3600 * gpu_count
    cost = (Decimal(repr(gpu_hours)) * gpu_type.price_per_hour).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    memory = _memory_bytes(
        base_model=base_model,
        parameters=parameters,
        hyperparameters=hyperparameters,
        batch_size=hyperparameters["batch_size"],
    )
    usable = _usable_bytes(gpu_type, gpu_count)
    fits = memory["total"] <= usable
    suggestions = (
        []
        if fits
        else _suggestions(
            base_model=base_model,
            parameters=parameters,
            hyperparameters=hyperparameters,
            gpu_type=gpu_type,
            gpu_count=gpu_count,
            memory=memory,
        )
    )
    return {
        "base_model": base_model.hf_id,
        "gpu_type": gpu_type.key,
        "gpu_count": gpu_count,
        "price_per_hour": str(gpu_type.price_per_hour),
        "epochs": epochs,
        "tokens": tokens,
        "train_tokens_per_epoch": train_per_epoch,
        "validation_tokens": validation_tokens,
        "throughput_tokens_per_second": round(throughput, 1),
        "mfu": mfu,
        "time_seconds": {
            "load": round(load_seconds, 1),
            "train": round(train_seconds, 1),
            "evaluation": round(evaluation_seconds, 1),
            "total": round(total_seconds, 1),
        },
        "gpu_hours": round(gpu_hours, 4),
        "cost_usd": str(cost),
        "memory": {
            "weights_gb": _gb(memory["weights"]),
            "lora_parameters": int(memory["lora_parameters"]),
            "lora_gb": _gb(memory["lora"]),
            "optimizer_gb": _gb(memory["optimizer"]),
            "activations_gb": _gb(memory["activations"]),
            "total_gb": _gb(memory["total"]),
            "available_gb": _gb(usable),
            "fits": fits,
            "suggestions": suggestions,
        },
        "assumptions": {
            "mfu": mfu,
            "flops_per_token": "6 × parameters (forward + backward through the frozen base model)",
            "tokens": "train split tokens as estimated by validation (UTF-8 characters / 4); the loss covers "
            "assistant tokens only but every token runs forward and backward",
            "truncation": "examples longer than max_seq_length are truncated in training; the estimate counts "
            "their tokens as they are (upper bound)",
            "load_gb_per_second": LOAD_BYTES_PER_SECOND / GB,
            "evaluation": "one pass over the validation split per epoch at 1/3 of the training cost per token",
            "bytes_per_gb": GB,
            "memory_headroom": MEMORY_HEADROOM,
            "lora": "num_layers × rank × Σ(d_in + d_out); k/v at hidden width (upper bound under GQA); "
            "bf16 weights + 16 bytes/parameter of fp32 master, gradient and Adam moments",
            "activations": "gradient checkpointing: batch × seq × hidden × layers × 2 bytes + one layer's "
            "batch × seq × hidden × 34 bytes (Korthikanti et al. 2022); approximate",
            "multi_gpu": "memory pooled over the GPUs and throughput scales linearly with their count",
        },
    }
