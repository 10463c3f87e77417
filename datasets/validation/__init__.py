"""Streaming, line-level validation of JSONL training datasets (SPEC §9.2).

``validate_stream`` reads any binary file-like in 1 MiB chunks, checks every line and returns a
:class:`ValidationReport` (issues with stable codes, counts, statistics); ``validate_ranges`` returns the same
report for a file that can be read by byte ranges, validating the ranges in parallel processes;
``iter_examples`` yields the valid lines as :class:`Example` objects through the same checks (the training
worker writes its train/validation files from it). Memory does not grow with the file: one line at a time, the
first ``max_issues`` issues, counts per distinct value for the statistics and 16-32 bytes per example for
duplicate detection (``validate_ranges``: 12 more per example, the digest keys and lines that each range hands to
the merge).

Rules that are decisions rather than facts of the formats:

- **Format detection.** The format is the one the first object line looks like (``formats.looks_like``), unless
  the caller names one. An object line that looks like no format before one is known is MISSING_MESSAGES (its
  message shows the three shapes) and detection goes on with the next line. Once the format is known, a line of
  another format is MIXED_FORMATS, and a line that looks like none is checked as the file's format (so its
  issues name the missing fields). A v4 ``_meta`` header is allowed only as the first data line.
- **Severity exception.** In the legacy ``turns`` format NO_ASSISTANT_MESSAGE and LAST_NOT_ASSISTANT are
  *warnings*: the earlier product accepted prompt-only conversations. Such lines are valid examples that
  contribute no trainable pairs. ``Issue.severity`` is always the effective severity.
- **Line handling.** Line numbers are 1-based physical lines. Blank lines are skipped silently. A UTF-8 BOM
  is stripped (BOM_PRESENT once); CRLF endings are accepted and reported once, at the first such line
  (CRLF_LINE_ENDINGS, count 1). A line over 4 MiB is skipped unread (LINE_TOO_LONG).
- **File-level issues** (``line`` None): FILE_TOO_LARGE stops reading at ``max_bytes`` (the cut line is not
  checked, and TOO_FEW_EXAMPLES is not reported since the rest is unknown); EMPTY_FILE when there is no data
  line at all (then not TOO_FEW_EXAMPLES); TOO_FEW_EXAMPLES when fewer than ``min_examples`` lines are valid.
  All issues are counted by code; the first ``max_issues`` are stored, file-level ones first so the cause of
  the verdict is always listed.
- **Digest and split.** ``Example.digest`` is the SHA-256 of the normalized content (role, whitespace-collapsed
  lower-cased text; ``digest.reference_digest``). It drives both DUPLICATE_EXAMPLE and the deterministic
  split (``split_of``), so duplicates never straddle train and validation.
- **v4 pairs** become ``[system(system_prompt)] + conversation_history + [user, assistant]``; the history's
  assistant replies get weight 0, so each line trains exactly its target (trainable pairs = lines). A history
  that ends with the current user turn (the earlier product's defect) is ROLES_NOT_ALTERNATING, explained.
- **Statistics** percentiles are exact (nearest rank), computed from counts per distinct value.
- **Tokens** are estimated as ceil(characters / 4) per example (all message contents) and for its trainable
  assistant messages; labelled "estimated" in the statistics.
"""

from datasets.validation.codes import CODES, Severity
from datasets.validation.formats import FORMATS
from datasets.validation.parallel import validate_ranges
from datasets.validation.reader import open_file_range
from datasets.validation.report import Issue, ValidationReport
from datasets.validation.validator import Example, iter_examples, split_of, validate_stream

__all__ = [
    "CODES",
    "FORMATS",
    "Example",
    "Issue",
    "Severity",
    "ValidationReport",
    "iter_examples",
    "open_file_range",
    "split_of",
    "validate_ranges",
    "validate_stream",
]
