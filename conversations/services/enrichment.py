"""The enrichment chain of a conversation (SPEC §5.2), run by ``conversation_enrich_task`` after generation.

validate (→ ``validated`` | ``validation_failed``) → structure score, optional judge, near-duplicates, flags
(→ ``enriched``) → render the individual v4 JSON, check it against the project's schema, store it
(→ ``completed``). ``validation_failed`` is a final state that stops the chain. No status sticks: an exception
in the validation step sets ``validation_failed``, in any later step ``normalization_failed``, each with
``enrichment_error``; re-running the chain starts again from validation and replaces the stored JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from brightrun.errors import ApplicationError
from brightrun.storage import download_url, file_storage, owned_key
from conversations.models import Conversation
from conversations.services import duplicates, quality, v4
from conversations.services.validation import conversation_validate

logger = logging.getLogger(__name__)

Status = Conversation.EnrichmentStatus
ENRICHED_FILENAME = "enriched-v4.json"


def enriched_key_for(conversation: Conversation) -> str:
    """Where the conversation's individual v4 JSON lives in object storage."""
    return owned_key(conversation.owner_id, "conversations", str(conversation.pk), ENRICHED_FILENAME)


def _set_status(conversation: Conversation, status: str, *, error: str = "", **fields) -> None:
    conversation.enrichment_status = status
    conversation.enrichment_error = error[:4000]
    for name, value in fields.items():
        setattr(conversation, name, value)
    conversation.save(update_fields=["enrichment_status", "enrichment_error", *fields, "updated_at"])


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ApplicationError):
        detail = f" {exc.errors}" if exc.errors else ""
        return f"{exc.message}{detail}"
    return f"{type(exc).__name__}: {exc}"


def _forget_stored(conversation: Conversation) -> dict:
    """Delete a previously stored JSON (it no longer describes the conversation); best effort."""
    if conversation.enriched_key:
        try:
            file_storage().delete(conversation.enriched_key)
        except Exception:  # a leftover object is harmless; the key is cleared below
            logger.warning("could not delete %s", conversation.enriched_key, exc_info=True)
    return {"enriched_key": "", "enriched_at": None}


def _fail(conversation: Conversation, status: str, exc: BaseException, step: str) -> Conversation:
    logger.exception("enrichment of conversation %s failed in %s", conversation.pk, step)
    _set_status(conversation, status, error=f"{step}: {_error_text(exc)}", **_forget_stored(conversation))
    return conversation


def enriched_v4_store(*, conversation: Conversation, doc: dict) -> str:
    """Write ``doc`` at the conversation's key, replacing an earlier version; returns the key."""
    key = enriched_key_for(conversation)
    storage = file_storage()
    if storage.exists(key):
        storage.delete(key)
    body = json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8")
    saved = storage.save(key, ContentFile(body))
    if saved != key:
        storage.delete(saved)
        raise ApplicationError(f"Storage wrote {saved!r} instead of {key!r}.", code="storage_key_changed")
    return key


def conversation_enrich(*, conversation: Conversation, judge: bool | None = None) -> Conversation:
    """Run the whole enrichment chain on ``conversation`` and return it with its final status.

    ``judge``: None follows ``settings.JUDGE_ENABLED``; True judges even when it is off; False never judges.
    Called by ``conversation_enrich_task`` (and the shell/admin); not inside a transaction, because the judge
    waits on the network. Idempotent and re-runnable: every run validates again, recomputes every score from
    the current turns and replaces the stored JSON. The final status is ``completed``,
    ``validation_failed`` or ``normalization_failed``.
    """
    try:
        report = conversation_validate(conversation=conversation)
    except Exception as exc:  # noqa: BLE001 - any failure must end in an explicit status
        return _fail(conversation, Status.VALIDATION_FAILED, exc, "validation")
    if not report["valid"]:
        summary = "; ".join(f"{b['code']} at {b['path']}" for b in report["blockers"])
        _set_status(
            conversation,
            Status.VALIDATION_FAILED,
            error=f"validation: {len(report['blockers'])} blocker(s): {summary}",
            validation_report=report,
            **_forget_stored(conversation),
        )
        return conversation
    _set_status(conversation, Status.VALIDATED, validation_report=report)

    step = "scoring"
    try:
        use_judge = settings.JUDGE_ENABLED if judge is None else judge
        if use_judge:
            step = "judging"
            quality.judge_conversation(conversation=conversation, force=True)
        step = "near-duplicates"
        duplicates.near_duplicates_assign(conversation=conversation)
        step = "scoring"
        quality.conversation_rescore(conversation=conversation)
        _set_status(conversation, Status.ENRICHED)

        step = "v4 rendering"
        doc = v4.individual_v4(conversation=conversation)
        errors = v4.individual_v4_validate(doc)
        if errors:
            raise ApplicationError(
                f"The rendered v4 JSON breaks the project's schema ({len(errors)} problem(s)).",
                code="v4_invalid",
                errors=errors[:20],
            )
        step = "storage"
        key = enriched_v4_store(conversation=conversation, doc=doc)
    except Exception as exc:  # noqa: BLE001 - any failure must end in an explicit status
        return _fail(conversation, Status.NORMALIZATION_FAILED, exc, step)
    _set_status(conversation, Status.COMPLETED, enriched_key=key, enriched_at=timezone.now())
    return conversation


def conversation_enrich_enqueue(*, conversation: Conversation) -> None:
    """Enqueue the enrichment task for ``conversation`` once the current transaction commits."""
    from conversations.tasks import conversation_enrich_task

    conversation_id = str(conversation.pk)
    transaction.on_commit(lambda: conversation_enrich_task.delay(conversation_id))


def conversations_enrich_bulk(*, conversations: Iterable[Conversation]) -> int:
    """Enqueue enrichment for each conversation (the caller has scoped them); returns how many."""
    count = 0
    for conversation in conversations:
        conversation_enrich_enqueue(conversation=conversation)
        count += 1
    return count


def enriched_download_url(*, conversation: Conversation) -> str:
    """A short-lived signed URL of the stored v4 JSON; ``not_enriched`` when there is none.

    The caller has already checked that the user may see ``conversation``.
    """
    key = conversation.enriched_key
    if not key or not file_storage().exists(key):
        raise ApplicationError("This conversation has no enriched JSON yet. Run enrichment first.", code="not_enriched")
    return download_url(owner_id=conversation.owner_id, key=key, filename=f"conversation-{conversation.pk}-v4.json")
