"""The costs summary (SPEC §11): spend per day and kind, totals and unit costs over the last 7, 30 or 90 days.

Called by the API (``/api/v1/costs/summary/``) and the costs page, always for one owner. Amounts come from
``brightrun.models.CostRecord`` (one row per generation batch, judging run and training job) and are returned
as strings with 4 decimals, so small unit costs are not rounded away.

Unit costs, each ``None`` when its denominator is 0:

* per approved conversation = generation + judging spend in the window / the owner's conversations created in
  the window that are now approved;
* per trainable pair = the same spend / the exchanges (one trainable pair per assistant turn) of those
  conversations;
* per artifact = training spend in the window / adapters produced in the window.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from brightrun.errors import ApplicationError
from brightrun.models import CostRecord
from conversations.models import Conversation
from training.models import ModelArtifact

ALLOWED_DAYS = (7, 30, 90)
KINDS = tuple(CostRecord.Kind.values)
_PLACES = Decimal("0.0001")


def _money(value: Decimal | None) -> str:
    return str((value or Decimal("0")).quantize(_PLACES))


def _per(amount: Decimal, count: int) -> str | None:
    return _money(amount / count) if count else None


def costs_summary(*, owner: Any, days: int, today: Any = None) -> dict[str, Any]:
    """Spend of ``owner`` over the last ``days`` days (today included, in the site's time zone)::

        {"days", "start", "end", "per_day": [{"date", "generation", "judging", "training", "total"}, ...],
         "totals": {"generation", "judging", "training", "total"},
         "counts": {"approved_conversations", "trainable_pairs", "artifacts"},
         "unit_costs": {"per_approved_conversation", "per_trainable_pair", "per_artifact"}}

    ``per_day`` has one entry per day, oldest first, zeros included (a chart needs no gaps). Code
    ``invalid_days`` unless ``days`` is 7, 30 or 90. Read-only; three queries.
    """
    if isinstance(days, bool) or days not in ALLOWED_DAYS:
        raise ApplicationError(
            f"Choose 7, 30 or 90 days, not {days!r}.", code="invalid_days", errors={"days": "Must be 7, 30 or 90."}
        )
    end = today or timezone.localdate()
    first = end - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first, time.min))
    rows = (
        CostRecord.objects.for_user(owner)
        .filter(incurred_at__gte=since)
        .annotate(day=TruncDate("incurred_at"))
        .values("day", "kind")
        .annotate(amount=Sum("amount_usd"))
    )
    spend: dict[Any, dict[str, Decimal]] = {}
    totals = dict.fromkeys(KINDS, Decimal("0"))
    for row in rows:
        spend.setdefault(row["day"], {})[row["kind"]] = row["amount"]
        totals[row["kind"]] = totals.get(row["kind"], Decimal("0")) + row["amount"]
    per_day = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        amounts = spend.get(day, {})
        entry: dict[str, Any] = {"date": day}
        entry.update({kind: _money(amounts.get(kind)) for kind in KINDS})
        entry["total"] = _money(sum(amounts.values(), Decimal("0")))
        per_day.append(entry)
    conversations = (
        Conversation.objects.for_user(owner)
        .filter(created_at__gte=since, status=Conversation.Status.APPROVED)
        .aggregate(count=Count("id"), pairs=Sum("exchange_count"))
    )
    approved, pairs = conversations["count"] or 0, conversations["pairs"] or 0
    artifacts = ModelArtifact.objects.for_user(owner).filter(created_at__gte=since).count()
    content = totals[CostRecord.Kind.GENERATION] + totals[CostRecord.Kind.JUDGING]
    return {
        "days": days,
        "start": first,
        "end": end,
        "per_day": per_day,
        "totals": {
            **{kind: _money(totals[kind]) for kind in KINDS},
            "total": _money(sum(totals.values(), Decimal("0"))),
        },
        "counts": {"approved_conversations": approved, "trainable_pairs": pairs, "artifacts": artifacts},
        "unit_costs": {
            "per_approved_conversation": _per(content, approved),
            "per_trainable_pair": _per(content, pairs),
            "per_artifact": _per(totals[CostRecord.Kind.TRAINING], artifacts),
        },
    }
