"""Conversation exports (SPEC §8): create, render (worker), download, expire.

Callers: the API, the export pages, the admin and ``training_files.tasks``. ``export_create`` validates and
enqueues the render after commit; ``export_render`` is the worker body and streams the output to a temporary
file and then to storage, so memory does not grow with the number of conversations. The three training
formats reuse the training-file writers (``build.render_version``) over the export's conversations.
"""

from __future__ import annotations

import csv
import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Prefetch, QuerySet
from django.utils import timezone

from brightrun.errors import ApplicationError
from brightrun.storage import download_url, file_storage, owned_key
from conversations.models import Conversation, ReviewAction, Turn
from conversations.services.scaffolding import vertical_active
from training_files.models import Export
from training_files.services import build as builder

logger = logging.getLogger(__name__)

Status = Export.Status
Scope = Export.Scope
Format = Export.Format

FILTER_FIELDS: dict[str, str] = {
    "status": "status",
    "persona": "persona__key",
    "emotional_arc": "emotional_arc__key",
    "training_topic": "training_topic__key",
    "quality_tier": "quality_tier",
}
OPTION_NAMES = ("include_metadata", "include_quality", "include_timestamps", "include_review_history")
SUFFIXES = {**builder.FORMATS, Format.CSV: ".csv", Format.MARKDOWN: ".md"}
CONTENT_TYPES = {**builder.CONTENT_TYPES, Format.CSV: "text/csv; charset=utf-8", Format.MARKDOWN: "text/markdown"}
CSV_COLUMNS = [
    "conversation_id",
    "title",
    "status",
    "persona",
    "arc",
    "topic",
    "turn_index",
    "role",
    "content",
    "primary_emotion",
    "intensity",
]
MAX_IDS = 10_000


# --- create -------------------------------------------------------------------------------


def _clean_options(options: Any) -> dict[str, bool]:
    options = options or {}
    if not isinstance(options, dict) or set(options) - set(OPTION_NAMES):
        raise ApplicationError(f"options takes only {', '.join(OPTION_NAMES)}.", code="invalid_options")
    if any(not isinstance(value, bool) for value in options.values()):
        raise ApplicationError("Every option is true or false.", code="invalid_options")
    return {name: bool(options.get(name, False)) for name in OPTION_NAMES}


def _clean_filters(filters: Any) -> dict[str, str]:
    filters = filters or {}
    if not isinstance(filters, dict) or set(filters) - set(FILTER_FIELDS):
        raise ApplicationError(f"filters takes only {', '.join(FILTER_FIELDS)}.", code="invalid_filters")
    if any(not isinstance(value, str) or not value for value in filters.values()):
        raise ApplicationError("Every filter is a non-empty string.", code="invalid_filters")
    return dict(filters)


def export_queryset(*, owner: Any, scope: str, conversation_ids: list[str], filters: dict[str, str]) -> QuerySet:
    """The owner's conversations an export covers, oldest first. Never reaches another user's rows."""
    rows = Conversation.objects.for_user(owner)
    if scope == Scope.SELECTED:
        rows = rows.filter(pk__in=list(conversation_ids))
    elif scope == Scope.FILTER:
        rows = rows.filter(**{FILTER_FIELDS[name]: value for name, value in filters.items()})
    else:
        rows = rows.filter(status=Conversation.Status.APPROVED)
    return rows.order_by("created_at", "id")


def _resolve_selection(owner: Any, conversation_ids: Any) -> list[str]:
    raw = list(conversation_ids or [])
    if not raw:
        raise ApplicationError("Select at least one conversation.", code="empty_selection")
    if len(raw) > MAX_IDS:
        raise ApplicationError(f"At most {MAX_IDS} conversations per export.", code="too_many_conversations")
    wanted: dict[str, str] = {}
    missing: list[str] = []
    for item in raw:
        key = str(getattr(item, "pk", item)).strip()
        try:
            wanted[str(uuid.UUID(key))] = key
        except ValueError:
            missing.append(key)
    found = {
        str(pk) for pk in Conversation.objects.for_user(owner).filter(pk__in=list(wanted)).values_list("pk", flat=True)
    }
    missing += [given for canonical, given in wanted.items() if canonical not in found]
    if missing:
        raise ApplicationError(
            "Some conversations do not exist.", code="not_found", errors={"conversations": sorted(missing)}
        )
    return sorted(found)


def export_enqueue(*, export: Export) -> None:
    """Enqueue ``export_render_task`` for ``export`` once the current transaction commits."""
    from training_files.tasks import export_render_task

    export_id = str(export.pk)
    transaction.on_commit(lambda: export_render_task.delay(export_id))


@transaction.atomic
def export_create(
    *,
    owner: Any,
    scope: str,
    fmt: str,
    conversation_ids: list[Any] | None = None,
    filters: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> Export:
    """Create a queued export of ``owner``'s conversations and enqueue its render after commit.

    Codes: ``unknown_format``, ``unknown_scope``, ``invalid_options``, ``invalid_filters``, ``empty_selection``
    (nothing selected, or the scope matches no conversation), ``not_found`` (ids that are not ``owner``'s,
    listed under ``errors.conversations``). Nothing is created when it raises.
    """
    if fmt not in Format.values:
        raise ApplicationError(f"Unknown format {fmt!r}; use one of {', '.join(Format.values)}.", code="unknown_format")
    if scope not in Scope.values:
        raise ApplicationError(f"Unknown scope {scope!r}; use one of {', '.join(Scope.values)}.", code="unknown_scope")
    clean_options = _clean_options(options)
    clean_filters = _clean_filters(filters) if scope == Scope.FILTER else {}
    ids = _resolve_selection(owner, conversation_ids) if scope == Scope.SELECTED else []
    if (
        scope != Scope.SELECTED
        and not export_queryset(owner=owner, scope=scope, conversation_ids=ids, filters=clean_filters).exists()
    ):
        raise ApplicationError("No conversation matches this export.", code="empty_selection")
    export = Export.objects.create(
        owner=owner,
        scope=scope,
        format=fmt,
        conversation_ids=ids,
        filters=clean_filters,
        options=clean_options,
        conversation_count=len(ids),
    )
    export_enqueue(export=export)
    return export


# --- render -------------------------------------------------------------------------------


@dataclass
class _Source:
    """Duck-types the parts of a training-file version that ``build.render_version`` reads."""

    owner_id: Any
    member_ids: list[str]
    created_at: datetime
    training_file: Any
    number: int = 1


@dataclass
class _Named:
    name: str


@dataclass
class Rendered:
    path: str
    size: int
    sha256: str
    conversations: int
    rows: int
    extra: dict[str, Any] = field(default_factory=dict)


def _filename(export: Export) -> str:
    return f"export-{str(export.pk)[:8]}-{export.created_at:%Y%m%d}{SUFFIXES[export.format]}"


def _iter_conversations(rows: QuerySet, *, review_history: bool) -> Any:
    rows = rows.select_related("persona", "emotional_arc", "training_topic").prefetch_related(
        Prefetch("turns", queryset=Turn.objects.order_by("index"))
    )
    if review_history:
        rows = rows.prefetch_related(Prefetch("review_actions", queryset=ReviewAction.objects.order_by("created_at")))
    yield from rows.iterator(chunk_size=builder.CHUNK_SIZE)


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _history(conversation: Conversation) -> list[str]:
    return [
        f"{_iso(a.created_at)} {a.action}: {a.from_status} → {a.to_status}" + (f" ({a.comment})" if a.comment else "")
        for a in conversation.review_actions.all()
    ]


def _render_training_format(export: Export, rows: QuerySet, workdir: str) -> Rendered:
    vertical = vertical_active()
    source = _Source(
        owner_id=export.owner_id,
        member_ids=[str(pk) for pk in rows.values_list("pk", flat=True)],
        created_at=export.created_at,
        training_file=_Named(f"export-{str(export.pk)[:8]}"),
    )
    members = builder.member_queryset(source)
    built, conversations, pairs = builder.render_version(
        version=source,
        vertical=vertical,
        workdir=workdir,
        summary=builder.quality_summary(members),
        distribution=builder.scaffolding_distribution(members),
        now=timezone.now(),
        target_model=getattr(settings, "TRAINING_TARGET_MODEL", None) or None,
    )
    result = built[export.format]
    return Rendered(result.path, result.size, result.sha256, conversations, pairs)


def _render_csv(export: Export, rows: QuerySet, workdir: str) -> Rendered:
    options = export.options or {}
    columns = list(CSV_COLUMNS)
    if options.get("include_quality"):
        columns += ["quality_score", "quality_tier", "structure_score", "judge_mean", "reviewer_score"]
    if options.get("include_timestamps"):
        columns += ["created_at", "reviewed_at", "enriched_at"]
    if options.get("include_metadata"):
        columns += ["conversation_metadata"]
    if options.get("include_review_history"):
        columns += ["review_history"]
    path = os.path.join(workdir, "export.csv")
    conversations = turns_written = 0
    with open(path, "wb") as handle:
        out = builder.HashingWriter(handle)

        class _Text:
            def write(self, text: str) -> None:
                out.write_text(text)

        out.write_text("\ufeff")
        writer = csv.writer(_Text(), lineterminator="\r\n")
        writer.writerow(columns)
        for conversation in _iter_conversations(rows, review_history=bool(options.get("include_review_history"))):
            conversations += 1
            common = {
                "conversation_id": str(conversation.pk),
                "title": conversation.title,
                "status": conversation.status,
                "persona": conversation.persona.key,
                "arc": conversation.emotional_arc.key,
                "topic": conversation.training_topic.key,
                "quality_score": conversation.quality_score,
                "quality_tier": conversation.quality_tier,
                "structure_score": conversation.structure_score,
                "judge_mean": conversation.judge_mean,
                "reviewer_score": conversation.reviewer_score,
                "created_at": _iso(conversation.created_at),
                "reviewed_at": _iso(conversation.reviewed_at),
                "enriched_at": _iso(conversation.enriched_at),
                "conversation_metadata": builder._dumps(conversation.conversation_metadata or {}),
            }
            if options.get("include_review_history"):
                common["review_history"] = "; ".join(_history(conversation))
            for turn in conversation.turns.all():
                row = {
                    **common,
                    "turn_index": turn.index,
                    "role": turn.role,
                    "content": turn.content,
                    "primary_emotion": turn.primary_emotion,
                    "intensity": "" if turn.intensity is None else turn.intensity,
                }
                writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
                turns_written += 1
    return Rendered(path, out.size, out.sha256.hexdigest(), conversations, turns_written)


def _render_markdown(export: Export, rows: QuerySet, workdir: str) -> Rendered:
    options = export.options or {}
    path = os.path.join(workdir, "export.md")
    conversations = turns_written = 0
    with open(path, "wb") as handle:
        out = builder.HashingWriter(handle)
        out.write_text(f"# Conversation export {export.pk}\n")
        for conversation in _iter_conversations(rows, review_history=bool(options.get("include_review_history"))):
            conversations += 1
            lines = [
                "",
                f"## {conversation.title or conversation.pk}",
                "",
                f"- Conversation: `{conversation.pk}`",
                f"- Status: {conversation.status}",
                f"- Persona: {conversation.persona.key} · Arc: {conversation.emotional_arc.key} · "
                f"Topic: {conversation.training_topic.key}",
            ]
            if options.get("include_quality"):
                lines.append(f"- Quality: {conversation.quality_score} ({conversation.quality_tier})")
            if options.get("include_timestamps"):
                lines.append(f"- Created: {_iso(conversation.created_at)} · Reviewed: {_iso(conversation.reviewed_at)}")
            if options.get("include_metadata"):
                lines.append(f"- Metadata: `{builder._dumps(conversation.conversation_metadata or {})}`")
            if options.get("include_review_history"):
                lines += ["", "### Review history", ""] + [f"- {item}" for item in _history(conversation)]
            lines += ["", "### Turns", ""]
            for turn in conversation.turns.all():
                emotion = f" _({turn.primary_emotion}, {turn.intensity})_" if turn.primary_emotion else ""
                lines += [f"**{turn.index}. {turn.role}**{emotion}", "", turn.content, ""]
                turns_written += 1
            out.write_text("\n".join(lines) + "\n")
    return Rendered(path, out.size, out.sha256.hexdigest(), conversations, turns_written)


RENDERERS = {
    Format.CHAT_JSONL: _render_training_format,
    Format.V4_JSONL: _render_training_format,
    Format.V4_JSON: _render_training_format,
    Format.CSV: _render_csv,
    Format.MARKDOWN: _render_markdown,
}


def _fail(export: Export, error: str) -> None:
    Export.objects.filter(pk=export.pk, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.FAILED, error=error[:4000], storage_key="", size=0, sha256=""
    )


def export_render(*, export: Export) -> Export:
    """Render ``export`` and store it; the worker body (not in a transaction). Safe to run twice.

    Claims the export (queued → running, conditional); an export that is not queued is returned as it is.
    Success: running → completed with counts, size, SHA-256 and the storage key. Any failure: → failed with
    the error, and whatever was stored is deleted.
    """
    claimed = Export.objects.filter(pk=export.pk, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        export.refresh_from_db()
        return export
    export.refresh_from_db()
    key = ""
    try:
        rows = export_queryset(
            owner=export.owner, scope=export.scope, conversation_ids=export.conversation_ids, filters=export.filters
        )
        filename = _filename(export)
        with builder.build_workdir() as workdir:
            rendered = RENDERERS[export.format](export, rows, workdir)
            if rendered.conversations == 0:
                raise ApplicationError("No conversation of this export could be rendered.", code="empty_export")
            key = owned_key(export.owner_id, "exports", str(export.pk), filename)
            storage = file_storage()
            if storage.exists(key):
                storage.delete(key)
            with open(rendered.path, "rb") as handle:
                from django.core.files import File

                django_file = File(handle, name=filename)
                django_file.content_type = CONTENT_TYPES[export.format]
                saved = storage.save(key, django_file)
            if saved != key:
                storage.delete(saved)
                raise RuntimeError(f"Storage wrote {saved!r} instead of {key!r}.")
        updated = Export.objects.filter(pk=export.pk, status=Status.RUNNING).update(
            status=Status.COMPLETED,
            conversation_count=rendered.conversations,
            row_count=rendered.rows,
            size=rendered.size,
            sha256=rendered.sha256,
            storage_key=key,
            filename=filename,
            error="",
            completed_at=timezone.now(),
        )
        if not updated:
            builder.delete_stored([key])
    except Exception as exc:
        logger.exception("export %s failed", export.pk)
        if key:
            builder.delete_stored([key])
        message = exc.message if isinstance(exc, ApplicationError) else f"{type(exc).__name__}: {exc}"
        _fail(export, message)
    export.refresh_from_db()
    return export


def export_fail(*, export_id: Any, error: str) -> None:
    """Mark an unfinished export failed (the task's ``on_failure``, e.g. a time limit); deletes its object."""
    export = Export.objects.filter(pk=export_id).first()
    if export is None:
        return
    key = owned_key(export.owner_id, "exports", str(export.pk), _filename(export))
    if export.status in (Status.QUEUED, Status.RUNNING):
        builder.delete_stored([key])
        _fail(export, error)


# --- download and expiry ------------------------------------------------------------------


def export_download(*, export: Export) -> dict[str, Any]:
    """A short-lived signed URL to a completed export; counts the download.

    Codes: ``export_expired`` (expired, or past ``expires_at``), ``export_not_ready`` (queued, running or
    failed). The caller has checked that the user owns the export. The URL never outlives the export.
    """
    now = timezone.now()
    if export.status == Status.EXPIRED or (export.status == Status.COMPLETED and export.expires_at <= now):
        raise ApplicationError("This export has expired.", code="export_expired")
    if export.status != Status.COMPLETED or not export.storage_key:
        raise ApplicationError(f"This export is {export.status}, not ready.", code="export_not_ready")
    ttl = max(1, min(int(settings.SIGNED_URL_TTL_SECONDS), int((export.expires_at - now).total_seconds())))
    url = download_url(owner_id=export.owner_id, key=export.storage_key, ttl=ttl, filename=export.filename)
    Export.objects.filter(pk=export.pk).update(download_count=F("download_count") + 1)
    export.refresh_from_db(fields=["download_count"])
    return {"url": url, "expires_at": now + timedelta(seconds=ttl)}


def exports_expire(*, now: datetime | None = None) -> int:
    """Expire completed exports past ``expires_at``: delete each object, then mark it expired (conditional).

    The daily cleanup task. An object whose delete fails stays completed and is retried the next day.
    Returns the number of exports expired. Safe to run twice.
    """
    now = now or timezone.now()
    storage = file_storage()
    expired = 0
    due = Export.objects.filter(status=Status.COMPLETED, expires_at__lte=now).only("pk", "storage_key")
    for export in due.iterator(chunk_size=500):
        if export.storage_key:
            try:
                storage.delete(export.storage_key)
            except Exception:
                logger.exception("could not delete export object %s", export.storage_key)
                continue
        expired += Export.objects.filter(pk=export.pk, status=Status.COMPLETED).update(
            status=Status.EXPIRED, storage_key="", updated_at=now
        )
    return expired
