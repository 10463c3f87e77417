"""Benchmark: LoRA training throughput of the trainer (``training.trainer.run_training``) on the tiny test model.

A few hundred realistic multi-turn financial-planning chats (system prompt, 1–3 exchanges, assistant answers of
2–5 sentences) are written as chat JSONL; the trainer runs on the CPU with the preset hyperparameters (no
``max_steps``), the full path: tokenize with the chat template and assistant-only labels, LoRA, AdamW + cosine,
per-epoch evaluation, artifacts with SHA-256s. Reported: training tokens/s over all tokens that went forward and
backward (padding excluded) and over assistant (label) tokens, optimizer steps/s, train time and wall time
(tokenizer + data + model load, training, evaluation, saving).

    .venv/bin/python bench/training_throughput.py [--examples 300] [--epochs 1] [--threads 2] [--presets balanced]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESETS = {
    "conservative": {"rank": 8, "alpha": 16, "dropout": 0.05, "learning_rate": 1e-4, "batch_size": 4,
                     "grad_accum": 1, "warmup_ratio": 0.03, "target_modules": ["q", "k", "v", "o"]},
    "balanced": {"rank": 16, "alpha": 32, "dropout": 0.05, "learning_rate": 2e-4, "batch_size": 2, "grad_accum": 2,
                 "warmup_ratio": 0.05, "target_modules": ["q", "k", "v", "o", "gate", "up", "down"]},
    "aggressive": {"rank": 32, "alpha": 64, "dropout": 0.1, "learning_rate": 3e-4, "batch_size": 1, "grad_accum": 4,
                   "warmup_ratio": 0.05, "target_modules": ["q", "k", "v", "o", "gate", "up", "down"]},
}  # fmt: skip

SYSTEM = (
    "You are a careful financial planning assistant. Give practical, honest answers, explain the reasoning "
    "and suggest a next step."
)
QUESTIONS = [
    "I earn ${income} a month after tax and spend about ${spend}. How should I build an emergency fund?",
    "I have ${debt} of credit card debt at {rate}% interest. Should I pay it off before investing?",
    "My employer matches {match}% of my salary in the retirement plan. How much should I contribute?",
    "We want to buy a house in {years} years and have ${saved} saved. What should we do with the money now?",
    "Is it better to pay extra on my {rate}% mortgage or to invest in index funds?",
    "I am {age} and have not started saving for retirement. Is it too late, and where do I start?",
    "How should I split ${saved} between stocks and bonds if I retire in {years} years?",
    "My income varies between ${low} and ${income} a month. How do I make a budget that works?",
]
FOLLOW_UPS = [
    "What if my income drops next year?",
    "How often should I review this plan?",
    "Can you put that into a simple monthly checklist?",
    "What mistakes do people usually make here?",
    "Does this change if I have children?",
]
SENTENCES = [
    "Start with the essentials: housing, food, transport, insurance and minimum debt payments.",
    "Keep three to six months of those essential costs in a high-yield savings account you can reach quickly.",
    "At {rate}% interest the debt costs more than the stock market is likely to return, so pay it down first.",
    "Contribute at least enough to receive the full {match}% match; it is an immediate return on your money.",
    "Money you need within {years} years belongs in safe accounts, not in the stock market.",
    "A low-cost broad index fund spreads the risk of any single company and keeps fees small.",
    "Automate the transfer on payday so saving happens before spending.",
    "Rebalance once or twice a year to bring the portfolio back to its target mix.",
    "Review your credit report every year and dispute any errors you find.",
    "Write down the goal, the amount and the date, and check progress every quarter.",
    "If your income varies, budget from your lowest month of ${low} and save the surplus in good months.",
    "Starting at {age} still gives your savings decades to compound, so begin now with what you can.",
    "Term life and disability insurance protect the plan if something happens to your income.",
    "Small recurring subscriptions add up; cancel the ones you no longer use.",
]


def conversation(rng: random.Random) -> dict:
    values = {
        "income": rng.randrange(2500, 12000, 50),
        "spend": rng.randrange(1500, 9000, 50),
        "debt": rng.randrange(1000, 40000, 100),
        "rate": rng.choice([3.5, 4.25, 6.8, 12, 18.9, 24.99]),
        "match": rng.choice([3, 4, 5, 6]),
        "years": rng.randint(2, 30),
        "saved": rng.randrange(5000, 150000, 500),
        "age": rng.randint(22, 58),
        "low": rng.randrange(1200, 2400, 50),
    }

    def answer() -> str:
        return " ".join(s.format(**values) for s in rng.sample(SENTENCES, rng.randint(2, 5)))

    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": rng.choice(QUESTIONS).format(**values)},
        {"role": "assistant", "content": answer()},
    ]
    for follow_up in rng.sample(FOLLOW_UPS, rng.randint(0, 2)):
        messages += [{"role": "user", "content": follow_up}, {"role": "assistant", "content": answer()}]
    return {"messages": messages}


class TimingReporter:
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.marks: dict[str, float] = {}
        self.steps = 0

    def stage(self, text, progress=None):
        self.marks.setdefault(text.split(" ")[0], time.perf_counter() - self.start)

    def started(self, total_steps, device):
        self.marks["started"] = time.perf_counter() - self.start

    def metric(self, step, epoch, **values):
        if values.get("training_loss") is not None:
            self.steps = step

    def event(self, kind, message="", data=None):
        pass

    def should_cancel(self):
        return False


def run(preset: str, model: Path, data: Path, work: Path, epochs: int) -> dict:
    from training.trainer import run_training

    spec = {
        "job_id": f"bench-{preset}",
        "base_model": {"hf_id": "brightrun/tiny-test-llama", "path": str(model)},
        "hyperparameters": {**PRESETS[preset], "epochs": epochs, "max_seq_length": 2048, "seed": 42},
        "train_path": str(data / "train.jsonl"),
        "validation_path": str(data / "validation.jsonl"),
        "output_dir": str(work / preset),
    }
    reporter = TimingReporter()
    started = time.perf_counter()
    result = run_training(spec, reporter)
    wall = time.perf_counter() - started
    config = json.loads((work / preset / "adapter" / "training_config.json").read_text())
    return {
        "preset": preset,
        "steps": result.steps,
        "train_seconds": config["train_seconds"],
        "tokens_per_second": config["tokens_per_second"],
        "assistant_tokens_per_second": config["trainable_tokens_per_second"],
        "steps_per_second": result.steps / config["train_seconds"],
        "setup_seconds": reporter.marks["started"],
        "wall_seconds": wall,
        "train_tokens": config["counts"]["train_tokens"],
        "assistant_tokens": config["counts"]["trainable_tokens"],
        "final_training_loss": result.final_training_loss,
        "final_validation_loss": result.final_validation_loss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--presets", default="balanced", help="comma-separated: conservative,balanced,aggressive")
    args = parser.parse_args()

    import torch

    from training.trainer.tiny import build_tiny_model

    torch.set_num_threads(args.threads)
    rng = random.Random(2026)
    records = [conversation(rng) for _ in range(args.examples)]
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        work = Path(tmp)
        model = build_tiny_model(work / "tiny-test")
        data = work / "data"
        data.mkdir()
        cut = int(len(records) * 0.9)
        (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:cut]))
        (data / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[cut:]))
        turns = sum(len(r["messages"]) for r in records) / len(records)
        chars = sum(len(m["content"]) for r in records for m in r["messages"]) / len(records)
        print(
            f"{args.examples} conversations ({cut} train / {args.examples - cut} validation), "
            f"{turns:.1f} messages and {chars:.0f} characters each on average; torch threads {args.threads}; "
            f"torch {torch.__version__}"
        )
        print(
            "| preset | steps | train tokens (assistant) | train time | tokens/s (all) | assistant tokens/s | "
            "steps/s | setup | wall | final train / val loss |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for preset in args.presets.split(","):
            row = run(preset, model, data, work, args.epochs)
            print(
                f"| {row['preset']} | {row['steps']} | {row['train_tokens']:,} ({row['assistant_tokens']:,}) | "
                f"{row['train_seconds']:.1f} s | {row['tokens_per_second']:,.0f} | "
                f"{row['assistant_tokens_per_second']:,.0f} | {row['steps_per_second']:.2f} | "
                f"{row['setup_seconds']:.1f} s | {row['wall_seconds']:.1f} s | "
                f"{row['final_training_loss']:.3f} / {row['final_validation_loss']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
