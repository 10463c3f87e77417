"""Training job pages (SPEC §10.3, §13.2): the list, the monitor with its live block, and cancel.

Every view reaches a job through ``TrainingJob.objects.for_user`` / ``get_owned_or_404`` (another user's job is a
404). Charts are inline SVG drawn from ``training.charts``; while a job is active its live block polls
``training:job_live`` every 2 s, which sends ``HX-Refresh`` once the job is terminal. The configure page is in
``views_configure``, models in ``views_models``, costs in ``views_costs``.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.db.models.functions import Mod
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from brightrun.errors import ApplicationError
from brightrun.htmx import render_page
from brightrun.ownership import get_owned_or_404
from training.charts import MAX_POINTS, line_chart
from training.models import ModelArtifact, TrainingJob
from training.services.jobs import training_job_cancel

Status = TrainingJob.Status
PAGE_SIZE = 25
EVENT_LIMIT = 50
#: ``latest_metrics`` keys shown on the monitor, in order, with their labels.
METRIC_LABELS = (
    ("training_loss", "Training loss"),
    ("validation_loss", "Validation loss"),
    ("learning_rate", "Learning rate"),
    ("grad_norm", "Gradient norm"),
    ("tokens_per_second", "Tokens/s"),
)


@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    """The user's jobs, newest first, with a ``?status=`` filter; HTMX gets the results table."""
    rows = TrainingJob.objects.for_user(request.user).select_related("dataset", "base_model", "gpu_type")
    status = request.GET.get("status", "")
    if status in Status.values:
        rows = rows.filter(status=status)
    else:
        status = ""
    rows = rows.order_by("-created_at").defer("hyperparameters", "estimate", "latest_metrics", "dataset__statistics")
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    context = {
        "page": page,
        "live": any(job.status in TrainingJob.ACTIVE for job in page.object_list),  # rows refresh themselves
        "status": status,
        "statuses": Status.choices,
        "filtered": bool(status),
    }
    return render_page(request, "training/job_list.html", "training/_job_results.html", context)


def _metric_rows(job: TrainingJob) -> list[tuple]:
    """Metric points for the charts, thinned in SQL for long runs (every n-th step, all evaluations, the last)."""
    points = job.metrics.order_by("step", "created_at")
    stride = math.ceil(max(job.total_steps, job.current_step) / MAX_POINTS) if job.total_steps else 1
    if stride > 1:
        points = points.annotate(phase=Mod("step", stride)).filter(Q(phase=0) | Q(validation_loss__isnull=False))
    fields = ("step", "epoch", "training_loss", "validation_loss", "learning_rate")
    rows = list(points.values_list(*fields))
    if stride > 1:
        last = job.metrics.order_by("-step", "-created_at").values_list(*fields).first()
        if last is not None and (not rows or rows[-1][0] < last[0]):
            rows.append(last)
    return rows


def _charts(job: TrainingJob) -> dict[str, Any]:
    rows = _metric_rows(job)

    def series(index: int) -> list[tuple]:
        return [(row[0], row[index]) for row in rows if row[index] is not None]

    loss = line_chart(
        [
            {"name": "Training loss", "css": "series-train", "points": series(2)},
            {"name": "Validation loss", "css": "series-val", "points": series(3)},
        ]
    )
    learning_rate = line_chart([{"name": "Learning rate", "css": "series-lr", "points": series(4)}], scientific=True)
    return {"loss_chart": loss, "lr_chart": learning_rate}


def _cost(job: TrainingJob) -> dict[str, Any]:
    """Estimate against reality: the cost so far while running (elapsed × GPUs × price), the actual cost after."""
    end = job.finished_at or timezone.now()
    elapsed = (end - job.started_at).total_seconds() if job.started_at else None
    so_far = None
    if job.status == Status.RUNNING and elapsed is not None:
        so_far = Decimal(str(elapsed / 3600)) * job.gpu_count * job.gpu_type.price_per_hour
    estimate = job.estimate or {}
    return {
        "estimated": job.estimated_cost,
        "actual": job.actual_cost,
        "so_far": so_far,
        "elapsed_seconds": elapsed,
        "estimated_seconds": (estimate.get("time_seconds") or {}).get("total"),
        "estimated_throughput": estimate.get("throughput_tokens_per_second"),
        "measured_throughput": job.measured_tokens_per_second,
    }


def _latest(job: TrainingJob) -> list[dict[str, Any]]:
    metrics = job.latest_metrics if isinstance(job.latest_metrics, dict) else {}
    return [
        {"key": key, "label": label, "value": metrics[key]}
        for key, label in METRIC_LABELS
        if metrics.get(key) is not None
    ]


def _live_context(job: TrainingJob) -> dict[str, Any]:
    hyperparameters = job.hyperparameters if isinstance(job.hyperparameters, dict) else {}
    return {
        "job": job,
        "active": job.status in TrainingJob.ACTIVE,
        "epochs": hyperparameters.get("epochs"),
        "latest": _latest(job),
        "events": list(job.events.order_by("-created_at")[:EVENT_LIMIT]),
        "cost": _cost(job),
        **_charts(job),
    }


def _job(request: HttpRequest, pk) -> TrainingJob:
    return get_owned_or_404(TrainingJob, request.user, pk=pk)


@require_GET
def job_detail(request: HttpRequest, pk) -> HttpResponse:
    """The monitor: stage, progress, charts, events, cost, the error with its hint, cancel and the model link."""
    job = _job(request, pk)
    artifact = (
        ModelArtifact.objects.for_user(request.user).filter(job=job).only("pk", "name").first()
        if job.status == Status.COMPLETED
        else None
    )
    hyperparameters = job.hyperparameters if isinstance(job.hyperparameters, dict) else {}
    context = {
        **_live_context(job),
        "artifact": artifact,
        "hyperparameters": sorted(hyperparameters.items()),
        "estimate": job.estimate or {},
    }
    return render(request, "training/job_detail.html", context)


@require_GET
def job_live(request: HttpRequest, pk) -> HttpResponse:
    """The live block, polled every 2 s while the job is active; once terminal, ``HX-Refresh`` reloads the page."""
    job = _job(request, pk)
    response = render(request, "training/_live.html", _live_context(job))
    if job.is_terminal:
        response["HX-Refresh"] = "true"  # the full page shows the outcome: model link, error, actual cost
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def job_cancel(request: HttpRequest, pk) -> HttpResponse:
    """Cancel: a queued job at once, a running one at its next step (the service decides)."""
    job = _job(request, pk)
    try:
        job = training_job_cancel(job=job, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        if job.status == Status.CANCELLED:
            messages.success(request, "The job was cancelled.")
        else:
            messages.success(request, "Cancellation requested; the job stops at its next step.")
    return redirect("training:job_detail", pk=job.pk)
