"""The training loop: AdamW + cosine schedule with warmup, gradient accumulation, clipping, per-step reports.

Our own loop rather than the Hugging Face Trainer, so every optimizer step reports a metric and checks for a
cancel. The loss of one optimizer step is the mean over all its label tokens (micro-batch losses are weighted
by their label-token counts), so gradient accumulation gives the same update as one big batch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from training.trainer.data import Split, TokenizedExample, collate
from training.trainer.errors import NAN_LOSS, TrainerError
from training.trainer.model import Device
from training.trainer.reporters import Reporter
from training.trainer.spec import Hyperparameters

MAX_GRAD_NORM = 1.0
WEIGHT_DECAY = 0.01
EVAL_BATCH_SIZE = 8


@dataclass(frozen=True)
class Plan:
    batches_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int


def plan_steps(examples: int, hp: Hyperparameters, max_steps: int | None = None) -> Plan:
    """total_steps = ceil(batches_per_epoch / grad_accum) × epochs, capped by ``max_steps``."""
    batches = math.ceil(examples / hp.batch_size)
    per_epoch = math.ceil(batches / hp.grad_accum)
    total = per_epoch * hp.epochs
    if max_steps is not None:
        total = min(total, max_steps)
    return Plan(batches, per_epoch, total, math.ceil(hp.warmup_ratio * total))


@dataclass
class LoopResult:
    status: str  # "completed" | "cancelled"
    steps: int = 0
    epochs_completed: float = 0.0
    train_tokens: int = 0
    trainable_tokens: int = 0
    train_seconds: float = 0.0
    final_training_loss: float | None = None
    final_validation_loss: float | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float | None:
        return self.train_tokens / self.train_seconds if self.train_seconds > 0 else None

    @property
    def trainable_tokens_per_second(self) -> float | None:
        return self.trainable_tokens / self.train_seconds if self.train_seconds > 0 else None


def _windows(examples: list[TokenizedExample], hp: Hyperparameters, epoch: int, pad_id: int) -> list[list[dict]]:
    generator = torch.Generator().manual_seed(hp.seed + epoch)
    order = torch.randperm(len(examples), generator=generator).tolist()
    batches = [
        collate([examples[i] for i in order[start : start + hp.batch_size]], pad_id)
        for start in range(0, len(order), hp.batch_size)
    ]
    return [batches[start : start + hp.grad_accum] for start in range(0, len(batches), hp.grad_accum)]


def _to(batch: dict[str, Any], device: Device) -> dict[str, Any]:
    tensors = {key: batch[key].to(device.torch_device) for key in ("input_ids", "attention_mask", "labels")}
    return {**tensors, "use_cache": False}


@torch.no_grad()
def evaluate(model: Any, split: Split, device: Device, pad_id: int) -> float | None:
    """Mean per-token loss over the whole split (eval mode, no dropout); None for an empty split."""
    if not split.examples:
        return None
    was_training = model.training
    model.eval()
    total_loss = 0.0
    total_tokens = 0
    for start in range(0, len(split.examples), EVAL_BATCH_SIZE):
        batch = collate(split.examples[start : start + EVAL_BATCH_SIZE], pad_id)
        if batch["label_tokens"] == 0:
            continue
        loss = model(**_to(batch, device)).loss
        total_loss += float(loss) * batch["label_tokens"]
        total_tokens += batch["label_tokens"]
    if was_training:
        model.train()
    return total_loss / total_tokens if total_tokens else None


def _non_finite(what: str, step: int, hp: Hyperparameters) -> TrainerError:
    return TrainerError(NAN_LOSS, f"The {what} became non-finite at step {step} (learning rate {hp.learning_rate:g}).")


def train(
    model: Any,
    train_split: Split,
    validation_split: Split,
    *,
    hp: Hyperparameters,
    plan: Plan,
    device: Device,
    pad_id: int,
    reporter: Reporter,
) -> LoopResult:
    """Run ``plan.total_steps`` optimizer steps; evaluates at each epoch end; returns early when cancelled."""
    from transformers import get_cosine_schedule_with_warmup

    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=hp.learning_rate, weight_decay=WEIGHT_DECAY)
    scheduler = get_cosine_schedule_with_warmup(optimizer, plan.warmup_steps, plan.total_steps)
    result = LoopResult(status="completed")
    if reporter.should_cancel():
        result.status = "cancelled"
        return result
    model.train()
    optimizer.zero_grad(set_to_none=True)
    epoch = 0
    while result.steps < plan.total_steps:
        windows = _windows(train_split.examples, hp, epoch, pad_id)
        for index, window in enumerate(windows):
            started = time.perf_counter()
            window_labels = sum(batch["label_tokens"] for batch in window) or 1
            step_loss = 0.0
            for batch in window:
                loss = model(**_to(batch, device)).loss * (batch["label_tokens"] / window_labels)
                if not torch.isfinite(loss):
                    raise _non_finite("training loss", result.steps + 1, hp)
                loss.backward()
                step_loss += float(loss.detach())
                result.train_tokens += batch["tokens"]
                result.trainable_tokens += batch["label_tokens"]
            grad_norm = float(torch.nn.utils.clip_grad_norm_(parameters, MAX_GRAD_NORM))
            if not math.isfinite(grad_norm):
                raise _non_finite("gradient norm", result.steps + 1, hp)
            learning_rate = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if device.is_cuda:
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - started
            result.train_seconds += elapsed
            result.steps += 1
            result.final_training_loss = step_loss
            result.epochs_completed = round(epoch + (index + 1) / len(windows), 4)
            row = {
                "step": result.steps,
                "epoch": result.epochs_completed,
                "training_loss": step_loss,
                "learning_rate": learning_rate,
                "grad_norm": grad_norm,
                "tokens_per_second": sum(batch["tokens"] for batch in window) / elapsed if elapsed > 0 else None,
            }
            result.rows.append(row)
            reporter.metric(**row)
            if reporter.should_cancel():
                result.status = "cancelled"
                return result
            if result.steps >= plan.total_steps:
                break
        epoch += 1
        _end_epoch(model, validation_split, result, device, pad_id, reporter)
    return result


def _end_epoch(
    model: Any, validation_split: Split, result: LoopResult, device: Device, pad_id: int, reporter: Reporter
) -> None:
    """Evaluate on the validation split, record the point and an ``epoch_end`` event."""
    validation_loss = evaluate(model, validation_split, device, pad_id)
    result.final_validation_loss = validation_loss
    if validation_loss is not None and not math.isfinite(validation_loss):
        raise TrainerError(NAN_LOSS, f"The validation loss became non-finite at step {result.steps}.")
    if validation_loss is not None:
        row = {"step": result.steps, "epoch": result.epochs_completed, "validation_loss": validation_loss}
        result.rows.append(row)
        reporter.metric(**row)
    epoch_number = math.ceil(result.epochs_completed - 1e-9)
    reporter.event(
        "epoch_end",
        f"Epoch {epoch_number} ended at step {result.steps}",
        {
            "epoch": result.epochs_completed,
            "step": result.steps,
            "training_loss": result.final_training_loss,
            "validation_loss": validation_loss,
        },
    )
