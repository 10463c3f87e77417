"""Helpers shared by the job services (``jobs``, ``finish``): conditional transitions, events, links.

Internal to ``training.services``; ``training_event_record`` is re-exported as a public service.
"""

from __future__ import annotations

import math
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from brightrun.errors import ApplicationError
from training.models import TrainingEvent, TrainingJob


def link_to(name: str, pk: Any) -> str:
    """The site path of a page, or "" while the page does not exist (notifications still go out)."""
    try:
        return reverse(name, args=[pk])
    except NoReverseMatch:
        return ""


def transition(job_id: Any, to: str, *, sources: tuple[str, ...] | None = None, **fields: Any) -> bool:
    """Move job ``job_id`` to ``to`` if its current status allows it (one conditional UPDATE); True if moved.

    ``sources`` narrows the allowed current statuses further. Internal to the training services.
    """
    allowed = {source for source, targets in TrainingJob.TRANSITIONS.items() if to in targets}
    if sources is not None:
        allowed &= set(sources)
    now = timezone.now()
    return bool(TrainingJob.objects.filter(pk=job_id, status__in=allowed).update(status=to, updated_at=now, **fields))


def clean_float(value: Any) -> float | None:
    """A finite float or None (NaN/inf cannot be stored in JSON and mean "no value" here)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def training_event_record(
    *, job: TrainingJob, kind: str, message: str = "", data: dict[str, Any] | None = None
) -> TrainingEvent:
    """Append an event (kind from ``TrainingEvent.Kind``) to the job's timeline. Code ``invalid_event``."""
    if kind not in TrainingEvent.Kind.values:
        raise ApplicationError(f"Unknown event kind {kind!r}.", code="invalid_event")
    return TrainingEvent.objects.create(
        owner_id=job.owner_id, job_id=job.pk, kind=kind, message=(message or "")[:500], data=data or {}
    )
