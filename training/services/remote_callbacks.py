"""Callbacks from remote training workers, and how a remote outcome becomes a job outcome (SPEC §10.4).

A worker posts JSON bodies to ``POST /api/v1/training-jobs/{id}/callback/`` signed with the job's
``callback_secret``: header ``X-Brightrun-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``. Body:
``{"job_id": "<uuid>", "type": <type>, ...fields}``:

* ``stage``: ``stage`` (text), ``progress`` (0–100, optional)
* ``started``: ``total_steps``, ``device``
* ``metric``: ``step``, ``epoch``, and any of ``training_loss``, ``validation_loss``, ``learning_rate``,
  ``grad_norm``, ``tokens_per_second``
* ``event``: ``kind`` (``epoch_end`` | ``checkpoint`` | ``stage``), ``message``, ``data`` (object)
* ``completed``: ``files`` ``[{name, size, sha256}]`` already PUT to the signed URLs, and optionally
  ``tokens_per_second``, ``train_tokens``, ``steps``, ``final_training_loss``, ``final_validation_loss``, ``device``
* ``failed``: ``message`` and optionally ``code`` (a trainer error code) and ``hint``
* ``cancelled``: nothing else

The answer is ``{"ok": true, "cancel": <cancel requested>}``; that is how a remote worker learns to stop.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import uuid
from typing import Any

from django.utils import timezone

from brightrun import storage
from brightrun.errors import ApplicationError
from training.models import TrainingEvent, TrainingJob
from training.services.finish import artifact_key
from training.services.jobs import (
    training_event_record,
    training_job_complete,
    training_job_fail,
    training_job_mark_cancelled,
    training_job_stage,
    training_job_start,
    training_metric_record,
)
from training.trainer.artifacts import ARTIFACT_FILES
from training.trainer.errors import CODES, HINTS, NAN_LOSS, OUT_OF_MEMORY, TRAINER_ERROR

SIGNATURE_HEADER = "X-Brightrun-Signature"
METRIC_FIELDS = ("training_loss", "validation_loss", "learning_rate", "grad_norm", "tokens_per_second")
REQUIRED_FILES = ("adapter_model.safetensors", "adapter_config.json")
WORKER_EVENT_KINDS = (TrainingEvent.Kind.EPOCH_END, TrainingEvent.Kind.CHECKPOINT, TrainingEvent.Kind.STAGE)
ARTIFACTS_MISSING_HINT = "The worker's upload did not arrive complete. Start the job again."
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Compared against when the job does not exist, so an unknown id costs the same as a bad signature.
_UNKNOWN_JOB_SECRET = "unknown-job-" + uuid.uuid4().hex


def callback_signature(*, secret: str, body: bytes) -> str:
    """The ``X-Brightrun-Signature`` value of ``body`` under ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def remote_failure(
    *, code: str | None = None, message: str | None = None, hint: str | None = None, error: Any = None
) -> dict[str, str]:
    """``{code, message, hint}`` for ``training_job_fail`` from what a worker reported.

    ``error`` may be a string or a ``{code, message, hint}`` object (RunPod's ``error`` or a handler's
    ``output.error``). A known trainer code is kept; otherwise the text is classified (out of memory, NaN
    loss) the same way the trainer classifies exceptions, with the matching hint.
    """
    if isinstance(error, dict):
        code = code or error.get("code")
        message = message or error.get("message")
        hint = hint or error.get("hint")
    elif error is not None and not message:
        message = str(error)
    text = (message or "The remote worker failed without a message.")[:2000]
    lowered = text.lower()
    if code not in CODES or code == TRAINER_ERROR:
        if "out of memory" in lowered or "outofmemoryerror" in lowered:
            code, hint = OUT_OF_MEMORY, None
        elif re.search(r"\bnan\b", lowered) or "non-finite" in lowered:
            code, hint = NAN_LOSS, None
        elif code not in CODES:
            code = code if isinstance(code, str) and re.fullmatch(r"[a-z_]{1,40}", code) else TRAINER_ERROR
    return {"code": code, "message": text, "hint": hint or HINTS.get(code, HINTS[TRAINER_ERROR])}


def _bad(message: str) -> ApplicationError:
    return ApplicationError(message, code="invalid_callback")


def _number(data: dict[str, Any], name: str, *, required: bool = False, integer: bool = False) -> Any:
    value = data.get(name)
    if value is None:
        if required:
            raise _bad(f"'{name}' is required.")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        # A NaN loss is still a measurement worth keeping out of the database; the trainer fails the job.
        if not required and isinstance(value, float):
            return None
        raise _bad(f"'{name}' must be a finite number.")
    if integer:
        if int(value) != value or value < 0:
            raise _bad(f"'{name}' must be a whole number.")
        return int(value)
    return float(value)


def _claimed_files(files: Any) -> list[dict[str, Any]]:
    if not isinstance(files, list):
        raise _bad("'files' must be a list.")
    claimed = []
    for item in files:
        if not isinstance(item, dict) or item.get("name") not in ARTIFACT_FILES:
            raise _bad(f"Unexpected artifact file {item!r}.")
        size, sha = item.get("size"), str(item.get("sha256") or "").lower()
        if isinstance(size, bool) or not isinstance(size, int) or size < 0 or not _SHA256.match(sha):
            raise _bad(f"Artifact file {item['name']!r} needs an integer size and a SHA-256.")
        claimed.append({"name": item["name"], "size": size, "sha256": sha})
    return claimed


def _stored_files(job: TrainingJob) -> list[dict[str, Any]]:
    """Artifact files found in storage (with their SHA-256), for a completion that listed none."""
    found = []
    backend = storage.file_storage()
    for name in ARTIFACT_FILES:
        key = artifact_key(job, name)
        if not backend.exists(key):
            continue
        digest = hashlib.sha256()
        with storage.open_stream(key) as stream:
            while chunk := stream.read(1024 * 1024):
                digest.update(chunk)
        found.append({"name": name, "size": backend.size(key), "sha256": digest.hexdigest()})
    return found


def remote_complete(
    *, job: TrainingJob, files: list[dict[str, Any]] | None, details: dict[str, Any] | None = None
) -> str:
    """Complete ``job`` from a worker's claim that its files are uploaded; returns ``completed`` or ``failed``.

    Each claimed file must now exist in storage with the claimed size (the SHA-256 is the worker's claim and
    is recorded as such); the adapter weights and config must be among them. Otherwise the job fails with
    ``artifacts_missing``. A job still ``preparing`` (its ``started`` callback never arrived) is started first.
    """
    details = details or {}
    claimed = _claimed_files(files) if files else _stored_files(job)
    backend = storage.file_storage()
    problems = [name for name in REQUIRED_FILES if name not in {f["name"] for f in claimed}]
    records = []
    for item in claimed:
        key = artifact_key(job, item["name"])
        if not backend.exists(key):
            problems.append(f"{item['name']} (not uploaded)")
        elif backend.size(key) != item["size"]:
            problems.append(f"{item['name']} ({backend.size(key)} bytes stored, {item['size']} reported)")
        records.append({**item, "key": key})
    if problems:
        training_job_fail(
            job=job,
            code="artifacts_missing",
            message="The worker reported success but its files are incomplete: " + ", ".join(problems),
            hint=ARTIFACTS_MISSING_HINT,
        )
        return "failed"
    if job.status == TrainingJob.Status.PREPARING:
        steps = details.get("steps")
        training_job_start(
            job=job,
            total_steps=steps if isinstance(steps, int) and steps >= 0 else 0,
            device=str(details.get("device") or "remote")[:100],
        )
    tokens_per_second = details.get("tokens_per_second")
    if isinstance(tokens_per_second, bool) or not isinstance(tokens_per_second, int | float):
        tokens_per_second = None
    summary = {
        name: details[name]
        for name in ("steps", "train_tokens", "final_training_loss", "final_validation_loss", "device")
        if name in details
    }
    try:
        training_job_complete(job=job, files=records, tokens_per_second=tokens_per_second, summary=summary or None)
    except ApplicationError:
        job.refresh_from_db(fields=["status"])
        if job.is_terminal:  # cancelled or failed meanwhile: that outcome stands
            return str(job.status)
        raise
    return "completed"


def remote_output_finish(*, job: TrainingJob, output: Any) -> str:
    """Apply a COMPLETED remote status with its handler ``output``; returns the outcome.

    ``output.status == "failed"`` is a failure (SPEC §14: never trust the envelope's COMPLETED alone),
    ``"cancelled"`` a cancellation, anything else a completion checked against storage.
    """
    output = output if isinstance(output, dict) else {}
    status = output.get("status")
    if status == "failed":
        training_job_fail(job=job, **remote_failure(error=output.get("error") or "The worker reported a failure."))
        return "failed"
    if status == "cancelled":
        training_job_mark_cancelled(job=job)
        return "cancelled"
    try:
        return remote_complete(job=job, files=output.get("files"), details=output)
    except ApplicationError as exc:
        training_job_fail(job=job, code="artifacts_missing", message=exc.message, hint=ARTIFACTS_MISSING_HINT)
        return "failed"


def _verified_job(job_id: Any, body: bytes, signature: str | None) -> TrainingJob:
    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        pk = None
    job = TrainingJob.objects.filter(pk=pk).first() if pk else None
    expected = callback_signature(secret=job.callback_secret if job else _UNKNOWN_JOB_SECRET, body=body)
    valid = hmac.compare_digest(expected.encode(), (signature or "").encode())
    if job is None or not valid:
        raise ApplicationError("The callback signature is not valid.", code="invalid_signature", status_code=403)
    return job


def _apply(job: TrainingJob, kind: str, data: dict[str, Any]) -> None:
    if kind == "stage":
        text = data.get("stage") or data.get("text") or data.get("message")
        if not isinstance(text, str) or not text:
            raise _bad("'stage' must be a non-empty string.")
        training_job_stage(job=job, stage=text[:200], progress=_number(data, "progress"))
    elif kind == "started":
        if job.status == TrainingJob.Status.PREPARING:
            total = _number(data, "total_steps", required=True, integer=True)
            training_job_start(job=job, total_steps=total, device=str(data.get("device") or "remote")[:100])
    elif kind == "metric":
        step = _number(data, "step", required=True, integer=True)
        epoch = _number(data, "epoch", required=True)
        values = {name: _number(data, name) for name in METRIC_FIELDS}
        training_metric_record(job=job, step=step, epoch=epoch, **values)  # also step, epoch, progress
    elif kind == "event":
        event_kind = data.get("kind")
        if event_kind not in WORKER_EVENT_KINDS:
            raise _bad(f"Event kind must be one of {', '.join(WORKER_EVENT_KINDS)}.")
        payload = data.get("data") or {}
        if not isinstance(payload, dict):
            raise _bad("'data' must be an object.")
        training_event_record(job=job, kind=event_kind, message=str(data.get("message") or "")[:500], data=payload)
    elif kind == "completed":
        remote_complete(job=job, files=data.get("files") or [], details=data)
    elif kind == "failed":
        code = data.get("code") if isinstance(data.get("code"), str) else None
        hint = data.get("hint") if isinstance(data.get("hint"), str) else None
        message = data.get("message")
        training_job_fail(job=job, **remote_failure(code=code, message=str(message) if message else None, hint=hint))
    elif kind == "cancelled":
        training_job_mark_cancelled(job=job)
    else:
        raise _bad(f"Unknown callback type {kind!r}.")


def training_job_callback(*, job_id: Any, body: bytes, signature: str | None) -> dict[str, bool]:
    """Apply one signed worker callback to its job. Called by the callback API view only.

    Verifies the HMAC of the raw ``body`` with ``hmac.compare_digest`` (403 ``invalid_signature`` for a bad or
    missing signature and, indistinguishably, for an unknown job), then records a heartbeat and maps the body
    onto the job services. Idempotent where it matters: a callback for a terminal job changes nothing and
    answers ``{"ok": true, "cancel": false}``; terminal transitions are conditional updates.
    """
    job = _verified_job(job_id, body, signature)
    if job.is_terminal:
        return {"ok": True, "cancel": False}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad("The body is not valid JSON.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise _bad("The body must be an object with a 'type'.")
    if data.get("job_id") not in (None, str(job.pk)):
        raise _bad("The body is for another job.")
    TrainingJob.objects.filter(pk=job.pk, status__in=TrainingJob.ACTIVE).update(heartbeat_at=timezone.now())
    _apply(job, data["type"], data)
    job.refresh_from_db(fields=["status", "cancel_requested_at"])
    return {"ok": True, "cancel": job.cancel_requested_at is not None}
