"""Training-file services: create, change membership, build, retry, download (SPEC §7.1).

Callers: the API, the admin, the management command and ``training_files.tasks``. Every mutation re-checks
ownership of what it is handed, locks the training file row while it numbers versions, and enqueues builds
only after the transaction commits.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q, QuerySet
from django.utils import timezone

from brightrun.errors import ApplicationError
from brightrun.heartbeat import Heartbeat
from brightrun.storage import download_url
from conversations.services.scaffolding import vertical_active
from training_files.models import TrainingFile, TrainingFileMember, TrainingFileVersion
from training_files.services import build as builder
from training_files.services.gate import NOT_FOUND, NOT_MEMBER, GateResult, training_file_gate

logger = logging.getLogger(__name__)

Status = TrainingFileVersion.Status
NAME_MAX = 200


def _clean_name(name: Any) -> str:
    cleaned = (name or "").strip() if isinstance(name, str) else ""
    if not cleaned:
        raise ApplicationError("A training file needs a name.", code="invalid_name")
    if len(cleaned) > NAME_MAX:
        raise ApplicationError(f"The name is longer than {NAME_MAX} characters.", code="invalid_name")
    return cleaned


def training_file_build_enqueue(*, version: TrainingFileVersion) -> None:
    """Enqueue ``training_file_build_task`` for ``version`` once the current transaction commits."""
    from training_files.tasks import training_file_build_task

    version_id = str(version.pk)
    transaction.on_commit(lambda: training_file_build_task.delay(version_id))


def _new_version(*, training_file: TrainingFile, member_ids: list[str], actor: Any) -> TrainingFileVersion:
    number = (training_file.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = TrainingFileVersion.objects.create(
        owner_id=training_file.owner_id,
        training_file=training_file,
        number=number,
        status=Status.BUILDING,
        member_ids=sorted(member_ids),
        conversation_count=len(member_ids),
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    training_file_build_enqueue(version=version)
    return version


@transaction.atomic
def training_file_create(
    *,
    owner: Any,
    name: str,
    description: str = "",
    conversation_ids: list[Any],
    allow_duplicates: bool = False,
) -> tuple[TrainingFile, GateResult]:
    """Create a training file of ``owner`` with the conversations the gate accepts, and version 1 (building).

    Raises ``name_taken`` when ``owner`` already has a file of that name and ``no_eligible_conversations``
    (with the per-conversation reasons under ``errors``) when the gate accepts nothing; nothing is created
    then. The build of version 1 is enqueued after commit. Returns the file and the gate's result.
    """
    name = _clean_name(name)
    if TrainingFile.objects.filter(owner=owner, name=name).exists():
        raise ApplicationError(f"You already have a training file named {name!r}.", code="name_taken")
    gate = training_file_gate(conversations=conversation_ids, owner=owner, allow_duplicates=allow_duplicates)
    if not gate.accepted:
        raise ApplicationError(
            "None of the conversations can join a training file.",
            code="no_eligible_conversations",
            errors={"rejected": gate.rejected},
        )
    try:
        with transaction.atomic():
            training_file = TrainingFile.objects.create(owner=owner, name=name, description=description or "")
    except IntegrityError as exc:  # a concurrent create with the same name
        raise ApplicationError(f"You already have a training file named {name!r}.", code="name_taken") from exc
    now = timezone.now()
    TrainingFileMember.objects.bulk_create(
        TrainingFileMember(owner=owner, training_file=training_file, conversation=c, added_at=now, added_by=owner)
        for c in gate.accepted
    )
    _new_version(training_file=training_file, member_ids=[str(c.pk) for c in gate.accepted], actor=owner)
    return training_file, gate


@transaction.atomic
def training_file_members_update(
    *,
    training_file: TrainingFile,
    actor: Any,
    add: list[Any] | tuple = (),
    remove: list[Any] | tuple = (),
    allow_duplicates: bool = False,
) -> tuple[TrainingFileVersion, GateResult]:
    """Add and remove members of ``training_file``; a new version (building) with the new member set.

    ``actor`` must own the file (staff may act for the owner from the admin). Removals are applied first,
    then additions go through the gate against the remaining members. Ids to remove that are not members are
    reported as ``not_member`` (``not_found`` when malformed). Raises ``no_changes`` when nothing would change
    and ``empty_training_file`` when no member would remain. Older versions are untouched and stay
    downloadable. Locks the file row, so concurrent updates get consecutive version numbers.
    """
    if getattr(actor, "pk", None) != training_file.owner_id and not getattr(actor, "is_staff", False):
        raise ApplicationError("No training file matches the given query.", code="not_found", status_code=404)
    training_file = TrainingFile.objects.select_for_update().get(pk=training_file.pk)
    current = {str(pk) for pk in training_file.members.values_list("conversation_id", flat=True)}

    rejected: list[dict[str, Any]] = []
    removing: set[str] = set()
    for raw in remove:
        key = str(getattr(raw, "pk", raw))
        if key in current:
            removing.add(key)
        else:
            rejected.append({"conversation_id": key, "reasons": [NOT_MEMBER if _is_uuid(key) else NOT_FOUND]})
    remaining = current - removing
    gate = training_file_gate(
        conversations=add, owner=training_file.owner_id, existing_ids=remaining, allow_duplicates=allow_duplicates
    )
    if not removing and not gate.accepted:
        raise ApplicationError(
            "Nothing to change: no conversation can be added or removed.",
            code="no_changes",
            errors={"rejected": gate.rejected + rejected},
        )
    members = remaining | {str(c.pk) for c in gate.accepted}
    if not members:
        raise ApplicationError("A training file needs at least one conversation.", code="empty_training_file")

    if removing:
        training_file.members.filter(conversation_id__in=removing).delete()
    now = timezone.now()
    TrainingFileMember.objects.bulk_create(
        TrainingFileMember(
            owner_id=training_file.owner_id,
            training_file=training_file,
            conversation=c,
            added_at=now,
            added_by=actor if getattr(actor, "pk", None) else None,
        )
        for c in gate.accepted
    )
    TrainingFile.objects.filter(pk=training_file.pk).update(updated_at=now)
    version = _new_version(training_file=training_file, member_ids=list(members), actor=actor)
    return version, GateResult(gate.accepted, gate.rejected + rejected)


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def build_stale_after() -> timedelta:
    """How long a build may go without touching its claim before the sweeper presumes its worker lost."""
    return timedelta(seconds=settings.TRAINING_FILE_BUILD_STALE_SECONDS)


def _claim(version: TrainingFileVersion) -> datetime | None:
    """Take a building version (one claimant wins); the claim time is the token every later write checks.

    A claim older than the stale window is free again: its worker stopped heartbeating (the sweeper normally
    releases it first). Each claim counts as one build attempt.
    """
    now = timezone.now()
    claimed = (
        TrainingFileVersion.objects.filter(pk=version.pk, status=Status.BUILDING)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - build_stale_after()))
        .update(claimed_at=now, build_attempts=F("build_attempts") + 1, updated_at=now)
    )
    return now if claimed else None


class _BuildClaim:
    """The claim token of a running build, moved forward by its heartbeat (``claimed_at`` = last sign of life)."""

    def __init__(self, version_id: Any, token: datetime):
        self.version_id = version_id
        self.token = token

    def beat(self) -> bool:
        now = timezone.now()
        moved = TrainingFileVersion.objects.filter(
            pk=self.version_id, status=Status.BUILDING, claimed_at=self.token
        ).update(claimed_at=now)
        if moved:
            self.token = now
        return bool(moved)

    def mine(self) -> QuerySet:
        return TrainingFileVersion.objects.filter(pk=self.version_id, status=Status.BUILDING, claimed_at=self.token)


def _fail(version: TrainingFileVersion, error: str, claim: _BuildClaim | None = None) -> None:
    rows = claim.mine() if claim else TrainingFileVersion.objects.filter(pk=version.pk, status=Status.BUILDING)
    rows.update(status=Status.FAILED, error=error[:4000], files={}, claimed_at=None, updated_at=timezone.now())


def training_file_build(*, version: TrainingFileVersion) -> TrainingFileVersion:
    """Render ``version`` into every format and store the files; the worker body (not in a transaction).

    Idempotent: a version that is not ``building``, or that another worker has claimed, is returned as it is.
    While it runs, a heartbeat thread refreshes ``claimed_at`` (the claim token) every third of
    ``TRAINING_FILE_BUILD_STALE_SECONDS``, so the build sweeper never takes a live build; a build whose claim
    was taken back (its worker stalled past the window) writes nothing more and leaves the version to the new
    claimant. On success the version becomes ``ready`` (conditional update) with counts, summaries and per-format
    ``{key, filename, size, sha256}``, and becomes the file's current version unless a newer ready one is.
    Any failure marks the version ``failed`` with the error and deletes what was stored; the previous ready
    version stays current. Memory stays flat in the number of conversations (see ``build``).
    """
    token = _claim(version)
    if token is None:
        version.refresh_from_db()
        return version
    claim = _BuildClaim(version.pk, token)
    stored: list[str] = []
    heartbeat = Heartbeat(claim.beat, build_stale_after().total_seconds() / 3, name=f"build-{version.pk}")
    try:
        with heartbeat:
            version = TrainingFileVersion.objects.select_related("training_file").get(pk=version.pk)
            files, conversations, pairs, summary, distribution, now = _render_and_store(version, heartbeat, stored)
        with transaction.atomic():
            updated = claim.mine().update(
                status=Status.READY,
                conversation_count=conversations,
                training_pair_count=pairs,
                quality_summary=summary,
                scaffolding_distribution=distribution,
                files=files,
                error="",
                built_at=now,
                claimed_at=None,
                updated_at=now,
            )
            if updated:
                TrainingFile.objects.filter(pk=version.training_file_id).filter(
                    Q(current_version__isnull=True) | Q(current_version__number__lt=version.number)
                ).update(current_version=version, updated_at=now)
        if not updated and not _claimed_by_another(version, claim):
            builder.delete_stored(stored)
    except Exception as exc:
        if isinstance(exc, _ClaimLost) or _claimed_by_another(version, claim):
            # The sweeper handed the build to another worker, which writes the same keys: leave them to it.
            logger.warning("training file version %s: claim lost, leaving the build to its new claimant", version.pk)
        else:
            logger.exception("training file version %s failed to build", version.pk)
            builder.delete_stored(stored)
            message = exc.message if isinstance(exc, ApplicationError) else f"{type(exc).__name__}: {exc}"
            _fail(version, message, claim)
    version.refresh_from_db()
    return version


class _ClaimLost(Exception):
    """The build's claim was taken back while it ran (its heartbeat stopped being accepted)."""


def _claimed_by_another(version: TrainingFileVersion, claim: _BuildClaim) -> bool:
    return (
        TrainingFileVersion.objects.filter(pk=version.pk, status=Status.BUILDING)
        .exclude(claimed_at=claim.token)
        .exists()
    )


def _render_and_store(
    version: TrainingFileVersion, heartbeat: Heartbeat, stored: list[str]
) -> tuple[dict[str, dict[str, Any]], int, int, dict[str, Any], dict[str, Any], datetime]:
    """Render every format into a work folder and stream each to storage; ``stored`` collects the keys written.

    Stops before writing to storage when the claim was lost (``_ClaimLost``): the new claimant owns the keys.
    """
    vertical = vertical_active()
    members = builder.member_queryset(version)
    summary = builder.quality_summary(members)
    distribution = builder.scaffolding_distribution(members)
    now = timezone.now()
    with builder.build_workdir() as workdir:
        built, conversations, pairs = builder.render_version(
            version=version,
            vertical=vertical,
            workdir=workdir,
            summary=summary,
            distribution=distribution,
            now=now,
            target_model=getattr(settings, "TRAINING_TARGET_MODEL", None) or None,
        )
        if conversations == 0:
            raise ApplicationError("No member conversation has a training pair.", code="no_training_pairs")
        files: dict[str, dict[str, Any]] = {}
        for fmt, result in built.items():
            if heartbeat.lost:
                raise _ClaimLost()
            key = builder.storage_key(version, fmt)
            stored.append(key)
            builder.store_file(key=key, path=result.path, fmt=fmt)
            files[fmt] = {"key": key, "filename": key.rsplit("/", 1)[-1], "size": result.size, "sha256": result.sha256}
    return files, conversations, pairs, summary, distribution, now


@transaction.atomic
def training_file_build_retry(
    *, version: TrainingFileVersion, actor: Any = None, enqueue: bool = True
) -> TrainingFileVersion:
    """Put a ``failed`` version back to ``building`` and (by default) enqueue its build after commit.

    ``actor`` None means an operator (the management command, which then builds in-process with
    ``enqueue=False``); a given actor must own the version or be staff. ``version_not_failed`` otherwise.
    """
    if actor is not None and getattr(actor, "pk", None) != version.owner_id and not getattr(actor, "is_staff", False):
        raise ApplicationError("No training file version matches the given query.", code="not_found", status_code=404)
    updated = TrainingFileVersion.objects.filter(pk=version.pk, status=Status.FAILED).update(
        status=Status.BUILDING, error="", claimed_at=None, files={}, build_attempts=0, updated_at=timezone.now()
    )
    if not updated:
        raise ApplicationError("Only a failed version can be rebuilt.", code="version_not_failed")
    version.refresh_from_db()
    if enqueue:
        training_file_build_enqueue(version=version)
    return version


def training_file_version_get(*, training_file: TrainingFile, number: Any) -> TrainingFileVersion:
    """Version ``number`` of ``training_file`` (the caller has checked ownership of the file); 404 otherwise."""
    try:
        number = int(number)
    except (TypeError, ValueError):
        number = -1
    version = training_file.versions.filter(number=number).first() if number > 0 else None
    if version is None:
        raise ApplicationError("That version does not exist.", code="version_not_found", status_code=404)
    return version


def training_file_download(
    *, training_file: TrainingFile, fmt: str, version_number: int | None = None
) -> dict[str, Any]:
    """A short-lived signed URL to one format of a ready version (the current one unless a number is given).

    Returns ``{url, expires_at, sha256, size, version, filename}``. Codes: ``unknown_format``,
    ``version_not_found`` (404), ``version_not_ready``. The caller has checked that the user owns the file.
    """
    if fmt not in builder.FORMATS:
        raise ApplicationError(
            f"Unknown format {fmt!r}; use one of {', '.join(builder.FORMATS)}.", code="unknown_format"
        )
    if version_number is None:
        version = training_file.current_version
        if version is None:
            raise ApplicationError("No version of this training file is ready yet.", code="version_not_ready")
    else:
        version = training_file_version_get(training_file=training_file, number=version_number)
    if version.status != Status.READY or fmt not in version.files:
        raise ApplicationError(f"Version {version.number} is {version.status}, not ready.", code="version_not_ready")
    entry = version.files[fmt]
    ttl = settings.SIGNED_URL_TTL_SECONDS
    url = download_url(owner_id=version.owner_id, key=entry["key"], ttl=ttl, filename=entry["filename"])
    return {
        "url": url,
        "expires_at": timezone.now() + timedelta(seconds=ttl),
        "sha256": entry["sha256"],
        "size": entry["size"],
        "version": version.number,
        "format": fmt,
        "filename": entry["filename"],
    }
