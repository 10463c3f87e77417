"""The job spec the trainer runs (see the training contract): parsed and checked once, up front."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.trainer.errors import TRAINER_ERROR, TrainerError

# Short names used by presets and the API → the projection names of LLaMA/Qwen/Mistral-style models.
TARGET_MODULES = {
    "q": "q_proj",
    "k": "k_proj",
    "v": "v_proj",
    "o": "o_proj",
    "gate": "gate_proj",
    "up": "up_proj",
    "down": "down_proj",
}

DEFAULTS: dict[str, Any] = {
    "rank": 16,
    "alpha": 32,
    "dropout": 0.05,
    "learning_rate": 2e-4,
    "epochs": 3,
    "batch_size": 2,
    "grad_accum": 2,
    "warmup_ratio": 0.05,
    "target_modules": ["q", "k", "v", "o", "gate", "up", "down"],
    "max_seq_length": 2048,
    "seed": 42,
}


@dataclass(frozen=True)
class Hyperparameters:
    rank: int
    alpha: int
    dropout: float
    learning_rate: float
    epochs: int
    batch_size: int
    grad_accum: int
    warmup_ratio: float
    target_modules: tuple[str, ...]
    max_seq_length: int
    seed: int

    def projection_names(self) -> list[str]:
        return [TARGET_MODULES[name] for name in self.target_modules]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "alpha": self.alpha,
            "dropout": self.dropout,
            "learning_rate": self.learning_rate,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "grad_accum": self.grad_accum,
            "warmup_ratio": self.warmup_ratio,
            "target_modules": list(self.target_modules),
            "max_seq_length": self.max_seq_length,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class TrainSpec:
    job_id: str
    hf_id: str
    model_path: str | None
    hyperparameters: Hyperparameters
    train_source: str
    validation_source: str | None
    output_dir: Path
    artifact_uploads: dict[str, str] = field(default_factory=dict)
    max_steps: int | None = None
    gradient_checkpointing: bool | None = None

    @property
    def model_source(self) -> str:
        return self.model_path or self.hf_id


def _bad(message: str) -> TrainerError:
    return TrainerError(TRAINER_ERROR, f"Invalid job spec: {message}", "This is a bug in the job set-up; retry.")


def _number(values: dict[str, Any], name: str, kind: type) -> Any:
    value = values.get(name, DEFAULTS[name])
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"hyperparameters.{name} must be a number")
    if kind is int:
        if int(value) != value:
            raise _bad(f"hyperparameters.{name} must be a whole number")
        return int(value)
    return float(value)


def parse_hyperparameters(values: dict[str, Any] | None) -> Hyperparameters:
    """Fill defaults and check types and the bounds the trainer itself needs (the API enforces SPEC ranges)."""
    values = dict(values or {})
    modules = values.get("target_modules", DEFAULTS["target_modules"])
    if not isinstance(modules, list | tuple) or not modules:
        raise _bad("hyperparameters.target_modules must be a non-empty list")
    unknown = [name for name in modules if name not in TARGET_MODULES]
    if unknown:
        raise _bad(f"unknown target modules {unknown}; use {sorted(TARGET_MODULES)}")
    hp = Hyperparameters(
        rank=_number(values, "rank", int),
        alpha=_number(values, "alpha", int),
        dropout=_number(values, "dropout", float),
        learning_rate=_number(values, "learning_rate", float),
        epochs=_number(values, "epochs", int),
        batch_size=_number(values, "batch_size", int),
        grad_accum=_number(values, "grad_accum", int),
        warmup_ratio=_number(values, "warmup_ratio", float),
        target_modules=tuple(dict.fromkeys(modules)),
        max_seq_length=_number(values, "max_seq_length", int),
        seed=_number(values, "seed", int),
    )
    for name in ("rank", "alpha", "epochs", "batch_size", "grad_accum", "max_seq_length"):
        if getattr(hp, name) < 1:
            raise _bad(f"hyperparameters.{name} must be at least 1")
    if not 0 <= hp.dropout < 1 or not 0 <= hp.warmup_ratio <= 1 or hp.learning_rate <= 0 or hp.seed < 0:
        raise _bad("dropout, warmup_ratio, learning_rate or seed out of range")
    return hp


def parse_spec(spec: dict[str, Any]) -> TrainSpec:
    """Check a job spec dict and return a ``TrainSpec``; raises ``TrainerError`` (trainer_error) when malformed."""
    if not isinstance(spec, dict):
        raise _bad("the spec must be a JSON object")
    base = spec.get("base_model") or {}
    if not isinstance(base, dict) or not (base.get("path") or base.get("hf_id")):
        raise _bad("base_model needs hf_id or path")
    train = spec.get("train_path") or spec.get("train_url")
    if not train:
        raise _bad("train_path or train_url is required")
    if not spec.get("output_dir"):
        raise _bad("output_dir is required")
    uploads = spec.get("artifact_uploads") or {}
    if not isinstance(uploads, dict):
        raise _bad("artifact_uploads must map file names to URLs")
    max_steps = spec.get("max_steps")
    if max_steps is not None and (not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1):
        raise _bad("max_steps must be a positive integer")
    checkpointing = spec.get("gradient_checkpointing")
    return TrainSpec(
        job_id=str(spec.get("job_id") or ""),
        hf_id=str(base.get("hf_id") or ""),
        model_path=str(base["path"]) if base.get("path") else None,
        hyperparameters=parse_hyperparameters(spec.get("hyperparameters")),
        train_source=str(train),
        validation_source=str(spec.get("validation_path") or spec.get("validation_url") or "") or None,
        output_dir=Path(spec["output_dir"]),
        artifact_uploads={str(k): str(v) for k, v in uploads.items()},
        max_steps=max_steps,
        gradient_checkpointing=None if checkpointing is None else bool(checkpointing),
    )
