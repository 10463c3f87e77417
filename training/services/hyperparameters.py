"""Final LoRA hyperparameters: a preset, the caller's overrides and the custom ranges of SPEC §10.1.

The final dict (stored on the job and handed to the trainer) always has every key of ``FIELDS``:
``rank, alpha, dropout, learning_rate, epochs, batch_size, grad_accum, warmup_ratio, target_modules,
max_seq_length, seed``. Values come from the preset, then the overrides; ``max_seq_length`` (2048) and ``seed``
(42) are not preset columns and default here. Without a preset the values of the default ("balanced") row of the
SPEC table are the base, so a caller can always resolve a complete dict.
"""

from __future__ import annotations

import math
from typing import Any

from brightrun.errors import ApplicationError
from training.models import HyperparameterPreset

# Inclusive ranges (SPEC §10.1). ``kind`` is the JSON type a value must have.
RANGES: dict[str, tuple[type, float, float]] = {
    "rank": (int, 4, 128),
    "alpha": (int, 4, 256),
    "dropout": (float, 0.0, 0.5),
    "learning_rate": (float, 1e-5, 1e-3),
    "epochs": (int, 1, 20),
    "batch_size": (int, 1, 64),
    "grad_accum": (int, 1, 64),
    "warmup_ratio": (float, 0.0, 0.2),
    "max_seq_length": (int, 256, 32768),
    "seed": (int, 0, 2**31 - 1),
}
# Short names of the projections LoRA may adapt, in the order adapters are listed.
TARGET_MODULES: tuple[str, ...] = ("q", "k", "v", "o", "gate", "up", "down")
FIELDS: tuple[str, ...] = (
    "rank",
    "alpha",
    "dropout",
    "learning_rate",
    "epochs",
    "batch_size",
    "grad_accum",
    "warmup_ratio",
    "target_modules",
    "max_seq_length",
    "seed",
)
DEFAULT_MAX_SEQ_LENGTH = 2048
DEFAULT_SEED = 42
# The default ("balanced") row of the SPEC table: the base when no preset is given.
FALLBACK: dict[str, Any] = {
    "rank": 16,
    "alpha": 32,
    "dropout": 0.05,
    "learning_rate": 2e-4,
    "epochs": 3,
    "batch_size": 2,
    "grad_accum": 2,
    "warmup_ratio": 0.05,
    "target_modules": list(TARGET_MODULES),
    "max_seq_length": DEFAULT_MAX_SEQ_LENGTH,
    "seed": DEFAULT_SEED,
}


def preset_values(preset: HyperparameterPreset) -> dict[str, Any]:
    """The hyperparameter columns of a preset row as a dict (without max_seq_length/seed)."""
    return {
        "rank": preset.rank,
        "alpha": preset.alpha,
        "dropout": preset.dropout,
        "learning_rate": preset.learning_rate,
        "epochs": preset.epochs,
        "batch_size": preset.batch_size,
        "grad_accum": preset.grad_accum,
        "warmup_ratio": preset.warmup_ratio,
        "target_modules": list(preset.target_modules or []),
    }


def _check_number(name: str, value: Any) -> tuple[Any, str | None]:
    kind, low, high = RANGES[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value, "Must be a number." if kind is float else "Must be an integer."
    if isinstance(value, float) and not math.isfinite(value):
        return value, "Must be a finite number."
    if kind is int:
        if isinstance(value, float):
            if not value.is_integer():
                return value, "Must be an integer."
            value = int(value)
    else:
        value = float(value)
    if not low <= value <= high:
        return value, f"Must be between {_fmt(low)} and {_fmt(high)}."
    return value, None


def _fmt(number: float) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


def _check_modules(value: Any) -> tuple[Any, str | None]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(m, str) for m in value):
        return value, f"Must be a list of module names from: {', '.join(TARGET_MODULES)}."
    unknown = sorted({m for m in value if m not in TARGET_MODULES})
    if unknown:
        return value, f"Unknown module(s) {', '.join(unknown)}; choose from: {', '.join(TARGET_MODULES)}."
    if not value:
        return value, "Choose at least one module."
    return [m for m in TARGET_MODULES if m in value], None


def hyperparameters_resolve(
    *, preset: HyperparameterPreset | None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The final hyperparameters: ``preset`` (or the SPEC default row) updated with ``overrides``, checked.

    Called by the estimate API and ``training_job_create``; pure (no database writes), so safe anywhere.
    Every value is checked against ``RANGES`` (inclusive) and ``target_modules`` must be a non-empty subset
    of ``TARGET_MODULES`` (returned de-duplicated in canonical order). Integral floats (``4.0``) are accepted
    for integer fields; booleans never are. Unknown keys are errors, so a typo is never silently ignored.

    Raises ``ApplicationError(code="invalid_hyperparameters", errors={field: message})`` listing every bad
    field at once.
    """
    if overrides is not None and not isinstance(overrides, dict):
        raise ApplicationError(
            "Hyperparameters must be an object.",
            code="invalid_hyperparameters",
            errors={"non_field_errors": "Must be an object."},
        )
    values = dict(FALLBACK)
    if preset is not None:
        values.update(preset_values(preset))
    errors: dict[str, str] = {}
    for name, value in (overrides or {}).items():
        if name not in FIELDS:
            errors[str(name)] = "Unknown hyperparameter."
        elif value is None:
            errors[name] = "May not be null."
        else:
            values[name] = value
    resolved: dict[str, Any] = {}
    for name in FIELDS:
        if name in errors:
            continue
        checker = _check_modules(values[name]) if name == "target_modules" else _check_number(name, values[name])
        value, message = checker
        if message:
            errors[name] = message
        resolved[name] = value
    if errors:
        raise ApplicationError(
            "Some hyperparameters are out of range: " + ", ".join(sorted(errors)) + ".",
            code="invalid_hyperparameters",
            errors=errors,
        )
    return resolved


def preset_suggest(*, conversation_count: int) -> HyperparameterPreset | None:
    """The active preset whose suggested size range holds ``conversation_count`` (SPEC §10.1).

    The seeded ranges are: < 150 conservative, 150–300 balanced, > 300 aggressive (both ends inclusive,
    a null maximum is open). Ranges live on the rows, so staff can retune them in the admin. When no active
    row matches, the active default preset; None only when the catalogue has no active presets.
    Read-only; called by the estimate API, the training form and ``training_job_create``.
    """
    active = HyperparameterPreset.objects.active()
    for preset in active.order_by("sort_order", "key"):
        high = preset.suggested_max_conversations
        if preset.suggested_min_conversations <= conversation_count and (high is None or conversation_count <= high):
            return preset
    return active.filter(is_default=True).first() or active.order_by("sort_order", "key").first()
