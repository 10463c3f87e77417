"""The adapter artifact: fixed file names, the verification probe, SHA-256s and presigned-URL uploads.

``output_dir/adapter/`` always holds exactly ``ARTIFACT_FILES``. PEFT's ``save_pretrained`` also writes a
README model card and tokenizers write model-specific extras, so both save into a staging folder and only the
fixed names are copied over; ``chat_template.jinja`` is written from the tokenizer when its save did not.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.trainer.errors import UPLOAD_ERROR, TrainerError

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
ARTIFACT_FILES = (*ADAPTER_FILES, *TOKENIZER_FILES, "training_config.json", "metrics.csv")

METRIC_COLUMNS = (
    "step",
    "epoch",
    "training_loss",
    "validation_loss",
    "learning_rate",
    "grad_norm",
    "tokens_per_second",
)

PROBE_MESSAGES = (
    {"role": "system", "content": "You are a helpful financial planning assistant."},
    {"role": "user", "content": "How much should I keep in an emergency fund?"},
)
PROBE_TOP_K = 16
PROBE_DECIMALS = 6
UPLOAD_TIMEOUT_SECONDS = 300
UPLOAD_ATTEMPTS = 3
UPLOAD_RETRY_SECONDS = 2.0  # doubled after each failed attempt


@dataclass(frozen=True)
class ArtifactFile:
    name: str
    path: Path
    size: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        """``{name, size, sha256}`` — what callbacks and the job record carry (the path is local only)."""
        data = asdict(self)
        data.pop("path")
        return data


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def probe_input_ids(tokenizer: Any) -> list[int]:
    text = tokenizer.apply_chat_template(list(PROBE_MESSAGES), tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def probe_logits(model: Any, input_ids: list[int], device: Any = None) -> dict[str, list]:
    """Last-position top-k logits (float32, rounded) of ``model`` on ``input_ids``, in eval mode."""
    import torch

    was_training = model.training
    model.eval()
    with torch.no_grad():
        ids = torch.tensor([input_ids], dtype=torch.long, device=device or next(model.parameters()).device)
        logits = model(input_ids=ids, use_cache=False).logits[0, -1].float().cpu()
    if was_training:
        model.train()
    values, indices = torch.topk(logits, PROBE_TOP_K)
    return {
        "top_indices": [int(i) for i in indices],
        "top_logits": [round(float(v), PROBE_DECIMALS) for v in values],
        "logits_mean": round(float(logits.mean()), PROBE_DECIMALS),
    }


def verification_block(model: Any, tokenizer: Any) -> dict[str, Any]:
    """The reload check stored in training_config.json: probe ids and the trained model's logits on them."""
    input_ids = probe_input_ids(tokenizer)
    return {
        "probe_messages": [dict(message) for message in PROBE_MESSAGES],
        "input_ids": input_ids,
        "position": -1,
        "top_k": PROBE_TOP_K,
        "decimals": PROBE_DECIMALS,
        **probe_logits(model, input_ids),
    }


def _format(value: Any) -> Any:
    return "" if value is None else value


def write_metrics_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(METRIC_COLUMNS)
        for row in rows:
            writer.writerow([_format(row.get(column)) for column in METRIC_COLUMNS])


def write_adapter(
    *, model: Any, tokenizer: Any, adapter_dir: Path, training_config: dict[str, Any], rows: list[dict[str, Any]]
) -> list[ArtifactFile]:
    """Write ``ARTIFACT_FILES`` into ``adapter_dir`` (emptied first) and return them with sizes and SHA-256s."""
    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    adapter_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir=adapter_dir.parent, prefix=".adapter-") as staging:
        staged = Path(staging)
        model.save_pretrained(staged / "adapter", safe_serialization=True)
        tokenizer.save_pretrained(staged / "tokenizer")
        for name in ADAPTER_FILES:
            shutil.copyfile(staged / "adapter" / name, adapter_dir / name)
        for name in TOKENIZER_FILES:
            source = staged / "tokenizer" / name
            if source.exists():
                shutil.copyfile(source, adapter_dir / name)
            elif name == "chat_template.jinja":
                (adapter_dir / name).write_text(tokenizer.get_chat_template(), encoding="utf-8")
            else:
                raise FileNotFoundError(f"The tokenizer did not save {name}")
    config = {**training_config, "artifact_files": list(ARTIFACT_FILES)}
    (adapter_dir / "training_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    write_metrics_csv(adapter_dir / "metrics.csv", rows)
    return describe(adapter_dir)


def describe(adapter_dir: Path) -> list[ArtifactFile]:
    files = []
    for name in ARTIFACT_FILES:
        path = adapter_dir / name
        files.append(ArtifactFile(name=name, path=path, size=path.stat().st_size, sha256=sha256_of(path)))
    return files


def _put(url: str, path: Path, size: int) -> None:
    with open(path, "rb") as body:
        request = urllib.request.Request(  # noqa: S310 - presigned URL from the control plane
            url,
            data=body,
            method="PUT",
            headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
        )
        with urllib.request.urlopen(request, timeout=UPLOAD_TIMEOUT_SECONDS) as response:  # noqa: S310
            response.read()


def upload_files(files: list[ArtifactFile], uploads: dict[str, str]) -> None:
    """PUT each file named in ``uploads`` to its presigned URL; retried, then ``TrainerError(upload_error)``."""
    by_name = {file.name: file for file in files}
    unknown = sorted(set(uploads) - set(by_name))
    if unknown:
        raise TrainerError(UPLOAD_ERROR, f"No artifact file named {', '.join(unknown)} to upload.")
    for name, url in uploads.items():
        file = by_name[name]
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            try:
                _put(url, file.path, file.size)
                break
            except urllib.error.HTTPError as exc:
                if exc.code < 500 or attempt == UPLOAD_ATTEMPTS:
                    raise TrainerError(UPLOAD_ERROR, f"Uploading {name} failed: HTTP {exc.code}") from exc
            except (urllib.error.URLError, OSError, ValueError) as exc:
                if attempt == UPLOAD_ATTEMPTS:
                    raise TrainerError(UPLOAD_ERROR, f"Uploading {name} failed: {exc}") from exc
            time.sleep(UPLOAD_RETRY_SECONDS * 2 ** (attempt - 1))
