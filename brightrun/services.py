"""Services of the project package: API tokens, notifications, cost records, heartbeats.

Callers (views, API, tasks, admin) hand in objects they already scoped; services still
re-check ownership where a user acts on a row, because they are also called from the
shell and from tasks.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from brightrun.errors import ApplicationError
from brightrun.models import ApiToken, CostRecord, Notification, WorkerHeartbeat

TOKEN_PREFIX = "br_"  # noqa: S105 - a public marker, not a secret


def _token_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    key: str  # shown to the user once, never stored


@transaction.atomic
def api_token_create(*, owner: AbstractBaseUser, name: str) -> IssuedToken:
    """Create a named API token for ``owner``; the returned ``key`` is not recoverable later."""
    name = name.strip()
    if not name:
        raise ApplicationError("Give the token a name.", code="token_name_required")
    if len(name) > 100:
        raise ApplicationError("Token names are at most 100 characters.", code="token_name_too_long")
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(owner=owner, name=name, prefix=key[:11], digest=_token_digest(key))
    return IssuedToken(token=token, key=key)


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: AbstractBaseUser) -> ApiToken:
    """Revoke ``token``. Idempotent: revoking twice keeps the first revocation time."""
    if token.owner_id != actor.pk:
        raise ApplicationError("Token not found.", code="not_found", status_code=404)
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    return token


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """Return the active token for ``key`` (owner loaded), or None. Records the last use.

    The last-use time is written at most once a minute per token to keep reads cheap.
    """
    if not key.startswith(TOKEN_PREFIX):
        return None
    token = ApiToken.objects.active().select_related("owner").filter(digest=_token_digest(key)).first()
    if token is None or not token.owner.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def notification_create(
    *,
    owner: AbstractBaseUser,
    type: str,
    title: str,
    message: str = "",
    link: str = "",
    priority: str = Notification.Priority.MEDIUM,
) -> Notification:
    """Create a notification for ``owner``. Called by other apps' services when work ends."""
    if type not in Notification.Type.values:
        raise ApplicationError(f"Unknown notification type {type!r}.", code="invalid_notification_type")
    return Notification.objects.create(
        owner=owner, type=type, title=title[:200], message=message, link=link, priority=priority
    )


def notification_set_read(*, notification: Notification, actor: AbstractBaseUser, is_read: bool = True) -> Notification:
    """Mark one of ``actor``'s notifications read or unread (idempotent)."""
    if notification.owner_id != actor.pk:
        raise ApplicationError("Notification not found.", code="not_found", status_code=404)
    Notification.objects.filter(pk=notification.pk, is_read=not is_read).update(
        is_read=is_read, read_at=timezone.now() if is_read else None
    )
    notification.refresh_from_db()
    return notification


def notification_mark_all_read(*, actor: AbstractBaseUser) -> int:
    """Mark every unread notification of ``actor`` read; returns how many changed."""
    return Notification.objects.for_user(actor).unread().update(is_read=True, read_at=timezone.now())


def notification_cleanup(*, now: datetime | None = None) -> int:
    """Delete read notifications older than the retention period (beat, daily). Unscoped."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.NOTIFICATION_RETENTION_DAYS)
    deleted, _ = Notification.objects.filter(is_read=True, created_at__lt=cutoff).delete()
    return deleted


def cost_record_upsert(
    *,
    owner: AbstractBaseUser,
    kind: str,
    amount_usd: Decimal,
    source_type: str,
    source_id: uuid.UUID,
    description: str = "",
    incurred_at: datetime | None = None,
) -> CostRecord:
    """Record what a finished piece of work cost. One row per (source, kind): safe to call twice."""
    if amount_usd < 0:
        raise ApplicationError("A cost cannot be negative.", code="negative_cost")
    record, _ = CostRecord.objects.update_or_create(
        source_type=source_type,
        source_id=source_id,
        kind=kind,
        defaults={
            "owner": owner,
            "amount_usd": amount_usd,
            "description": description,
            "incurred_at": incurred_at or timezone.now(),
        },
    )
    return record


def worker_heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    """Record that the worker on ``hostname`` is alive (called by the heartbeat task)."""
    beat, _ = WorkerHeartbeat.objects.update_or_create(hostname=hostname, defaults={"last_seen": timezone.now()})
    return beat
