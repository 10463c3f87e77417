"""Pages for generating conversations and following batches, failures and conversations."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from brightrun.errors import ApplicationError
from brightrun.htmx import render_page
from brightrun.ownership import get_owned_or_404
from conversations.forms import BulkGenerationForm, SingleGenerationForm
from conversations.models import BatchItem, FailedGeneration, GenerationBatch, GenerationLog
from conversations.services import batches
from conversations.services.records import failure_report, generation_log_stats, json_dumps


def _key_context() -> dict:
    return {"anthropic_key_missing": not settings.ANTHROPIC_API_KEY}


def generate(request: HttpRequest) -> HttpResponse:
    form = SingleGenerationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            specs = batches.item_specs_from_items(
                [
                    {
                        "persona": data["persona"].key,
                        "emotional_arc": data["emotional_arc"].key,
                        "training_topic": data["training_topic"].key,
                        "temperature": data["temperature"],
                    }
                ],
                allow_incompatible=True,
            )
            batch = batches.generation_batch_create(owner=request.user, specs=specs, concurrency=1)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Generation started. This page updates as it runs.")
            return redirect("conversations:batch_detail", pk=batch.pk)
    return render(
        request, "conversations/generate.html", {"form": form, **_key_context()}, status=400 if form.errors else 200
    )


def _bulk_specs(form: BulkGenerationForm):
    data = form.cleaned_data
    return batches.item_specs_from_selection(
        personas=[p.key for p in data["personas"]],
        emotional_arcs=[a.key for a in data["emotional_arcs"]],
        training_topics=[t.key for t in data["training_topics"]],
        repeat=data["repeat"],
    )


def generate_bulk(request: HttpRequest) -> HttpResponse:
    form = BulkGenerationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            selection = _bulk_specs(form)
            batch = batches.generation_batch_create(
                owner=request.user,
                specs=selection.specs,
                name=data["name"],
                mode=data["mode"],
                priority=data["priority"],
                concurrency=data["concurrency"],
                error_policy=data["error_policy"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            note = (
                f" ({selection.skipped_incompatible} incompatible combinations skipped)"
                if selection.skipped_incompatible
                else ""
            )
            messages.success(request, f"Batch of {batch.total_items} conversations started{note}.")
            return redirect("conversations:batch_detail", pk=batch.pk)
    context = {"form": form, "estimate": _estimate(form) if form.is_bound else None, **_key_context()}
    return render(request, "conversations/generate_bulk.html", context, status=400 if form.errors else 200)


def _estimate(form: BulkGenerationForm) -> dict:
    """The live 'N × M × K = X conversations, ≈ $, ≈ time' line for a (possibly partial) form."""
    if not form.is_valid():
        return {"error": "Choose at least one persona, arc and topic."}
    data = form.cleaned_data
    try:
        selection = _bulk_specs(form)
    except ApplicationError as exc:
        return {"error": exc.message}
    est = batches.generation_estimate(
        specs=selection.specs, model=settings.ANTHROPIC_MODEL, mode=data["mode"], concurrency=data["concurrency"]
    )
    return {
        "n": len(data["personas"]),
        "m": len(data["emotional_arcs"]),
        "k": len(data["training_topics"]),
        "repeat": data["repeat"],
        "total": est.total_items,
        "skipped": selection.skipped_incompatible,
        "cost": est.cost_usd,
        "minutes": max(1, round(est.seconds / 60)),
        "basis": est.basis,
    }


@require_GET
def generate_estimate(request: HttpRequest) -> HttpResponse:
    form = BulkGenerationForm(request.GET)
    return render(request, "conversations/_estimate.html", {"estimate": _estimate(form)})


@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    """The user's batches; while one on the page is queued or running, the rows refresh themselves (HTMX)."""
    page = Paginator(GenerationBatch.objects.for_user(request.user), 25).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    live = any(b.status in (GenerationBatch.Status.QUEUED, GenerationBatch.Status.RUNNING) for b in page.object_list)
    context = {"page": page, "live": live}
    return render_page(request, "conversations/batch_list.html", "conversations/_batch_rows.html", context)


def _batch_context(request: HttpRequest, batch: GenerationBatch) -> dict:
    return {"batch": batch, "etr": batches.etr_seconds(batch)}


@require_GET
def batch_detail(request: HttpRequest, pk) -> HttpResponse:
    batch = get_owned_or_404(GenerationBatch, request.user, pk=pk)
    items = (
        BatchItem.objects.for_user(request.user)
        .filter(batch=batch)
        .select_related("persona", "emotional_arc", "training_topic")
        .order_by("position")
    )
    page = Paginator(items, 50).get_page(request.GET.get("page"))
    return render(request, "conversations/batch_detail.html", {**_batch_context(request, batch), "page": page})


@require_GET
def batch_progress(request: HttpRequest, pk) -> HttpResponse:
    """The progress fragment polled by the batch page (every 2 s until the batch ends)."""
    batch = get_owned_or_404(GenerationBatch, request.user, pk=pk)
    response = render(request, "conversations/_batch_progress.html", _batch_context(request, batch))
    response["Cache-Control"] = "no-store"
    return response


def _batch_action(verb, past: str):
    @require_POST
    def view(request: HttpRequest, pk) -> HttpResponse:
        batch = get_owned_or_404(GenerationBatch, request.user, pk=pk)
        try:
            verb(batch=batch, actor=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Batch {past}.")
        return redirect("conversations:batch_detail", pk=batch.pk)

    return view


batch_cancel = _batch_action(batches.generation_batch_cancel, "cancelled")
batch_pause = _batch_action(batches.generation_batch_pause, "paused")
batch_resume = _batch_action(batches.generation_batch_resume, "resumed")


@require_GET
def failed_list(request: HttpRequest) -> HttpResponse:
    rows = FailedGeneration.objects.for_user(request.user).select_related("batch")
    page = Paginator(rows, 25).get_page(request.GET.get("page"))
    return render(request, "conversations/failed_list.html", {"page": page})


@require_GET
def failed_detail(request: HttpRequest, pk) -> HttpResponse:
    failure = get_owned_or_404(FailedGeneration, request.user, pk=pk)
    return render(
        request, "conversations/failed_detail.html", {"failure": failure, "report": json_dumps(failure_report(failure))}
    )


@require_GET
def failed_report(request: HttpRequest, pk) -> HttpResponse:
    failure = get_owned_or_404(FailedGeneration, request.user, pk=pk)
    response = HttpResponse(json_dumps(failure_report(failure)), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="failed-generation-{failure.pk}.json"'
    return response


@require_GET
def generation_logs(request: HttpRequest) -> HttpResponse:
    """Statistics for a date range (default: the last 30 days) and the calls in it."""
    end_raw, start_raw = request.GET.get("end", ""), request.GET.get("start", "")
    error = None
    try:
        end = _parse_day(end_raw, end_of_day=True) or timezone.now()
        start = _parse_day(start_raw) or end - timedelta(days=30)
        if start >= end:
            raise ValueError("The start must be before the end.")
    except ValueError as exc:
        error = str(exc)
        end = timezone.now()
        start = end - timedelta(days=30)
    stats = generation_log_stats(user=request.user, start=start, end=end)
    logs = GenerationLog.objects.for_user(request.user).filter(created_at__gte=start, created_at__lt=end)
    page = Paginator(logs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "conversations/generation_logs.html",
        {
            "stats": stats,
            "page": page,
            "error": error,
            "start": start.date().isoformat(),
            "end": end.date().isoformat(),
        },
        status=400 if error else 200,
    )


def _parse_day(raw: str, *, end_of_day: bool = False):
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"{raw!r} is not a date (use YYYY-MM-DD).") from exc
    moment = datetime.combine(day + timedelta(days=1) if end_of_day else day, time.min)
    return timezone.make_aware(moment)


urlpatterns = [
    path("generate/", generate, name="generate"),
    path("generate/bulk/", generate_bulk, name="generate_bulk"),
    path("generate/estimate/", generate_estimate, name="generate_estimate"),
    path("generation/batches/", batch_list, name="batch_list"),
    path("generation/batches/<uuid:pk>/", batch_detail, name="batch_detail"),
    path("generation/batches/<uuid:pk>/progress/", batch_progress, name="batch_progress"),
    path("generation/batches/<uuid:pk>/cancel/", batch_cancel, name="batch_cancel"),
    path("generation/batches/<uuid:pk>/pause/", batch_pause, name="batch_pause"),
    path("generation/batches/<uuid:pk>/resume/", batch_resume, name="batch_resume"),
    path("generation/logs/", generation_logs, name="generation_logs"),
    path("generation/failures/", failed_list, name="failed_list"),
    path("generation/failures/<uuid:pk>/", failed_detail, name="failed_detail"),
    path("generation/failures/<uuid:pk>/report/", failed_report, name="failed_report"),
]
