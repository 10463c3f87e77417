"""`manage.py inspect_generation PATH`: run the acceptance checks (SPEC §4.3) on a saved raw Claude response.

Exit status: 0 accepted, 1 rejected, 2 the file could not be read. Reads the file only; no database access.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from conversations.services.acceptance import AcceptanceResult, check_response, remaining_tokens_analysis


class Command(BaseCommand):
    help = (
        "Check a saved raw Claude response (Messages API body or bare conversation JSON) the way generation does: "
        "per-turn findings and a verdict. Exit status 0 accepted, 1 rejected, 2 unreadable file."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="the saved response body")
        parser.add_argument("--json", action="store_true", help="print a JSON report instead of the table")
        parser.add_argument("--max-tokens", type=int, default=None, help="the request's max_tokens")
        parser.add_argument("--persona", default=None, help='the scaffolding persona, "Name - Archetype"')

    def handle(self, *args, **options):
        path = Path(options["path"])
        text = _read(path)
        result = check_response(text, max_tokens=options["max_tokens"], persona_display_name=options["persona"])
        report = _report(path, result, options["max_tokens"])
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))
        else:
            self.stdout.write(_table(report))
        if not result.ok:
            raise CommandError(f"rejected: {result.failure_type}", returncode=1)


def _read(path: Path) -> str:
    if not path.exists():
        raise CommandError(f"{path}: no such file", returncode=2)
    if not path.is_file():
        raise CommandError(f"{path}: not a file", returncode=2)
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CommandError(f"{path}: cannot read: {exc.strerror or exc}", returncode=2)
    except UnicodeDecodeError as exc:
        raise CommandError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})", returncode=2)


def _report(path: Path, result: AcceptanceResult, max_tokens: int | None) -> dict[str, Any]:
    turns_data = result.decoded.get("turns") if isinstance(result.decoded, dict) else None
    turns = []
    for index, turn in enumerate(turns_data if isinstance(turns_data, list) else []):
        turn = turn if isinstance(turn, dict) else {}
        number = turn.get("turn_number")
        number = number if isinstance(number, int) and not isinstance(number, bool) else index + 1
        content = turn.get("content")
        turns.append(
            {
                "turn_number": number,
                "role": turn.get("role"),
                "length": len(content) if isinstance(content, str) else None,
                "findings": [_finding(f) for f in result.findings if f.turn_number == number],
            }
        )
    turns.sort(key=lambda t: t["turn_number"])
    report = {
        "path": str(path),
        "verdict": "accepted" if result.ok else "rejected",
        **result.to_dict(),
        "turns": turns,
        "conversation_findings": [_finding(f) for f in result.findings if f.turn_number is None],
    }
    del report["findings"]
    if result.stop_reason == "max_tokens" and not max_tokens:
        max_tokens = result.usage.get("output_tokens")  # the limit was reached, so it equals the output
    if not result.ok and max_tokens and result.usage:
        report["remaining_tokens_analysis"] = remaining_tokens_analysis(
            usage=result.usage, max_tokens=max_tokens, stop_reason=result.stop_reason
        )
    return report


def _finding(f) -> dict[str, Any]:
    return {"category": f.category, "code": f.code, "message": f.message, "path": f.path}


def _table(report: dict[str, Any]) -> str:
    source = f"stop_reason {report['stop_reason']}" if report["stop_reason"] else "bare conversation JSON"
    lines = [f"{report['path']} ({source}, {len(report['turns'])} turns)", ""]
    if report["turns"]:
        lines.append(f"{'turn':>4}  {'role':<9}  {'length':>6}  finding")
        for turn in report["turns"]:
            length = "-" if turn["length"] is None else turn["length"]
            head = f"{turn['turn_number']!s:>4}  {turn['role'] or '-':<9}  {length:>6}"
            found = turn["findings"] or [None]
            for i, f in enumerate(found):
                prefix = head if i == 0 else " " * len(head)
                lines.append(f"{prefix}  {_describe(f) if f else '-'}")
        lines.append("")
    for f in report["conversation_findings"]:
        lines.append(f"conversation: {_describe(f)}")
    for note in report["notes"]:
        lines.append(f"note: {note}")
    analysis = report.get("remaining_tokens_analysis")
    if analysis:
        lines.append(
            f"tokens: {analysis['output_tokens']} of {analysis['max_tokens']} max "
            f"({analysis['percent_used']}% used): {analysis['likely_cause']}"
        )
    if report["ok"]:
        lines.append("verdict: ACCEPTED")
    else:
        also = [t for t in report["failure_types"] if t != report["failure_type"]]
        suffix = f" (also {', '.join(also)})" if also else ""
        lines.append(f"verdict: REJECTED — {report['failure_type']}{suffix}: {report['message']}")
    return "\n".join(lines)


def _describe(f: dict[str, Any]) -> str:
    return f"{f['category']}: {f['code']} — {f['message']}"
