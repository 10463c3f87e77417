"""Dataset pages (SPEC §9, §13.2): list, detail with the validation report, status poll, import and actions.

Every view reaches a dataset through ``Dataset.objects.for_user`` / ``get_owned_or_404``; a soft-deleted
dataset is a 404 like another user's. The services do the work, and a broken rule (``ApplicationError``)
becomes a message, never a 500. The upload page is in ``views_upload``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from brightrun.errors import ApplicationError
from brightrun.htmx import render_page
from brightrun.ownership import get_owned_or_404
from datasets.models import Dataset, DatasetValidation
from datasets.validation.codes import CODES, FORMAT_SEVERITY
from training_files.models import TrainingFile

Status = Dataset.Status
PAGE_SIZE = 25
SEARCH_MAX = 200
SAMPLE_COUNT = 3
#: While a dataset is in one of these, its status block polls ``datasets:status``.
POLLING = (Status.UPLOADING, Status.VALIDATING)
#: Statuses with a validation report to show.
CHECKED = (Status.READY, Status.INVALID)


def dataset_or_404(request: HttpRequest, pk: Any) -> Dataset:
    """The requesting user's dataset ``pk``; 404 for another user's, a malformed id, or a deleted one."""
    dataset = get_owned_or_404(Dataset, request.user, pk=pk)
    if dataset.status == Status.DELETED:
        raise Http404("No dataset matches the given query.")
    return dataset


def parse_context_tokens(raw: str | None) -> int | None:
    """A context length from a form field: empty → ``None``; the service checks the range."""
    raw = (raw or "").strip().replace(",", "").replace("_", "")
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApplicationError(
            "The context length must be a whole number of tokens.", code="invalid_context_tokens"
        ) from None


@require_GET
def dataset_list(request: HttpRequest) -> HttpResponse:
    """The user's datasets, newest first; ``?status=`` and ``?q=`` (name or file name); HTMX gets the results."""
    rows = Dataset.objects.for_user(request.user).visible()
    status = request.GET.get("status", "")
    if status in Status.values and status != Status.DELETED:
        rows = rows.filter(status=status)
    else:
        status = ""
    q = request.GET.get("q", "").strip()[:SEARCH_MAX]
    if q:
        rows = rows.filter(Q(name__icontains=q) | Q(file_name__icontains=q))
    rows = rows.order_by("-created_at").only(
        "pk", "name", "file_name", "status", "source", "format", "requested_format", "example_count",
        "trainable_pairs", "error_count", "warning_count", "size", "declared_size", "created_at",
    )  # fmt: skip
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    context = {
        "page": page,
        "live": any(d.status in POLLING for d in page.object_list),  # the rows refresh themselves (HTMX)
        "status": status,
        "q": q,
        "statuses": [choice for choice in Status.choices if choice[0] != Status.DELETED],
        "filtered": bool(status or q),
    }
    return render_page(request, "datasets/list.html", "datasets/_results.html", context)


def _histogram(statistics: dict[str, Any]) -> list[dict[str, Any]]:
    """``length_histogram`` bins with each bar's height as a percentage of the tallest (CSS bars).

    The validator reports fixed buckets up to the longest possible line; empty ones at either end are left out.
    """
    bins = [b for b in statistics.get("length_histogram") or [] if isinstance(b, dict)]
    filled = [i for i, b in enumerate(bins) if b.get("count")]
    bins = bins[filled[0] : filled[-1] + 1] if filled else []
    top = max((b.get("count") or 0 for b in bins), default=0) or 1
    return [
        {
            "min": b.get("min"),
            "max": b.get("max"),
            "count": b.get("count") or 0,
            "pct": round(100 * (b.get("count") or 0) / top),
        }
        for b in bins
    ]


def _issue_groups(dataset: Dataset, validation: DatasetValidation | None) -> list[dict[str, Any]]:
    """Issues grouped by code: the count of every occurrence, then the stored ones (the first 200 overall).

    A code with no stored issue takes its default severity. Errors come first, then the most frequent codes.
    """
    stored: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for issue in validation.issues if validation else []:
        if isinstance(issue, dict):
            stored[str(issue.get("code", ""))].append(issue)
    counts = dict(dataset.issue_counts or {})
    for code, issues in stored.items():
        counts.setdefault(code, len(issues))
    severities = CODES | FORMAT_SEVERITY.get(dataset.format, {})
    groups = []
    for code, count in counts.items():
        issues = stored.get(code, [])
        severity = str(issues[0].get("severity") if issues else severities.get(code, "error"))
        groups.append(
            {
                "code": code,
                "severity": severity,
                "count": count,
                "issues": issues,
                "unstored": max(count - len(issues), 0),
            }
        )
    groups.sort(key=lambda g: (g["severity"] != "error", -g["count"], g["code"]))
    return groups


@require_GET
def dataset_detail(request: HttpRequest, pk) -> HttpResponse:
    """The dataset and, once checked, its report: statistics, length histogram, issues by code, samples."""
    dataset = dataset_or_404(request, pk)
    checked = dataset.status in CHECKED
    validation = (
        dataset.validations.filter(status=DatasetValidation.Status.COMPLETED).order_by("-created_at").first()
        if checked
        else None
    )
    statistics = dataset.statistics if checked and isinstance(dataset.statistics, dict) else {}
    groups = _issue_groups(dataset, validation) if checked else []
    context = {
        "dataset": dataset,
        "polling": dataset.status in POLLING,
        "checked": checked,
        "validation": validation,
        "stats": statistics,
        "histogram": _histogram(statistics),
        "issue_groups": groups,
        "issue_total": sum(g["count"] for g in groups),
        "samples": [s for s in statistics.get("samples") or [] if isinstance(s, dict)][:SAMPLE_COUNT],
        "version": dataset.training_file_version,
    }
    return render(request, "datasets/detail.html", context)


@require_GET
def dataset_status(request: HttpRequest, pk) -> HttpResponse:
    """The status block polled every 2 s while uploading/validating; once checked, ``HX-Refresh`` reloads the page."""
    dataset = dataset_or_404(request, pk)
    polling = dataset.status in POLLING
    response = render(request, "datasets/_status.html", {"dataset": dataset, "polling": polling})
    if not polling:
        response["HX-Refresh"] = "true"  # the full page shows the report
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def dataset_import(request: HttpRequest) -> HttpResponse:
    """Import one version of the user's training file as a dataset; validation starts after commit."""
    from datasets import services

    training_file = get_owned_or_404(TrainingFile, request.user, pk=request.POST.get("training_file"))
    try:
        dataset = services.dataset_import(
            owner=request.user,
            training_file=training_file,
            version=request.POST.get("version") or None,
            name=request.POST.get("name", "").strip() or None,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("training_files:detail", pk=training_file.pk)
    messages.success(request, f"Imported “{dataset.name}”; validation has started.")
    return redirect("datasets:detail", pk=dataset.pk)


@require_POST
def dataset_revalidate(request: HttpRequest, pk) -> HttpResponse:
    """Validate again; the form's context length replaces the stored one (empty: no context check)."""
    from datasets import services

    dataset = dataset_or_404(request, pk)
    try:
        options: dict[str, Any] = {}
        if "context_tokens" in request.POST:
            context_tokens = parse_context_tokens(request.POST["context_tokens"])
            if context_tokens != dataset.context_tokens:
                options["context_tokens"] = context_tokens
        services.dataset_revalidate(dataset=dataset, actor=request.user, **options)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Validation started again.")
    return redirect("datasets:detail", pk=dataset.pk)


@require_POST
def dataset_delete(request: HttpRequest, pk) -> HttpResponse:
    """Soft-delete; the stored file is removed by the cleanup task later (SPEC §9.1)."""
    from datasets import services

    dataset = dataset_or_404(request, pk)
    try:
        services.dataset_delete(dataset=dataset, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("datasets:detail", pk=dataset.pk)
    messages.success(request, f"Deleted “{dataset.name}”.")
    return redirect("datasets:list")


@require_GET
def dataset_download(request: HttpRequest, pk) -> HttpResponse:
    """Redirect to a short-lived signed URL of the file; without a file, explain on the detail page."""
    from datasets import services

    dataset = dataset_or_404(request, pk)
    try:
        result = services.dataset_download(dataset=dataset)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("datasets:detail", pk=dataset.pk)
    return HttpResponseRedirect(result["url"])
