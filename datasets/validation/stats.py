"""Statistics over the valid examples of a dataset, in memory independent of the file's size.

Percentiles are exact (nearest-rank: the smallest value with at least p % of the examples at or below it).
They come from counts per distinct value rather than from a list of every example: a file within the size
limit has few distinct token counts (n distinct values need at least ~2·n² characters, so 512 MB allows
~16,000), and message counts are smaller still.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections import Counter
from itertools import pairwise
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets.validation.validator import Example

ESTIMATOR = "utf8_chars/4"
SAMPLE_COUNT = 3
SAMPLE_CONTENT_CHARS = 1000

#: Length histogram buckets (estimated tokens per example): [0, 127], [128, 255], … doubling, and a last
#: bucket up to the largest estimate a line within the 4 MiB limit can have.
HISTOGRAM_EDGES = [0, *(1 << bits for bits in range(7, 18))]
HISTOGRAM_TOP = (4 << 20) // 4
_first_word = struct.Struct("<Q").unpack_from


def estimate_tokens(chars: int) -> int:
    """Estimated tokens for ``chars`` characters of text: ceil(chars / 4), labelled "estimated" everywhere."""
    return -(-chars // 4)


def percentile(counts: dict[int, int], total: int, p: float) -> int | None:
    """Nearest-rank percentile ``p`` (0-100) of the values counted in ``counts`` (value → occurrences)."""
    if total == 0:
        return None
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    return max(counts)


def digest_key(digest: bytes) -> int:
    """The 64-bit key under which :class:`DigestSet` stores ``digest`` (its first 8 bytes; never 0)."""
    return _first_word(digest)[0] or 1


class DigestSet:
    """Exact set of 64-bit digest prefixes in one flat array (open addressing, linear probing).

    8 bytes per slot and at most half full, so 16-32 bytes per example (a Python set of ints costs ~70) — it
    keeps duplicate detection small even for a 512 MB file of tiny lines.
    """

    def __init__(self, capacity: int = 1 << 14) -> None:
        self._table = array("Q", bytes(8 * capacity))
        self._mask = capacity - 1
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, digest: bytes) -> bool:
        """Add ``digest``'s first 8 bytes; True when they were already present (a duplicate)."""
        return self.add_key(_first_word(digest)[0] or 1)  # 0 marks an empty slot

    def add_key(self, key: int) -> bool:
        """Add a key made by :func:`digest_key`; True when it was already present."""
        table, mask = self._table, self._mask
        index = key & mask
        while True:
            slot = table[index]
            if slot == 0:
                break
            if slot == key:
                return True
            index = (index + 1) & mask
        table[index] = key
        self._size += 1
        if self._size * 2 > mask:
            self._grow()
        return False

    def _grow(self) -> None:
        old = self._table
        capacity = len(old) * 2
        self._table = array("Q", bytes(8 * capacity))
        self._mask = capacity - 1
        table, mask = self._table, self._mask
        for key in old:
            if key:
                index = key & mask
                while table[index]:
                    index = (index + 1) & mask
                table[index] = key


def _split_totals() -> dict[str, int]:
    return {"examples": 0, "trainable_pairs": 0, "tokens": 0, "assistant_tokens": 0}


class StatsCollector:
    """Accumulates the statistics of SPEC §9.2 one valid example at a time."""

    def __init__(self, validation_percent: int) -> None:
        self.validation_percent = validation_percent
        self.examples = 0
        self.trainable = 0
        self.duplicates = 0
        self.messages_total = 0
        self.message_counts: Counter[int] = Counter()
        self.token_counts: Counter[int] = Counter()
        self.tokens_total = 0
        self.assistant_tokens_total = 0
        self.roles = {"system": 0, "user": 0, "assistant": 0}
        self.samples: list[dict[str, Any]] = []
        self.split = {"train": _split_totals(), "validation": _split_totals()}

    def add(self, example: Example) -> None:
        """Count one valid example (duplicates included: they are valid, with a warning)."""
        n = len(example.messages)
        tokens = example.estimated_tokens
        self.examples += 1
        self.trainable += example.trainable_pairs
        self.duplicates += example.duplicate
        self.messages_total += n
        self.message_counts[n] += 1
        self.token_counts[tokens] += 1
        self.tokens_total += tokens
        self.assistant_tokens_total += example.assistant_tokens
        # A valid example is [system?] then user/assistant alternating from user, so its roles follow from n.
        system = example.messages[0]["role"] == "system"
        rest = n - system
        self.roles["system"] += system
        self.roles["user"] += (rest + 1) // 2
        self.roles["assistant"] += rest // 2
        part = self.split[example.split]
        part["examples"] += 1
        part["trainable_pairs"] += example.trainable_pairs
        part["tokens"] += tokens
        part["assistant_tokens"] += example.assistant_tokens
        if len(self.samples) < SAMPLE_COUNT:
            self.samples.append(
                {
                    "line": example.line,
                    "messages": [{**m, "content": m["content"][:SAMPLE_CONTENT_CHARS]} for m in example.messages],
                }
            )

    def merge(self, other: StatsCollector, line_offset: int) -> None:
        """Add the examples counted by ``other``, which come after this collector's in the file and whose line
        numbers are ``line_offset`` lower than the file's (parallel validation of consecutive ranges).
        """
        self.examples += other.examples
        self.trainable += other.trainable
        self.duplicates += other.duplicates
        self.messages_total += other.messages_total
        self.message_counts.update(other.message_counts)
        self.token_counts.update(other.token_counts)
        self.tokens_total += other.tokens_total
        self.assistant_tokens_total += other.assistant_tokens_total
        for role, count in other.roles.items():
            self.roles[role] += count
        for name, totals in other.split.items():
            part = self.split[name]
            for key, value in totals.items():
                part[key] += value
        for sample in other.samples[: SAMPLE_COUNT - len(self.samples)]:
            self.samples.append({**sample, "line": sample["line"] + line_offset})

    def _histogram(self) -> list[dict[str, int]]:
        edges = [*HISTOGRAM_EDGES, HISTOGRAM_TOP + 1]
        buckets = [{"min": lo, "max": hi - 1, "count": 0} for lo, hi in pairwise(edges)]
        for tokens, count in self.token_counts.items():
            index = min(max(tokens.bit_length() - 7, 0), len(buckets) - 1)
            buckets[index]["count"] += count
        return buckets

    def as_dict(self) -> dict[str, Any]:
        """The statistics block of the report (JSON-serializable; None where there is nothing to measure)."""
        n = self.examples
        counts, tokens = self.message_counts, self.token_counts
        return {
            "examples": n,
            "trainable_pairs": self.trainable,
            "duplicates": self.duplicates,
            "messages_per_example": {
                "min": min(counts) if n else None,
                "mean": round(self.messages_total / n, 2) if n else None,
                "p50": percentile(counts, n, 50),
                "p95": percentile(counts, n, 95),
                "max": max(counts) if n else None,
            },
            "estimated_tokens": {
                "estimator": ESTIMATOR,
                "label": "estimated",
                "total": self.tokens_total,
                "assistant": self.assistant_tokens_total,
                "per_example": {
                    "p50": percentile(tokens, n, 50),
                    "p95": percentile(tokens, n, 95),
                    "max": max(tokens) if n else None,
                },
            },
            "role_counts": dict(self.roles),
            "samples": self.samples,
            "split": {"validation_percent": self.validation_percent, **self.split},
            "length_histogram": self._histogram(),
        }
