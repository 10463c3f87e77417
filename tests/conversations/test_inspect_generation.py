"""`manage.py inspect_generation`: table and JSON reports, exit status 0/1/2. No database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = ROOT.parent / "shared" / "reference" / "original"
RAW_TRUNCATED = REFERENCE / "single-convo-file-3-RAW.json"
RAW_CLEAN = REFERENCE / "recent-raw.json"
no_reference = pytest.mark.skipif(not RAW_TRUNCATED.exists(), reason="../shared reference data not present")


def inspect(path, *args, capsys) -> tuple[int, str]:
    """(exit status, stdout) of the command called in-process."""
    try:
        call_command("inspect_generation", str(path), *args)
        status = 0
    except CommandError as exc:
        status = exc.returncode
    return status, capsys.readouterr().out


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "brightrun.settings_test"}
    return subprocess.run(
        [sys.executable, "manage.py", "inspect_generation", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def row(out: str, turn: int) -> str:
    return next(line for line in out.splitlines() if line.split()[:1] == [str(turn)])


def test_clean_response_is_accepted(capsys):
    status, out = inspect(FIXTURES / "clean_response.json", capsys=capsys)
    assert status == 0
    assert out.splitlines()[-1] == "verdict: ACCEPTED"
    assert "turn  role       length  finding" in out
    assert row(out, 2).split()[:4] == ["2", "assistant", "627", "-"]


def test_truncated_turn_is_reported_in_the_table(capsys):
    status, out = inspect(FIXTURES / "trailing_backslash.json", capsys=capsys)
    assert status == 1
    assert "truncation: TRAILING_BACKSLASH" in row(out, 4)
    assert all(row(out, n).endswith("-") for n in (1, 2, 3, 5, 6))
    assert out.splitlines()[-1].startswith("verdict: REJECTED — truncation: truncated assistant turn(s): 4")


def test_json_report_parses(capsys):
    status, out = inspect(FIXTURES / "unbalanced_quotes.json", "--json", capsys=capsys)
    report = json.loads(out)
    assert status == 1
    assert (report["verdict"], report["failure_type"]) == ("rejected", "truncation")
    assert [t["turn_number"] for t in report["turns"]] == [1, 2, 3, 4, 5, 6]
    assert [f["code"] for f in report["turns"][1]["findings"]] == ["UNBALANCED_QUOTES"]
    assert report["turns"][1]["length"] == len(
        json.loads((FIXTURES / "unbalanced_quotes.json").read_text())["turns"][1]["content"]
    )


def test_json_report_of_a_clean_response(capsys):
    status, out = inspect(FIXTURES / "clean_conversation.json", "--json", capsys=capsys)
    report = json.loads(out)
    assert status == 0 and report["ok"] is True and report["verdict"] == "accepted"
    assert all(t["findings"] == [] for t in report["turns"])


def test_max_tokens_and_persona_options(capsys):
    status, out = inspect(FIXTURES / "max_tokens_response.json", "--max-tokens", "16000", capsys=capsys)
    assert status == 1
    assert "truncated by max_tokens (16000)" in out
    assert "tokens: 16000 of 16000 max (100.0% used): hit max_tokens" in out
    status, out = inspect(
        FIXTURES / "persona_drift.json", "--persona", "Priya Nair - The Cautious Planner", capsys=capsys
    )
    assert status == 0
    assert "note: client_persona 'Priya N. - cautious first-time saver' replaced with" in out


def test_schema_error_is_reported(capsys):
    status, out = inspect(FIXTURES / "single_turn.json", "--json", capsys=capsys)
    report = json.loads(out)
    assert status == 1 and report["failure_type"] == "schema_error"
    assert [f["code"] for f in report["conversation_findings"]] == ["INSUFFICIENT_TURNS"]


def test_parse_error_is_reported(capsys):
    status, out = inspect(FIXTURES / "invalid_json.json", capsys=capsys)
    assert status == 1
    assert "conversation: parse_error: INVALID_JSON" in out


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="no such file") as excinfo:
        call_command("inspect_generation", str(tmp_path / "absent.json"))
    assert excinfo.value.returncode == 2


def test_unreadable_paths_are_clear_errors(tmp_path):
    with pytest.raises(CommandError, match="not a file"):
        call_command("inspect_generation", str(tmp_path))
    binary = tmp_path / "body.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CommandError, match="not UTF-8"):
        call_command("inspect_generation", str(binary))


def test_exit_statuses_from_the_command_line(tmp_path):
    assert run(str(FIXTURES / "clean_conversation.json")).returncode == 0
    rejected = run(str(FIXTURES / "cut_mid_word.json"))
    assert rejected.returncode == 1 and "ENDS_MID_SENTENCE" in rejected.stdout
    missing = run(str(tmp_path / "absent.json"))
    assert missing.returncode == 2
    assert "no such file" in missing.stderr and "Traceback" not in missing.stderr
    report = json.loads(run(str(FIXTURES / "refusal_response.json"), "--json").stdout)
    assert report["failure_type"] == "stop_reason"


@no_reference
def test_reference_truncated_raw(capsys):
    status, out = inspect(RAW_TRUNCATED, capsys=capsys)
    assert status == 1
    flagged = [n for n in range(1, 6) if "truncation:" in row(out, n)]
    assert flagged == [2, 4]
    assert all("TRAILING_BACKSLASH" in row(out, n) for n in (2, 4))


@pytest.mark.skipif(not RAW_CLEAN.exists(), reason="../shared reference data not present")
def test_reference_clean_raw(capsys):
    status, out = inspect(RAW_CLEAN, "--json", capsys=capsys)
    report = json.loads(out)
    assert status == 0 and report["verdict"] == "accepted"
    assert len(report["turns"]) == 8 and all(t["findings"] == [] for t in report["turns"])
