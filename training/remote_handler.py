"""The remote training worker: a RunPod-serverless handler around ``python -m training.trainer`` (SPEC §10.4).

The control plane (``training.services.remote``) posts ``{"input": {job_id, base_model {hf_id, local_path},
hyperparameters, dataset_url, validation_url, artifact_uploads, callback_url, callback_token}}`` to the
endpoint's ``/run``. :func:`handler` turns that input into a trainer job spec and runs the trainer CLI in a
child process (a crash, an out-of-memory kill or leaked CUDA memory cannot take the worker down with it).
The trainer itself downloads the dataset from the presigned URLs, PUTs the adapter files to the presigned
URLs and posts signed progress callbacks; the handler's return value becomes the job's ``output``:

* ``{"status": "completed", "files": [{name, size, sha256}], "device"}``
* ``{"status": "cancelled"}``
* ``{"status": "failed", "error": {"code", "message", "hint"}}`` — RunPod still says COMPLETED, so the control
  plane checks ``output.status`` (SPEC §14).

No Django: the image needs only the trainer's dependencies (and ``runpod`` to serve). Base models are read from
``$TRAINING_MODELS_DIR/<local_path>`` or ``$TRAINING_MODELS_DIR/<hf_id>`` when present (a network volume),
else downloaded by ``transformers`` from the Hugging Face Hub (``HF_HOME``, ``HF_TOKEN`` as usual).

Run: ``python -m training.remote_handler`` serves RunPod jobs (needs the ``runpod`` package);
``python -m training.remote_handler --input input.json`` runs one job locally and prints the output.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Any

from training.trainer.artifacts import ARTIFACT_FILES, sha256_of
from training.trainer.errors import HINTS, TRAINER_ERROR

_FAILED_LINE = re.compile(r"training failed: (?P<message>.*) \((?P<code>[a-z_]+)\)\s*$")
_SPEC_KEYS = ("job_id", "hyperparameters", "artifact_uploads", "callback_url", "callback_token", "max_steps")


def models_dir() -> Path:
    return Path(os.environ.get("TRAINING_MODELS_DIR") or "var/models")


def model_path(base_model: dict[str, Any], models: Path | None = None) -> str | None:
    """A local folder holding ``base_model`` if the worker has one, else None (the trainer downloads hf_id)."""
    models = models or models_dir()
    for name in (base_model.get("local_path"), base_model.get("hf_id")):
        if name and not Path(name).is_absolute() and ".." not in Path(name).parts:
            candidate = models / name
            if (candidate / "config.json").is_file():
                return str(candidate)
    return None


def spec_from_input(job_input: dict[str, Any], *, work_dir: Path, models: Path | None = None) -> dict[str, Any]:
    """The trainer job spec (see ``training.trainer.spec``) for one remote job's ``input``."""
    base_model = job_input.get("base_model") or {}
    if not isinstance(base_model, dict):
        raise ValueError("base_model must be an object")
    spec: dict[str, Any] = {key: job_input[key] for key in _SPEC_KEYS if job_input.get(key) is not None}
    spec["base_model"] = {"hf_id": base_model.get("hf_id") or "", "path": model_path(base_model, models)}
    spec["train_url"] = job_input.get("dataset_url")
    if job_input.get("validation_url"):
        spec["validation_url"] = job_input["validation_url"]
    spec["output_dir"] = str(work_dir / "output")
    return spec


def _failure(code: str, message: str) -> dict[str, Any]:
    code = code if code in HINTS else TRAINER_ERROR
    return {"status": "failed", "error": {"code": code, "message": message[:2000], "hint": HINTS[code]}}


def run_job(
    job_input: dict[str, Any], *, work_dir: Path | None = None, models: Path | None = None, timeout: float | None = None
) -> dict[str, Any]:
    """Run one job through ``python -m training.trainer`` and summarise it as the handler's output."""
    own_dir = work_dir is None
    work_dir = Path(tempfile.mkdtemp(prefix="brightrun-job-")) if own_dir else Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        try:
            spec = spec_from_input(job_input, work_dir=work_dir, models=models)
        except ValueError as exc:
            return _failure(TRAINER_ERROR, f"Invalid job input: {exc}")
        spec_path = work_dir / "job.json"
        spec_path.write_text(json.dumps(spec))
        returncode, stderr = _run_trainer(spec_path, timeout)
        if returncode is None:
            return _failure(TRAINER_ERROR, f"The trainer ran past the worker's limit of {timeout} seconds.")
        if returncode != 0:
            return _failure_from_log(returncode, stderr)
        adapter = Path(spec["output_dir"]) / "adapter"
        if not all((adapter / name).is_file() for name in ARTIFACT_FILES):
            return {"status": "cancelled"}
        files = [
            {"name": name, "size": (adapter / name).stat().st_size, "sha256": sha256_of(adapter / name)}
            for name in ARTIFACT_FILES
        ]
        return {"status": "completed", "files": files}
    finally:
        if own_dir:
            shutil.rmtree(work_dir, ignore_errors=True)


def _run_trainer(spec_path: Path, timeout: float | None) -> tuple[int | None, str]:
    """Run the trainer CLI, passing its log through to this process's stderr; returns (exit status, log tail)."""
    process = subprocess.Popen(  # noqa: S603 - our own module, arguments not from a shell
        [sys.executable, "-m", "training.trainer", "--job", str(spec_path)], stderr=subprocess.PIPE, text=True
    )
    tail: deque[str] = deque(maxlen=200)

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            sys.stderr.write(line)
            tail.append(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        returncode: int | None = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        returncode = None
    reader.join(timeout=10)
    return returncode, "".join(tail)


def _failure_from_log(returncode: int, stderr: str) -> dict[str, Any]:
    for line in reversed(stderr.splitlines()):
        match = _FAILED_LINE.search(line)
        if match:
            return _failure(match["code"], match["message"])
    if returncode < 0:
        return _failure(TRAINER_ERROR, f"The trainer was killed by signal {-returncode} (out of host memory?).")
    tail = " ".join(stderr.strip().splitlines()[-5:]) or f"exit status {returncode}"
    return _failure(TRAINER_ERROR, f"The trainer failed: {tail}")


def handler(event: dict[str, Any]) -> dict[str, Any]:
    """The RunPod serverless handler: ``event["input"]`` is the control plane's payload."""
    job_input = event.get("input")
    if not isinstance(job_input, dict):
        return _failure(TRAINER_ERROR, "The job has no input object.")
    return run_job(job_input)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.remote_handler", description=__doc__.split("\n")[0])
    parser.add_argument("--input", help="run one job from this input JSON file (- for stdin) and print the output")
    args = parser.parse_args(argv)
    if args.input:
        text = sys.stdin.read() if args.input == "-" else Path(args.input).read_text()
        output = handler({"input": json.loads(text)})
        print(json.dumps(output))
        return 0 if output.get("status") != "failed" else 1
    import runpod  # the serving SDK is installed only in the remote worker image

    runpod.serverless.start({"handler": handler})
    return 0


if __name__ == "__main__":
    sys.exit(main())
