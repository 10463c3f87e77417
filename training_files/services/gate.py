"""The membership gate (SPEC §7.1): which conversations may join a training file, and why others may not."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, NamedTuple

from conversations.models import Conversation
from conversations.services.quality import FLAG_TRUNCATION

# Stable reason codes (clients switch on them).
NOT_FOUND = "not_found"
NOT_APPROVED = "not_approved"
NOT_ENRICHED = "not_enriched"
TRUNCATION_SUSPECTED = "truncation_suspected"
DUPLICATE_GROUP = "duplicate_group"
ALREADY_MEMBER = "already_member"
NOT_MEMBER = "not_member"


class GateResult(NamedTuple):
    """``accepted``: conversations that may join, in request order; ``rejected``: ``{conversation_id, reasons}``."""

    accepted: list[Conversation]
    rejected: list[dict[str, Any]]


def _as_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, Conversation):
        return value.pk
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def training_file_gate(
    *,
    conversations: Iterable[Any],
    owner: Any,
    existing_ids: Iterable[Any] = (),
    allow_duplicates: bool = False,
) -> GateResult:
    """Split ``conversations`` (ids or rows) into those that may join a file of ``owner`` and those that may not.

    A conversation is accepted when it is owned by ``owner`` (anything else is ``not_found``, exactly like an
    unknown id), ``approved`` (by anyone allowed to review — the status is what counts), enrichment
    ``completed``, not flagged ``truncation_suspected``, not already among ``existing_ids`` and, unless
    ``allow_duplicates``, not in a near-duplicate group that an existing or earlier accepted member already
    represents. Several reasons can apply at once. Read-only (one query for the candidates, one for the
    existing members' groups); callers that write hold the file's lock.
    """
    requested: list[tuple[Any, uuid.UUID | None]] = [(raw, _as_uuid(raw)) for raw in conversations]
    wanted = {pk for _, pk in requested if pk is not None}
    rows = {
        c.pk: c
        for c in Conversation.objects.filter(owner_id=getattr(owner, "pk", owner), pk__in=wanted).only(
            "id", "owner_id", "status", "enrichment_status", "flag_reasons", "duplicate_group_id", "created_at"
        )
    }
    existing = {pk for pk in (_as_uuid(x) for x in existing_ids) if pk is not None}
    taken_groups: set[Any] = set()
    if existing and not allow_duplicates:
        taken_groups = set(
            Conversation.objects.filter(pk__in=existing, duplicate_group__isnull=False).values_list(
                "duplicate_group_id", flat=True
            )
        )

    accepted: list[Conversation] = []
    rejected: list[dict[str, Any]] = []
    seen: set[uuid.UUID] = set()
    for raw, pk in requested:
        if pk is not None and pk in seen:
            continue  # the same id twice in one request counts once
        if pk is not None:
            seen.add(pk)
        conversation = rows.get(pk) if pk is not None else None
        label = str(pk) if pk is not None else str(raw)
        if conversation is None:
            rejected.append({"conversation_id": label, "reasons": [NOT_FOUND]})
            continue
        reasons: list[str] = []
        if pk in existing:
            reasons.append(ALREADY_MEMBER)
        if conversation.status != Conversation.Status.APPROVED:
            reasons.append(NOT_APPROVED)
        if conversation.enrichment_status != Conversation.EnrichmentStatus.COMPLETED:
            reasons.append(NOT_ENRICHED)
        if FLAG_TRUNCATION in (conversation.flag_reasons or []):
            reasons.append(TRUNCATION_SUSPECTED)
        group = conversation.duplicate_group_id
        if not reasons and group is not None and not allow_duplicates and group in taken_groups:
            reasons.append(DUPLICATE_GROUP)
        if reasons:
            rejected.append({"conversation_id": label, "reasons": reasons})
            continue
        if group is not None:
            taken_groups.add(group)
        accepted.append(conversation)
    return GateResult(accepted, rejected)
