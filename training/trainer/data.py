"""Chat JSONL → token ids and assistant-only labels.

Each line is ``{"messages": [{"role", "content", "weight"?}, ...]}``. The conversation is rendered with the
tokenizer's chat template and tokenized once; the loss is taken only on assistant messages (``weight`` 0 masks
one), everything else gets the label -100.

Assistant spans are found in characters: the template rendered for ``messages[:i]`` with the generation prompt
ends where assistant message ``i`` starts, and ``messages[:i + 1]`` ends where it stops (so the span holds the
content and the template's end-of-turn tokens, which the model must learn to emit). Token labels come from the
tokenizer's offset mapping, so no token boundary at the join can shift a span. When a template does not render
prefixes as prefixes of the whole (some drop earlier reasoning), the message content is located in the rendered
text instead. Examples are truncated to ``max_seq_length``; one with no trainable token left is skipped and
counted.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.trainer.errors import DATASET_ERROR, TrainerError

IGNORE_INDEX = -100
DOWNLOAD_TIMEOUT_SECONDS = 60
_CHUNK = 1 << 20


@dataclass
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def n_trainable(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


@dataclass
class SplitStats:
    conversations: int = 0
    examples: int = 0
    truncated: int = 0
    skipped_no_trainable: int = 0
    tokens: int = 0
    trainable_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Split:
    examples: list[TokenizedExample] = field(default_factory=list)
    stats: SplitStats = field(default_factory=SplitStats)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def fetch(source: str, directory: Path) -> Path:
    """Return a local path for ``source``: a path as is, a URL streamed into a temporary file in ``directory``."""
    if not is_url(source):
        path = Path(source)
        if not path.is_file():
            raise TrainerError(DATASET_ERROR, f"Dataset file not found: {source}")
        return path
    directory.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=directory, suffix=".jsonl", delete=False)
    try:
        with handle, urllib.request.urlopen(source, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:  # noqa: S310
            shutil.copyfileobj(response, handle, _CHUNK)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        Path(handle.name).unlink(missing_ok=True)
        raise TrainerError(DATASET_ERROR, f"Could not download the dataset: {exc}") from exc
    return Path(handle.name)


def read_conversations(path: Path) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """Yield ``(line number, messages)`` for each non-blank line; a malformed line is a dataset_error."""
    with open(path, encoding="utf-8-sig") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainerError(DATASET_ERROR, f"Line {number} is not valid JSON: {exc.msg}") from exc
            messages = record.get("messages") if isinstance(record, dict) else None
            if not isinstance(messages, list) or not messages:
                raise TrainerError(DATASET_ERROR, f"Line {number} has no 'messages' list")
            for message in messages:
                if not (
                    isinstance(message, dict)
                    and isinstance(message.get("role"), str)
                    and isinstance(message.get("content"), str)
                ):
                    raise TrainerError(DATASET_ERROR, f"Line {number}: each message needs a string role and content")
            yield number, messages


def _trainable(message: dict[str, Any]) -> bool:
    weight = message.get("weight", 1)
    return message["role"] == "assistant" and not (isinstance(weight, int | float) and weight == 0)


def _render(tokenizer: Any, messages: list[dict[str, str]], *, generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def assistant_spans(tokenizer: Any, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
    """Render ``messages`` and return ``(text, [(start, end) character spans of trainable assistant turns])``."""
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    text = _render(tokenizer, plain, generation_prompt=False)
    spans: list[tuple[int, int]] = []
    cursor = 0
    for index, message in enumerate(messages):
        if not _trainable(message):
            continue
        span = None
        try:
            before = _render(tokenizer, plain[:index], generation_prompt=True)
            after = _render(tokenizer, plain[: index + 1], generation_prompt=False)
        except Exception:  # noqa: BLE001 - some templates reject a prefix (e.g. no user turn yet)
            before = after = None
        if before is not None and after is not None and len(after) > len(before) >= cursor:
            if text.startswith(after) and after.startswith(before):
                span = (len(before), len(after))
        if span is None and message["content"]:
            start = text.find(message["content"], cursor)
            if start >= 0:
                span = (start, start + len(message["content"]))
        if span is not None:
            spans.append(span)
            cursor = span[1]
    return text, spans


def _token_labels(tokenizer: Any, text: str, spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(encoded["input_ids"])
        starts = [start for start, _ in encoded["offset_mapping"]]
    else:  # slow tokenizers: token counts of text prefixes mark the span edges
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        starts = [-1] * len(ids)
        for start, end in spans:
            first = len(tokenizer(text[:start], add_special_tokens=False)["input_ids"])
            last = len(tokenizer(text[:end], add_special_tokens=False)["input_ids"])
            for position in range(first, min(last, len(ids))):
                starts[position] = start
    labels = [IGNORE_INDEX] * len(ids)
    # Position 0 is never predicted (labels shift by one inside the model), so it never counts as trainable.
    for position, start in enumerate(starts[1:], start=1):
        if any(low <= start < high for low, high in spans):
            labels[position] = ids[position]
    return ids, labels


def tokenize_conversation(
    tokenizer: Any, messages: list[dict[str, Any]], max_seq_length: int
) -> tuple[TokenizedExample, bool]:
    """Tokenize one conversation; returns ``(example, truncated)``. Labels are -100 outside assistant turns."""
    text, spans = assistant_spans(tokenizer, messages)
    ids, labels = _token_labels(tokenizer, text, spans)
    truncated = len(ids) > max_seq_length
    return TokenizedExample(ids[:max_seq_length], labels[:max_seq_length]), truncated


def load_split(tokenizer: Any, path: Path, max_seq_length: int) -> Split:
    """Read and tokenize a whole chat JSONL split; a template that rejects a line is a dataset_error."""
    split = Split()
    for number, messages in read_conversations(path):
        split.stats.conversations += 1
        try:
            example, truncated = tokenize_conversation(tokenizer, messages, max_seq_length)
        except TrainerError:
            raise
        except Exception as exc:
            raise TrainerError(DATASET_ERROR, f"Line {number}: the chat template rejected it: {exc}") from exc
        split.stats.truncated += int(truncated)
        if example.n_trainable == 0:
            split.stats.skipped_no_trainable += 1
            continue
        split.examples.append(example)
        split.stats.examples += 1
        split.stats.tokens += example.n_tokens
        split.stats.trainable_tokens += example.n_trainable
    return split


def collate(examples: list[TokenizedExample], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch: ``input_ids``, ``attention_mask``, ``labels`` tensors plus token counts."""
    import torch

    width = max(example.n_tokens for example in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    for row, example in enumerate(examples):
        length = example.n_tokens
        ids[row, :length] = torch.tensor(example.input_ids, dtype=torch.long)
        mask[row, :length] = 1
        labels[row, :length] = torch.tensor(example.labels, dtype=torch.long)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "tokens": sum(example.n_tokens for example in examples),
        # Labels predict the next token, so a label at position 0 never counts (the model shifts them).
        "label_tokens": int((labels[:, 1:] != IGNORE_INDEX).sum()),
    }
