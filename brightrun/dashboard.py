"""The dashboard's read model: the pipeline at a glance, this week's spend and the work in progress.

Project-level like ``urls.py`` and ``workspace.py``: it reads every app's rows for one user and writes nothing.
Each stage is one aggregate query and each running-work list is capped, so the page costs the same number of
queries whatever the user owns (``tests/brightrun/test_dashboard.py`` holds the ceiling).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from brightrun.models import CostRecord
from conversations.models import Conversation, GenerationBatch
from datasets.models import Dataset
from training.models import ModelArtifact, TrainingJob
from training_files.models import Export, TrainingFile, TrainingFileVersion

#: Rows per running-work list; one more is read to know whether to say "and more".
RUNNING_LIMIT = 5
SPEND_DAYS = 7


def _by_status(rows: QuerySet, choices: list[tuple[str, str]]) -> dict[str, Any]:
    """``{total, rows: [{value, label, count}]}`` in ``choices`` order, from one GROUP BY query."""
    counts = dict(rows.order_by().values_list("status").annotate(n=Count("pk")))
    return {
        "total": sum(counts.values()),
        "rows": [{"value": value, "label": label, "count": counts.get(value, 0)} for value, label in choices],
    }


def dashboard_pipeline(user) -> dict[str, Any]:
    """Counts per stage: conversations by review status, training files, datasets and jobs by status, models."""
    files = TrainingFile.objects.for_user(user).aggregate(
        total=Count("pk"),
        ready=Count("pk", filter=Q(current_version__isnull=False)),
        pairs=Sum("current_version__training_pair_count"),
    )
    models = ModelArtifact.objects.for_user(user).aggregate(total=Count("pk"), size=Sum("total_size"))
    return {
        "conversations": _by_status(Conversation.objects.for_user(user), Conversation.Status.choices),
        "training_files": {**files, "pairs": files["pairs"] or 0},
        "datasets": _by_status(
            Dataset.objects.for_user(user).exclude(status=Dataset.Status.DELETED),
            [c for c in Dataset.Status.choices if c[0] != Dataset.Status.DELETED],
        ),
        "jobs": _by_status(TrainingJob.objects.for_user(user), TrainingJob.Status.choices),
        "models": {"total": models["total"], "size": models["size"] or 0},
    }


def dashboard_spend(user, *, days: int = SPEND_DAYS) -> dict[str, Any]:
    """Spend of the last ``days`` days by kind (every kind listed, zero included) and its total."""
    since = timezone.now() - timedelta(days=days)
    sums = dict(
        CostRecord.objects.for_user(user)
        .filter(incurred_at__gte=since)
        .order_by()
        .values_list("kind")
        .annotate(total=Sum("amount_usd"))
    )
    rows = [
        {"kind": kind, "label": label, "amount": sums.get(kind) or Decimal(0)}
        for kind, label in CostRecord.Kind.choices
    ]
    return {"days": days, "rows": rows, "total": sum((r["amount"] for r in rows), Decimal(0))}


def _capped(rows: QuerySet) -> dict[str, Any]:
    items = list(rows[: RUNNING_LIMIT + 1])
    return {"items": items[:RUNNING_LIMIT], "more": len(items) > RUNNING_LIMIT}


def dashboard_running(user) -> dict[str, Any]:
    """Work in progress, newest first: batches, dataset checks, training jobs, training-file builds, exports."""
    work = {
        "batches": _capped(GenerationBatch.objects.for_user(user).active().order_by("-created_at")),
        "datasets": _capped(
            Dataset.objects.for_user(user)
            .filter(status=Dataset.Status.VALIDATING)
            .order_by("-created_at")
            .only("pk", "name", "status", "validation_started_at", "created_at")
        ),
        "jobs": _capped(
            TrainingJob.objects.for_user(user)
            .active()
            .order_by("-created_at")
            .only("pk", "name", "status", "stage", "progress", "current_step", "total_steps", "created_at")
        ),
        "builds": _capped(
            TrainingFileVersion.objects.for_user(user)
            .filter(status=TrainingFileVersion.Status.BUILDING)
            .select_related("training_file")
            .order_by("-created_at")
            .only(
                "pk", "number", "status", "conversation_count", "created_at", "training_file__id", "training_file__name"
            )
        ),
        "exports": _capped(
            Export.objects.for_user(user)
            .filter(status__in=[Export.Status.QUEUED, Export.Status.RUNNING])
            .order_by("-created_at")
            .only("pk", "format", "status", "conversation_count", "created_at")
        ),
    }
    return {"running": work, "anything_running": any(group["items"] for group in work.values())}
