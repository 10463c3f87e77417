"""``manage.py validate_dataset PATH``: validate a JSONL dataset file with the product's validator (SPEC §9.2).

Exit status: 0 valid, 1 invalid, 2 usage error (missing or unreadable file, bad option value). Reads the file
only; no database access. ``--json`` prints exactly the report the product stores. Files of 32 MiB and more are
validated by byte ranges in parallel processes (``--workers``, default min(CPUs, 4); ``--workers 1`` is one
sequential pass); the report is the same either way.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from datasets.validation import FORMATS, ValidationReport, open_file_range, validate_ranges


class Command(BaseCommand):
    help = (
        "Validate a JSONL dataset (chat, brightrun-v4 or legacy turns): issues with line, code, path and "
        "suggestion, then statistics. Exit status 0 valid, 1 invalid, 2 usage error."
    )
    # Reads one local file and nothing else: the project-wide system checks (URLs, models) are not needed.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="the JSONL file")
        parser.add_argument("--format", default="auto", choices=["auto", *FORMATS], help="default: detected")
        parser.add_argument("--context-tokens", type=int, help="base model context; longer examples are flagged")
        parser.add_argument("--min-examples", type=int, help="default: settings.DATASET_MIN_EXAMPLES")
        parser.add_argument("--validation-percent", type=int, help="default: settings.DATASET_VALIDATION_PERCENT")
        parser.add_argument(
            "--workers", type=int, help="processes for files of 32 MiB and more (default min(CPUs, 4); 1: sequential)"
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        _check_options(options)
        path = Path(options["path"])
        if not path.exists():
            raise CommandError(f"{path}: no such file", returncode=2)
        if not path.is_file():
            raise CommandError(f"{path}: not a file", returncode=2)
        try:
            report = validate_ranges(
                partial(open_file_range, path),
                path.stat().st_size,
                workers=options["workers"],
                format=options["format"],
                context_tokens=options["context_tokens"],
                min_examples=options["min_examples"],
                validation_percent=options["validation_percent"],
            )
        except OSError as exc:
            raise CommandError(f"{path}: cannot read: {exc.strerror or exc}", returncode=2)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        else:
            self.stdout.write(render(report, path))
        if not report.is_valid:
            raise CommandError(f"{path}: invalid dataset ({report.error_count} errors)", returncode=1)


def _check_options(options: dict[str, Any]) -> None:
    limits = {
        "context_tokens": (1, None),
        "min_examples": (0, None),
        "validation_percent": (0, 100),
        "workers": (1, None),
    }
    for name, (low, high) in limits.items():
        value = options[name]
        if value is None:
            continue
        if value < low or (high is not None and value > high):
            allowed = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise CommandError(f"--{name.replace('_', '-')} must be {allowed} (got {value})", returncode=2)


def render(report: ValidationReport, path: Path) -> str:
    """The human-readable report: verdict, counts by code, stored issues, key statistics."""
    data = report.as_dict()
    lines = [
        f"{path}: {data['status'].upper()}",
        f"format: {data['format'] or 'not detected'}   {data['bytes']:,} bytes, {data['lines']:,} lines, "
        f"{data['duration_seconds']:.2f} s",
        f"errors: {data['error_count']:,}   warnings: {data['warning_count']:,}",
    ]
    if data["counts"]:
        lines.append("counts:")
        lines += [f"  {code:<22} {count:>8,}" for code, count in data["counts"].items()]
    if report.issues:
        lines.append("issues:")
    for issue in report.issues:
        where = f"line {issue.line}" if issue.line is not None else "file"
        path_part = f"{issue.path}: " if issue.path else ""
        lines.append(f"  {where}  {issue.code}  {path_part}{issue.message} — {issue.suggestion}")
    if data["issues_truncated"]:
        shown = len(report.issues)
        lines.append(f"  … {data['error_count'] + data['warning_count'] - shown:,} more issues counted, not listed")
    lines += _statistics(data["statistics"])
    return "\n".join(lines)


def _statistics(stats: dict[str, Any]) -> list[str]:
    per_message = stats["messages_per_example"]
    tokens = stats["estimated_tokens"]
    per_example = tokens["per_example"]
    roles = stats["role_counts"]
    split = stats["split"]
    return [
        "statistics:",
        f"  examples {stats['examples']:,}   trainable pairs {stats['trainable_pairs']:,}   "
        f"duplicates {stats['duplicates']:,}",
        f"  messages per example: min {_n(per_message['min'])}  mean {_n(per_message['mean'])}  "
        f"p50 {_n(per_message['p50'])}  p95 {_n(per_message['p95'])}  max {_n(per_message['max'])}",
        f"  tokens ({tokens['label']}, {tokens['estimator']}): total {tokens['total']:,}  assistant "
        f"{tokens['assistant']:,}  per example p50 {_n(per_example['p50'])}  p95 {_n(per_example['p95'])}  "
        f"max {_n(per_example['max'])}",
        f"  roles: system {roles['system']:,}  user {roles['user']:,}  assistant {roles['assistant']:,}",
        f"  split ({split['validation_percent']}% validation): train {split['train']['examples']:,} examples / "
        f"{split['train']['trainable_pairs']:,} pairs, validation {split['validation']['examples']:,} examples / "
        f"{split['validation']['trainable_pairs']:,} pairs",
    ]


def _n(value: Any) -> str:
    return "-" if value is None else f"{value:,}"
