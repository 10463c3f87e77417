"""``run_training(spec, reporter)``: one LoRA fine-tuning job from a spec dict to adapter files.

Called in-process by the local runner (``training.services.local``) with a database-backed reporter, and by the
CLI (``python -m training.trainer``) on remote workers. Every failure leaves as a ``TrainerError`` (classified,
with a hint). A cancel returns ``status="cancelled"`` with no files written or uploaded. Stage progress values
are the job's overall progress: preparation 0–5, training in between (from the steps), saving 96, upload 98.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from training.trainer import data, loop
from training.trainer.artifacts import ArtifactFile, upload_files, verification_block, write_adapter
from training.trainer.errors import DATASET_ERROR, TrainerError, classify_exception
from training.trainer.model import apply_lora, load_model, load_tokenizer, pad_token_id, seed_everything, select_device
from training.trainer.reporters import Reporter
from training.trainer.spec import TrainSpec, parse_spec


@dataclass
class TrainerResult:
    status: str  # "completed" | "cancelled"
    files: list[ArtifactFile] = field(default_factory=list)
    tokens_per_second: float | None = None
    train_tokens: int = 0
    steps: int = 0
    final_training_loss: float | None = None
    final_validation_loss: float | None = None
    device: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the CLI's ``completed``/``cancelled`` message): files as ``{name, size, sha256}``."""
        return {
            "status": self.status,
            "files": [file.as_dict() for file in self.files],
            "tokens_per_second": self.tokens_per_second,
            "train_tokens": self.train_tokens,
            "steps": self.steps,
            "final_training_loss": self.final_training_loss,
            "final_validation_loss": self.final_validation_loss,
            "device": self.device,
        }


def run_training(spec: dict[str, Any], reporter: Reporter) -> TrainerResult:
    """Train the adapter described by ``spec``, reporting through ``reporter``; raises ``TrainerError``."""
    try:
        return _run(parse_spec(spec), reporter)
    except TrainerError:
        raise
    except Exception as exc:
        raise classify_exception(exc) from exc
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _load_splits(job: TrainSpec, tokenizer: Any, reporter: Reporter) -> tuple[data.Split, data.Split]:
    work = job.output_dir / "data"
    reporter.stage("Downloading the dataset" if data.is_url(job.train_source) else "Reading the dataset", 1)
    train_path = data.fetch(job.train_source, work)
    validation_path = data.fetch(job.validation_source, work) if job.validation_source else None
    reporter.stage("Tokenizing the dataset with the chat template", 2)
    limit = job.hyperparameters.max_seq_length
    train = data.load_split(tokenizer, train_path, limit)
    validation = data.load_split(tokenizer, validation_path, limit) if validation_path else data.Split()
    if not train.examples:
        raise TrainerError(DATASET_ERROR, "The training split has no example with assistant tokens to learn from.")
    skipped = train.stats.skipped_no_trainable + validation.stats.skipped_no_trainable
    reporter.stage(
        f"Tokenized {train.stats.examples} training and {validation.stats.examples} validation examples "
        f"({train.stats.trainable_tokens} trainable of {train.stats.tokens} training tokens; {skipped} skipped "
        f"with no assistant tokens within {limit} tokens)",
        3,
    )
    return train, validation


def _run(job: TrainSpec, reporter: Reporter) -> TrainerResult:
    hp = job.hyperparameters
    device = select_device()
    reporter.stage("Loading the tokenizer", 0)
    tokenizer = load_tokenizer(job.model_source)
    train, validation = _load_splits(job, tokenizer, reporter)
    pad_id = pad_token_id(tokenizer)

    reporter.stage(f"Loading the base model on {device.label}", 4)
    seed_everything(hp.seed)
    checkpointing = device.is_cuda if job.gradient_checkpointing is None else job.gradient_checkpointing
    model = apply_lora(load_model(job.model_source, device, gradient_checkpointing=checkpointing), hp)
    trainable, total = model.get_nb_trainable_parameters()
    plan = loop.plan_steps(len(train.examples), hp, job.max_steps)
    reporter.stage(f"LoRA on {', '.join(hp.projection_names())}: {trainable:,} of {total:,} parameters trainable", 5)
    reporter.started(plan.total_steps, device.label)

    outcome = loop.train(model, train, validation, hp=hp, plan=plan, device=device, pad_id=pad_id, reporter=reporter)
    result = TrainerResult(
        status=outcome.status,
        tokens_per_second=outcome.tokens_per_second,
        train_tokens=outcome.train_tokens,
        steps=outcome.steps,
        final_training_loss=outcome.final_training_loss,
        final_validation_loss=outcome.final_validation_loss,
        device=device.label,
    )
    if outcome.status == "cancelled":
        return result

    reporter.stage("Saving the adapter", 96)
    config = _training_config(job, train, validation, plan, outcome, device.label, trainable, total)
    config["verification"] = verification_block(model, tokenizer)
    result.files = write_adapter(
        model=model,
        tokenizer=tokenizer,
        adapter_dir=job.output_dir / "adapter",
        training_config=config,
        rows=outcome.rows,
    )
    if job.artifact_uploads:
        reporter.stage("Uploading the adapter", 98)
        upload_files(result.files, job.artifact_uploads)
    return result


def _training_config(
    job: TrainSpec,
    train: data.Split,
    validation: data.Split,
    plan: loop.Plan,
    outcome: loop.LoopResult,
    device: str,
    trainable: int,
    total: int,
) -> dict[str, Any]:
    import peft
    import transformers

    hp = job.hyperparameters
    return {
        "job_id": job.job_id,
        "base_model": {"hf_id": job.hf_id, "path": str(Path(job.model_path)) if job.model_path else None},
        "hyperparameters": hp.as_dict(),
        "seed": hp.seed,
        "lora": {
            "r": hp.rank,
            "alpha": hp.alpha,
            "dropout": hp.dropout,
            "target_modules": hp.projection_names(),
            "trainable_parameters": trainable,
            "total_parameters": total,
        },
        "optimizer": {
            "name": "AdamW",
            "weight_decay": loop.WEIGHT_DECAY,
            "schedule": "cosine with warmup",
            "warmup_steps": plan.warmup_steps,
            "max_grad_norm": loop.MAX_GRAD_NORM,
        },
        "counts": {
            "train": train.stats.as_dict(),
            "validation": validation.stats.as_dict(),
            "batches_per_epoch": plan.batches_per_epoch,
            "steps_per_epoch": plan.steps_per_epoch,
            "total_steps": plan.total_steps,
            "steps": outcome.steps,
            "epochs_completed": outcome.epochs_completed,
            "train_tokens": outcome.train_tokens,
            "trainable_tokens": outcome.trainable_tokens,
        },
        "device": device,
        "train_seconds": round(outcome.train_seconds, 3),
        "tokens_per_second": outcome.tokens_per_second,
        "trainable_tokens_per_second": outcome.trainable_tokens_per_second,
        "final_training_loss": outcome.final_training_loss,
        "final_validation_loss": outcome.final_validation_loss,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
    }
