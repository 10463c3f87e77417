"""Trainer failures with stable codes and hints for the user (SPEC §10.4 "Errors are classified with hints")."""

from __future__ import annotations

import json

OUT_OF_MEMORY = "out_of_memory"
NAN_LOSS = "nan_loss"
DATASET_ERROR = "dataset_error"
MODEL_LOAD_ERROR = "model_load_error"
UPLOAD_ERROR = "upload_error"
TRAINER_ERROR = "trainer_error"

CODES = (OUT_OF_MEMORY, NAN_LOSS, DATASET_ERROR, MODEL_LOAD_ERROR, UPLOAD_ERROR, TRAINER_ERROR)

HINTS = {
    OUT_OF_MEMORY: "Reduce the batch size, the maximum sequence length or the LoRA rank, or choose a larger GPU.",
    NAN_LOSS: "The loss diverged. Lower the learning rate (or raise the warmup ratio) and try again.",
    DATASET_ERROR: "See the dataset's validation report; fix or re-upload the dataset and start a new job.",
    MODEL_LOAD_ERROR: "The base model could not be loaded. Check the model id or local path and that it has a "
    "chat template.",
    UPLOAD_ERROR: "The trained adapter could not be uploaded to storage. Try again; if it persists, check storage.",
    TRAINER_ERROR: "An unexpected error stopped training. Try again; if it persists, contact support.",
}


class TrainerError(Exception):
    """A classified training failure: ``code`` (one of ``CODES``), a ``message`` and a ``hint`` for the user."""

    def __init__(self, code: str, message: str, hint: str | None = None):
        if code not in CODES:
            code = TRAINER_ERROR
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = HINTS[code] if hint is None else hint

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "hint": self.hint}

    def __repr__(self) -> str:
        return f"TrainerError({self.code!r}, {self.message!r})"


def _is_oom(exc: BaseException) -> bool:
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover - torch is a hard dependency of the trainer
        pass
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "cuda_error_out_of_memory" in text)


def classify_exception(exc: BaseException) -> TrainerError:
    """Map any exception raised while training to a ``TrainerError`` (a ``TrainerError`` is returned as is).

    Called by ``run_training`` around its whole body, by the CLI and by the local runner. Order matters: memory
    first (an OOM can surface as a plain RuntimeError), then NaN, data format, model loading, uploads.
    """
    if isinstance(exc, TrainerError):
        return exc
    text = str(exc) or exc.__class__.__name__
    if _is_oom(exc):
        return TrainerError(OUT_OF_MEMORY, f"Out of memory: {text[:500]}")
    lowered = text.lower()
    if "nan" in lowered.split() or "non-finite" in lowered or "not finite" in lowered:
        return TrainerError(NAN_LOSS, f"Non-finite values during training: {text[:500]}")
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return TrainerError(DATASET_ERROR, f"The dataset is not valid JSONL: {text[:500]}")
    if isinstance(exc, OSError) and ("config.json" in text or "does not appear to have" in text):
        return TrainerError(MODEL_LOAD_ERROR, f"Could not load the base model: {text[:500]}")
    return TrainerError(TRAINER_ERROR, f"{exc.__class__.__name__}: {text[:500]}")
