"""``python -m training.trainer --job JOB_JSON`` — run one training job from a spec file (or ``-`` for stdin).

With ``callback_url`` + ``callback_token`` in the spec, every report is POSTed there, signed (remote workers);
otherwise reports are JSON lines on stdout (anything else the libraries print goes to stderr). The last report
is ``completed`` (with ``files``: name, size, sha256 — uploaded first when ``artifact_uploads`` is given),
``cancelled`` or ``failed`` (code, message, hint).

Exit status: 0 completed or cancelled, 1 failed, 2 unusable job file or arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from training.trainer.errors import TrainerError, classify_exception
from training.trainer.reporters import CallbackReporter, JsonLinesReporter, MessageReporter


def _read_spec(source: str) -> dict[str, Any]:
    if source == "-":
        text = sys.stdin.read()
    else:
        with open(source, encoding="utf-8") as stream:
            text = stream.read()
    spec = json.loads(text)
    if not isinstance(spec, dict):
        raise ValueError("the job file must hold a JSON object")
    return spec


def _reporter(spec: dict[str, Any], stdout: Any) -> MessageReporter:
    job_id = str(spec.get("job_id") or "")
    if spec.get("callback_url"):
        if not spec.get("callback_token"):
            raise ValueError("callback_url needs callback_token")
        return CallbackReporter(str(spec["callback_url"]), str(spec["callback_token"]), job_id)
    return JsonLinesReporter(job_id, stream=stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.trainer", description="Run one LoRA training job.")
    parser.add_argument("--job", required=True, help="job spec JSON file, or - to read it from stdin")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")

    stdout = sys.stdout
    try:
        spec = _read_spec(args.job)
        reporter = _reporter(spec, stdout)
    except (OSError, ValueError) as exc:
        print(f"error: cannot use the job file: {exc}", file=sys.stderr)
        return 2

    from training.trainer.run import run_training

    sys.stdout = sys.stderr  # keep stdout for reports only
    try:
        try:
            result = run_training(spec, reporter)
        except Exception as exc:  # noqa: BLE001 - reported, then a non-zero exit
            error = exc if isinstance(exc, TrainerError) else classify_exception(exc)
            # One line, "training failed: <message> (<code>)": the remote handler reads it from stderr.
            message = " ".join(error.message.split())
            logging.getLogger(__name__).error("training failed: %s (%s)", message, error.code)
            reporter.failed(error.as_dict())
            return 1
        if result.status == "cancelled":
            reporter.cancelled(result.as_dict())
        else:
            reporter.completed(result.as_dict())
        return 0
    except OSError as exc:  # the terminal callback could not be delivered
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
