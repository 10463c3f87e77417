"""Dataset lifecycle: create an upload, confirm it, import a training-file version, re-validate, delete.

Callers: the API, the web views, the admin. Every service re-checks that the actor owns what it is handed
(they are also called from the shell and the admin), changes status with a conditional update along
``Dataset.TRANSITIONS`` and enqueues validation only after the transaction commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from brightrun.errors import ApplicationError
from brightrun.storage import (
    UploadInstructions,
    copy_object,
    download_url,
    owned_key,
    storage_unavailable_errors,
    upload_instructions,
    uploaded_object_check,
)
from datasets.models import Dataset
from training_files.models import TrainingFileVersion

Status = Dataset.Status
NAME_MAX = 200
FILE_NAME_MAX = 255
CONTEXT_TOKENS_RANGE = (256, 2_097_152)
#: Upload instructions live this long (SPEC §9.1: 1 h).
UPLOAD_URL_TTL = 3600
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class PendingUpload:
    dataset: Dataset
    instructions: UploadInstructions
    expires_at: datetime


def _clean_name(name: Any) -> str:
    cleaned = name.strip() if isinstance(name, str) else ""
    if not cleaned:
        raise ApplicationError("A dataset needs a name.", code="invalid_name")
    if len(cleaned) > NAME_MAX:
        raise ApplicationError(f"The name is longer than {NAME_MAX} characters.", code="invalid_name")
    return cleaned


def _safe_file_name(file_name: Any) -> str:
    """The last path segment of ``file_name`` with unsafe characters replaced (it becomes part of a key)."""
    raw = file_name.replace("\\", "/").rsplit("/", 1)[-1].strip() if isinstance(file_name, str) else ""
    safe = _UNSAFE.sub("_", raw).strip("._")[:FILE_NAME_MAX]
    if not safe:
        raise ApplicationError("Give the file's name, e.g. train.jsonl.", code="invalid_file_name")
    return safe


#: What a dataset file may be called and declared as (SPEC §9: JSON Lines). The content is what counts — the
#: validator reads every byte and names binaries renamed ``.jsonl`` — but a file that says it is something else
#: (``report.pdf``, ``image/png``) is refused before anything is stored.
FILE_EXTENSIONS = (".jsonl", ".ndjson", ".json", ".txt")
CONTENT_TYPES = frozenset(
    {
        "",
        "application/octet-stream",
        "application/json",
        "application/jsonl",
        "application/x-jsonlines",
        "application/x-ndjson",
        "application/ndjson",
        "text/plain",
        "text/jsonl",
    }
)
#: The type every stored dataset object gets (S3 policy / local upload), whatever the browser declared.
STORED_CONTENT_TYPE = "application/jsonl"


def check_file_type(file_name: str, content_type: str | None = None) -> None:
    """Refuse a dataset file by its name or declared type: ``unsupported_file_type``."""
    if not file_name.lower().endswith(FILE_EXTENSIONS):
        raise ApplicationError(
            f"“{file_name}” is not a JSON Lines file; upload a {', '.join(FILE_EXTENSIONS)} file.",
            code="unsupported_file_type",
        )
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    if declared not in CONTENT_TYPES:
        raise ApplicationError(
            f"The file was sent as {declared}; a dataset is JSON Lines text (application/jsonl).",
            code="unsupported_file_type",
        )


def _check_size(file_size: Any) -> int:
    limit = settings.DATASET_MAX_BYTES
    if isinstance(file_size, bool) or not isinstance(file_size, int) or file_size < 1:
        raise ApplicationError("Give the file's size in bytes (at least 1).", code="invalid_file_size")
    if file_size > limit:
        raise ApplicationError(
            f"The file has {file_size:,} bytes; the limit is {limit:,} bytes ({limit // 2**20} MB).",
            code="file_too_large",
        )
    return file_size


def _check_context(context_tokens: Any) -> int | None:
    if context_tokens in (None, ""):
        return None
    low, high = CONTEXT_TOKENS_RANGE
    if isinstance(context_tokens, bool) or not isinstance(context_tokens, int) or not low <= context_tokens <= high:
        raise ApplicationError(
            f"The context length must be a whole number of tokens from {low:,} to {high:,}.",
            code="invalid_context_tokens",
        )
    return context_tokens


def _check_format(fmt: Any) -> str:
    if fmt in (None, ""):
        return Dataset.Format.AUTO
    if fmt not in Dataset.Format.values:
        raise ApplicationError(
            f"Unknown format {fmt!r}; use one of {', '.join(Dataset.Format.values)}.", code="invalid_format"
        )
    return fmt


def _check_actor(dataset: Dataset, actor: Any) -> None:
    if dataset.owner_id != getattr(actor, "pk", None) and not getattr(actor, "is_staff", False):
        raise ApplicationError("Dataset not found.", code="not_found", status_code=404)


def dataset_validation_enqueue(*, dataset: Dataset) -> None:
    """Enqueue ``dataset_validate_task`` once the current transaction commits (records when)."""
    from datasets.tasks import dataset_validate_task

    Dataset.objects.filter(pk=dataset.pk).update(validation_enqueued_at=timezone.now(), validation_started_at=None)
    dataset_id = str(dataset.pk)
    transaction.on_commit(lambda: dataset_validate_task.delay(dataset_id))


def upload_for(dataset: Dataset) -> PendingUpload:
    """Fresh upload instructions for a dataset still ``uploading`` (a retry after a failed upload)."""
    if dataset.status != Status.UPLOADING:
        raise ApplicationError(f"The dataset is {dataset.status}; its file was already received.", code="not_uploading")
    instructions = upload_instructions(
        owner_id=dataset.owner_id,
        key=dataset.storage_key,
        max_bytes=settings.DATASET_MAX_BYTES,
        ttl=UPLOAD_URL_TTL,
        content_type=STORED_CONTENT_TYPE,
    )
    return PendingUpload(dataset, instructions, timezone.now() + timedelta(seconds=UPLOAD_URL_TTL))


@transaction.atomic
def dataset_create(
    *,
    owner: Any,
    name: str,
    file_name: str,
    file_size: int,
    format: str | None = None,
    description: str = "",
    context_tokens: int | None = None,
    context_model: str = "",
) -> PendingUpload:
    """Create an ``uploading`` dataset of ``owner`` and instructions to upload its file directly to storage.

    The size limit (``DATASET_MAX_BYTES``) is enforced here, before anything is stored, and again by the
    storage policy (S3 ``content-length-range`` / the signed local upload). Codes: ``invalid_name``,
    ``invalid_file_name``, ``unsupported_file_type`` (not ``.jsonl``/``.ndjson``/``.json``/``.txt``),
    ``invalid_file_size``, ``file_too_large``, ``invalid_format``, ``invalid_context_tokens``.
    """
    name = _clean_name(name)
    safe_name = _safe_file_name(file_name)
    check_file_type(safe_name)
    size = _check_size(file_size)
    requested = _check_format(format)
    context = _check_context(context_tokens)
    dataset = Dataset(
        owner=owner,
        name=name,
        description=description or "",
        source=Dataset.Source.UPLOAD,
        status=Status.UPLOADING,
        requested_format=requested,
        file_name=safe_name,
        declared_size=size,
        context_tokens=context,
        context_model=(context_model or "")[:200] if context else "",
        upload_expires_at=timezone.now() + timedelta(hours=settings.DATASET_UPLOAD_EXPIRY_HOURS),
    )
    dataset.storage_key = owned_key(owner.pk, "datasets", str(dataset.pk), safe_name)
    dataset.save()
    return upload_for(dataset)


@transaction.atomic
def dataset_confirm(*, dataset: Dataset, actor: Any) -> Dataset:
    """The client finished uploading: check the stored object and start validation (idempotent).

    A dataset already past ``uploading`` is returned unchanged, so a repeated confirm enqueues nothing. The row
    is locked, so two concurrent confirms enqueue once. Codes: ``upload_missing``, ``file_too_large`` (the
    object is deleted), ``empty_file``, ``dataset_deleted``, ``storage_unavailable`` (503: storage could not be
    reached; the dataset stays ``uploading`` and a later confirm goes on).
    """
    _check_actor(dataset, actor)
    locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
    if locked.status == Status.DELETED:
        raise ApplicationError("This dataset was deleted.", code="dataset_deleted")
    if locked.status != Status.UPLOADING:
        return locked
    with storage_unavailable_errors("dataset confirm"):
        size = uploaded_object_check(
            owner_id=locked.owner_id, key=locked.storage_key, max_bytes=settings.DATASET_MAX_BYTES
        )
    now = timezone.now()
    Dataset.objects.filter(pk=locked.pk, status=Status.UPLOADING).update(
        status=Status.VALIDATING, size=size, confirmed_at=now, upload_expires_at=None, updated_at=now
    )
    dataset_validation_enqueue(dataset=locked)
    locked.refresh_from_db()
    return locked


def _import_version(*, owner: Any, training_file: Any, version: Any) -> TrainingFileVersion:
    """The owner's ready version (by number) of the owner's training file; 404-style errors otherwise."""
    from training_files.models import TrainingFile

    if isinstance(training_file, TrainingFile):
        file_obj = training_file if training_file.owner_id == owner.pk else None
    else:
        file_obj = TrainingFile.objects.for_user(owner).filter(pk=training_file).first() if training_file else None
    if file_obj is None:
        raise ApplicationError("That training file does not exist.", code="training_file_not_found", status_code=404)
    try:
        number = int(version) if version is not None else None
    except (TypeError, ValueError):
        number = -1
    chosen = file_obj.current_version if number is None else file_obj.versions.filter(number=number).first()
    if chosen is None:
        raise ApplicationError("That version does not exist.", code="version_not_found", status_code=404)
    if chosen.status != TrainingFileVersion.Status.READY or "chat-jsonl" not in (chosen.files or {}):
        raise ApplicationError(
            f"Version {chosen.number} is {chosen.status}; import it once it is ready.", code="version_not_ready"
        )
    return chosen


@transaction.atomic
def dataset_import(
    *, owner: Any, training_file: Any, version: Any = None, name: str | None = None, context_tokens: int | None = None
) -> Dataset:
    """Import a training-file version's chat JSONL as a dataset of ``owner``; validation follows as for uploads.

    ``training_file`` is a file (or its id) that ``owner`` owns; ``version`` its number (default: current).
    The file is copied under the dataset's own key, so deleting either never touches the other. Codes:
    ``training_file_not_found`` / ``version_not_found`` (404), ``version_not_ready``.
    """
    chosen = _import_version(owner=owner, training_file=training_file, version=version)
    entry = chosen.files["chat-jsonl"]
    default_name = f"{chosen.training_file.name} v{chosen.number}"
    dataset = Dataset(
        owner=owner,
        name=_clean_name(name) if name else default_name[:NAME_MAX],
        source=Dataset.Source.IMPORT,
        status=Status.VALIDATING,
        requested_format=Dataset.Format.CHAT,
        file_name=_safe_file_name(entry["filename"]),
        declared_size=entry["size"],
        context_tokens=_check_context(context_tokens),
        training_file_version=chosen,
        confirmed_at=timezone.now(),
    )
    dataset.storage_key = owned_key(owner.pk, "datasets", str(dataset.pk), dataset.file_name)
    dataset.size = copy_object(source_key=entry["key"], target_key=dataset.storage_key)
    dataset.save()
    dataset_validation_enqueue(dataset=dataset)
    return dataset


@transaction.atomic
def dataset_revalidate(
    *, dataset: Dataset, actor: Any, context_tokens: Any = "unchanged", context_model: str | None = None
) -> Dataset:
    """Validate a ``ready`` or ``invalid`` dataset again, optionally against another context length.

    Code ``not_validated_yet`` while uploading or validating, ``dataset_deleted`` after delete.
    """
    _check_actor(dataset, actor)
    locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
    if locked.status == Status.DELETED:
        raise ApplicationError("This dataset was deleted.", code="dataset_deleted")
    if locked.status not in (Status.READY, Status.INVALID):
        raise ApplicationError(f"The dataset is {locked.status}; wait until it is checked.", code="not_validated_yet")
    changes: dict[str, Any] = {"status": Status.VALIDATING, "validation_attempts": 0, "error": ""}
    if context_tokens != "unchanged":
        context = _check_context(context_tokens)
        changes["context_tokens"] = context
        changes["context_model"] = (context_model or "")[:200] if context else ""
    Dataset.objects.filter(pk=locked.pk, status=locked.status).update(**changes, updated_at=timezone.now())
    dataset_validation_enqueue(dataset=locked)
    locked.refresh_from_db()
    return locked


@transaction.atomic
def dataset_delete(*, dataset: Dataset, actor: Any) -> Dataset:
    """Soft-delete a dataset (idempotent). Its stored file is removed by the cleanup task after 30 days."""
    _check_actor(dataset, actor)
    now = timezone.now()
    Dataset.objects.filter(pk=dataset.pk).exclude(status=Status.DELETED).update(
        status=Status.DELETED, deleted_at=now, updated_at=now
    )
    dataset.refresh_from_db()
    return dataset


def dataset_download(*, dataset: Dataset) -> dict[str, Any]:
    """A short-lived signed URL to the dataset's file (the caller checked ownership). Code ``no_file``."""
    if dataset.status in (Status.UPLOADING, Status.DELETED):
        raise ApplicationError(f"The dataset is {dataset.status}; there is no file to download.", code="no_file")
    ttl = settings.SIGNED_URL_TTL_SECONDS
    url = download_url(owner_id=dataset.owner_id, key=dataset.storage_key, ttl=ttl, filename=dataset.file_name)
    return {
        "url": url,
        "expires_at": timezone.now() + timedelta(seconds=ttl),
        "size": dataset.size,
        "filename": dataset.file_name,
    }
