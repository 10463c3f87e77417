"""Device choice, seeding, tokenizer and base-model loading, and the LoRA wrapper."""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from training.trainer.errors import MODEL_LOAD_ERROR, TrainerError
from training.trainer.spec import Hyperparameters


@dataclass(frozen=True)
class Device:
    torch_device: torch.device
    dtype: torch.dtype
    label: str  # "cpu (float32)", "cuda NVIDIA H100 80GB HBM3 (bfloat16)"

    @property
    def is_cuda(self) -> bool:
        return self.torch_device.type == "cuda"


def select_device() -> Device:
    """CUDA when available (bf16 where the GPU supports it, else float32), otherwise CPU float32."""
    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        name = torch.cuda.get_device_name(0)
        return Device(torch.device("cuda", 0), dtype, f"cuda {name} ({str(dtype).removeprefix('torch.')})")
    return Device(torch.device("cpu"), torch.float32, "cpu (float32)")


def seed_everything(seed: int) -> None:
    """Seed Python, torch (CPU and CUDA) and numpy when installed, so a run with the same spec repeats."""
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    try:
        import numpy

        numpy.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy is optional
        pass


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_tokenizer(source: str) -> Any:
    """Load the base model's tokenizer; it must have a chat template (the dataset is rendered with it)."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as exc:
        raise TrainerError(MODEL_LOAD_ERROR, f"Could not load the tokenizer of {source}: {exc}") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise TrainerError(MODEL_LOAD_ERROR, f"The tokenizer of {source} has no chat template.")
    return tokenizer


def pad_token_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0  # pragma: no cover


def load_model(source: str, device: Device, *, gradient_checkpointing: bool = False) -> Any:
    """Load the causal LM in the device's dtype straight onto the device."""
    from transformers import AutoModelForCausalLM

    _quiet_transformers()
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source,
            dtype=device.dtype,
            device_map={"": device.torch_device} if device.is_cuda else None,
        )
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as exc:
        if "out of memory" in str(exc).lower():
            raise
        raise TrainerError(MODEL_LOAD_ERROR, f"Could not load the base model {source}: {exc}") from exc
    if not device.is_cuda:
        model.to(device.torch_device)
    if gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    return model


def apply_lora(model: Any, hp: Hyperparameters) -> Any:
    """Wrap ``model`` with a PEFT LoRA adapter on the chosen projections (the base weights stay frozen)."""
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        r=hp.rank,
        lora_alpha=hp.alpha,
        lora_dropout=hp.dropout,
        target_modules=hp.projection_names(),
        bias="none",
        task_type=TaskType.CAUSAL_LM,
    )
    try:
        with warnings.catch_warnings():  # peft 0.21 reads a property transformers 5 deprecated
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            return get_peft_model(model, config)
    except ValueError as exc:
        raise TrainerError(
            MODEL_LOAD_ERROR,
            f"LoRA could not be applied to {hp.projection_names()}: {exc}",
            "Choose target modules this base model has (q, k, v, o, gate, up, down).",
        ) from exc
