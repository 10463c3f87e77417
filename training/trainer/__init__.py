"""The LoRA trainer (SPEC §10.4): plain Python + torch/transformers/peft, no Django.

Public API (the training contract): ``run_training(spec, reporter) -> TrainerResult``, ``Reporter``,
``TrainerResult``, ``ArtifactFile``, ``ARTIFACT_FILES``, ``TrainerError``, ``classify_exception``, the
process-edge reporters, and ``python -m training.trainer --job spec.json``. ``training.trainer.tiny`` builds
the tiny test model. Importing this package does not import torch; the names load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from training.trainer.errors import CODES, TrainerError, classify_exception

_LAZY = {
    "ARTIFACT_FILES": "training.trainer.artifacts",
    "ArtifactFile": "training.trainer.artifacts",
    "TrainerResult": "training.trainer.run",
    "run_training": "training.trainer.run",
    "Reporter": "training.trainer.reporters",
    "CallbackReporter": "training.trainer.reporters",
    "JsonLinesReporter": "training.trainer.reporters",
    "NullReporter": "training.trainer.reporters",
    "sign": "training.trainer.reporters",
    "verify": "training.trainer.reporters",
}

__all__ = ["CODES", "TrainerError", "classify_exception", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
