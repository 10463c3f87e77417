"""``manage.py validate_dataset``: output, ``--json``, and exit status 0 valid / 1 invalid / 2 usage error."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from datasets.validation import validate_stream

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = Path(settings.BASE_DIR).parent / "shared" / "reference" / "original"


def run(*args: str) -> tuple[str, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("validate_dataset", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def test_human_output_lists_counts_issues_and_statistics():
    out, error = run(str(FIXTURES / "legacy_invalid.jsonl"))
    assert error is not None and error.returncode == 1
    assert "INVALID" in out.splitlines()[0] and "format: turns" in out
    assert "  EMPTY_MESSAGES" in out
    assert "  line 2  EMPTY_MESSAGES  turns: 'turns' is an empty list; an example needs messages. — " in out
    assert "  line 5  INVALID_JSON  the line is not valid JSON" in out
    assert "  file  TOO_FEW_EXAMPLES  the file has 1 valid example; at least 10 are required." in out
    assert "examples 1   trainable pairs 0" in out and "split (10% validation)" in out


def test_json_output_is_the_report():
    path = FIXTURES / "valid_chat.jsonl"
    out, error = run(str(path), "--json", "--validation-percent", "20", "--context-tokens", "100")
    assert error is None
    printed = json.loads(out)
    with path.open("rb") as stream:
        expected = validate_stream(stream, validation_percent=20, context_tokens=100).as_dict()
    printed.pop("duration_seconds"), expected.pop("duration_seconds")
    assert printed == expected
    assert printed["status"] == "valid" and set(printed["counts"]) == {"EXCEEDS_CONTEXT"}


def test_options_are_passed_through():
    out, error = run(str(FIXTURES / "legacy_sample.jsonl"), "--min-examples", "5", "--format", "turns")
    assert error is None and "VALID" in out.splitlines()[0]
    _, error = run(str(FIXTURES / "legacy_sample.jsonl"), "--format", "chat")
    assert error is not None and error.returncode == 1


@pytest.mark.parametrize("workers", ["1", "3"])
def test_workers_give_the_same_report(workers, tmp_path, monkeypatch):
    monkeypatch.setattr("datasets.validation.parallel.PARALLEL_MIN_BYTES", 0)  # parallel for small files too
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join((FIXTURES / name).read_bytes() for name in ("valid_chat.jsonl", "MIXED_FORMATS.jsonl")))
    out, error = run(str(path), "--json", "--workers", workers, "--min-examples", "1")
    assert error is not None and error.returncode == 1
    with path.open("rb") as stream:
        expected = validate_stream(stream, min_examples=1).as_dict()
    printed = json.loads(out)
    printed.pop("duration_seconds"), expected.pop("duration_seconds")
    assert printed == expected and printed["counts"]["MIXED_FORMATS"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/data.jsonl"], "no such file"),
        ([str(FIXTURES)], "not a file"),
        ([str(FIXTURES / "valid_chat.jsonl"), "--validation-percent", "101"], "--validation-percent must be"),
        ([str(FIXTURES / "valid_chat.jsonl"), "--context-tokens", "0"], "--context-tokens must be"),
        ([str(FIXTURES / "valid_chat.jsonl"), "--min-examples", "-1"], "--min-examples must be"),
        ([str(FIXTURES / "valid_chat.jsonl"), "--workers", "0"], "--workers must be"),
    ],
)
def test_usage_errors_return_2(args, message):
    _, error = run(*args)
    assert error is not None and error.returncode == 2 and message in str(error)


@pytest.mark.parametrize("source", ["fixture", "reference"])
def test_legacy_files_acceptance(source):
    if source == "reference":
        if not REFERENCE.exists():
            pytest.skip("reference data not beside this checkout")
        invalid, sample = REFERENCE / "invalid-dataset.jsonl", REFERENCE / "sample-dataset.jsonl"
    else:
        invalid, sample = FIXTURES / "legacy_invalid.jsonl", FIXTURES / "legacy_sample.jsonl"
    out, error = run(str(invalid), "--json")
    report = json.loads(out)
    assert error is not None and error.returncode == 1
    assert {i["line"] for i in report["issues"] if i["severity"] == "error"} == {2, 3, 4, 5, 6, None}
    out, error = run(str(sample), "--json")
    report = json.loads(out)
    assert error.returncode == 1 and report["counts"] == {"TOO_FEW_EXAMPLES": 1}
    assert report["statistics"]["examples"] == 5
    _, error = run(str(sample), "--min-examples", "5")
    assert error is None


def _manage(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "brightrun.settings_test"}
    return subprocess.run(
        [sys.executable, "manage.py", "validate_dataset", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_exit_status_from_a_real_process():
    valid = _manage(str(FIXTURES / "valid_chat.jsonl"))
    assert valid.returncode == 0, valid.stderr
    invalid = _manage(str(FIXTURES / "legacy_invalid.jsonl"), "--json")
    assert invalid.returncode == 1
    assert json.loads(invalid.stdout)["status"] == "invalid"  # stdout is only the JSON report
    assert _manage("/nonexistent/data.jsonl").returncode == 2
    assert _manage(str(FIXTURES / "valid_chat.jsonl"), "--format", "csv").returncode == 2  # argparse
    assert _manage(str(FIXTURES / "valid_chat.jsonl"), "--context-tokens", "x").returncode == 2
