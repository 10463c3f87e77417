"""The costs page (SPEC §11): spend per day and kind over 7, 30 or 90 days, unit costs, and a CSV download.

Everything comes from ``costs_summary`` for the requesting user; an unknown ``?days=`` falls back to 30 rather
than failing, so a hand-edited URL still shows the page.
"""

from __future__ import annotations

import csv
from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from brightrun.models import CostRecord
from training.charts import stacked_bars
from training.services.costs import ALLOWED_DAYS, KINDS, costs_summary

DEFAULT_DAYS = 30


def _days(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days", DEFAULT_DAYS))
    except (TypeError, ValueError):
        return DEFAULT_DAYS
    return days if days in ALLOWED_DAYS else DEFAULT_DAYS


@require_GET
def costs(request: HttpRequest) -> HttpResponse:
    """A stacked bar chart per day and kind, the per-day table (days with spend), totals and unit costs."""
    days = _days(request)
    summary = costs_summary(owner=request.user, days=days)
    labels = dict(CostRecord.Kind.choices)
    amounts = {(entry["date"].isoformat(), kind): float(entry[kind]) for entry in summary["per_day"] for kind in KINDS}
    context = {
        "days": days,
        "day_options": ALLOWED_DAYS,
        "summary": summary,
        "kinds": [(kind, labels.get(kind, kind)) for kind in KINDS],
        "chart": stacked_bars([e["date"].isoformat() for e in summary["per_day"]], KINDS, amounts),
        "rows": [e for e in reversed(summary["per_day"]) if Decimal(e["total"])],
    }
    return render(request, "training/costs.html", context)


@require_GET
def costs_csv(request: HttpRequest) -> HttpResponse:
    """``day,kind,amount_usd`` for every day and kind of the window (zeros included), oldest first, UTF-8."""
    days = _days(request)
    summary = costs_summary(owner=request.user, days=days)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="brightrun-costs-{days}d.csv"'
    writer = csv.writer(response)
    writer.writerow(["day", "kind", "amount_usd"])
    for entry in summary["per_day"]:
        for kind in KINDS:
            writer.writerow([entry["date"].isoformat(), kind, entry[kind]])
    return response
