"""Training file pages (SPEC §7.1, §13.2): create/add from a selection, list, detail, retry, remove, download.

Every view goes through ``TrainingFile.objects.for_user`` / ``get_owned_or_404``; the services do the work
and a broken rule (``ApplicationError``) becomes a message or a 400 form page, never a 500.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from brightrun.errors import ApplicationError
from brightrun.htmx import is_htmx, render_page
from brightrun.ownership import get_owned_or_404
from conversations.models import Conversation
from training_files.models import TrainingFile, TrainingFileVersion

PAGE_SIZE = 25
SELECTION_LIMIT = 500
FORMATS = ("chat-jsonl", "v4-jsonl", "v4-json")
REASONS = {
    "not_approved": "not approved yet",
    "not_enriched": "enrichment not completed",
    "truncation_suspected": "flagged as possibly truncated",
    "not_found": "not found",
    "duplicate_group": "another conversation of its near-duplicate group is already in the file",
    "already_member": "already in the file",
    "not_member": "not in the file",
}


def _ids(request: HttpRequest, field: str = "ids") -> list[str]:
    return [raw for raw in request.POST.getlist(field)[:SELECTION_LIMIT] if raw]


def _titles(user, ids) -> dict[str, str]:
    rows = Conversation.objects.for_user(user).filter(pk__in=[i for i in ids if _is_uuid(i)])
    return {str(pk): title for pk, title in rows.values_list("pk", "title")}


def _is_uuid(value: Any) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _explain(user, rejected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The gate's rejections with the conversation's title and a human-readable reason per code."""
    titles = _titles(user, [r["conversation_id"] for r in rejected])
    return [
        {
            "id": r["conversation_id"],
            "title": titles.get(r["conversation_id"], "Unknown conversation"),
            "known": r["conversation_id"] in titles,
            "reasons": [REASONS.get(code, code.replace("_", " ")) for code in r["reasons"]],
        }
        for r in rejected
    ]


def _selection_form(request: HttpRequest, mode: str, ids: list[str], error=None, status: int = 200) -> HttpResponse:
    context = {
        "mode": mode,
        "ids": ids,
        "error": error.message if error else "",
        "rejected": _explain(request.user, (error.errors or {}).get("rejected", [])) if error else [],
        "name": request.POST.get("tf_name", ""),
        "description": request.POST.get("tf_description", ""),
        "training_files": TrainingFile.objects.for_user(request.user).order_by("name").only("pk", "name"),
    }
    return render(request, "training_files/selection_form.html", context, status=status)


def _result(request: HttpRequest, training_file: TrainingFile, version, gate, created: bool) -> HttpResponse:
    titles = _titles(request.user, [str(c.pk) for c in gate.accepted])
    context = {
        "training_file": training_file,
        "version": version,
        "created": created,
        "accepted": [{"id": str(c.pk), "title": titles.get(str(c.pk), str(c.pk))} for c in gate.accepted],
        "rejected": _explain(request.user, gate.rejected),
    }
    return render(request, "training_files/selection_result.html", context)


@require_POST
def create_from_selection(request: HttpRequest) -> HttpResponse:
    """Create a file from the selected conversations; the gate's verdict per conversation on a result page."""
    from training_files.services import training_file_create

    ids = _ids(request)
    if not ids:
        messages.error(request, "Select at least one conversation.")
        return redirect("conversations:conversation_list")
    try:
        training_file, gate = training_file_create(
            owner=request.user,
            name=request.POST.get("tf_name", ""),
            description=request.POST.get("tf_description", ""),
            conversation_ids=ids,
        )
    except ApplicationError as exc:
        return _selection_form(request, "create", ids, exc, status=400)
    version = training_file.versions.order_by("-number").first()
    return _result(request, training_file, version, gate, created=True)


@require_POST
def add_from_selection(request: HttpRequest) -> HttpResponse:
    """Add the selected conversations to one of the user's files (a new version); asks which file first."""
    from training_files.services import training_file_members_update

    ids = _ids(request)
    if not ids:
        messages.error(request, "Select at least one conversation.")
        return redirect("conversations:conversation_list")
    if not request.POST.get("training_file"):
        return _selection_form(request, "add", ids)
    training_file = get_owned_or_404(TrainingFile, request.user, pk=request.POST["training_file"])
    try:
        version, gate = training_file_members_update(training_file=training_file, actor=request.user, add=ids)
    except ApplicationError as exc:
        return _selection_form(request, "add", ids, exc, status=400)
    return _result(request, training_file, version, gate, created=False)


@require_GET
def training_file_list(request: HttpRequest) -> HttpResponse:
    """The user's files; while a version on the page builds, the rows refresh themselves (HTMX)."""
    latest = TrainingFileVersion.objects.filter(training_file=OuterRef("pk")).order_by("-number")
    rows = (
        TrainingFile.objects.for_user(request.user)
        .select_related("current_version")
        .annotate(
            member_count=Count("members"),
            latest_number=Subquery(latest.values("number")[:1]),
            latest_status=Subquery(latest.values("status")[:1]),
        )
        .order_by("-updated_at")
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    live = any(f.latest_status == TrainingFileVersion.Status.BUILDING for f in page.object_list)
    return render_page(request, "training_files/list.html", "training_files/_rows.html", {"page": page, "live": live})


def _distribution(raw: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """``{dimension: {key: n}}`` as rows with a percentage of the largest bar, for a CSS bar chart."""
    labels = {"personas": "Personas", "emotional_arcs": "Emotional arcs", "training_topics": "Training topics"}
    charts = []
    for dimension, counts in (raw or {}).items():
        top = max(counts.values(), default=0) or 1
        bars = [{"key": key, "n": n, "pct": round(100 * n / top)} for key, n in sorted(counts.items())]
        charts.append({"label": labels.get(dimension, dimension), "bars": bars})
    return charts


def _versions_context(training_file: TrainingFile) -> dict[str, Any]:
    versions = list(training_file.versions.order_by("-number"))
    return {
        "training_file": training_file,
        "versions": versions,
        "building": any(v.status == TrainingFileVersion.Status.BUILDING for v in versions),
        "formats": FORMATS,
    }


@require_GET
def training_file_detail(request: HttpRequest, pk) -> HttpResponse:
    """The file; for HTMX the versions fragment (polled while a build runs, a full refresh once it ends)."""
    training_file = get_owned_or_404(TrainingFile, request.user, pk=pk)
    context = _versions_context(training_file)
    if is_htmx(request) and not context["building"]:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"  # the build ended: reload for the summary and downloads
        return response
    current = training_file.current_version
    context |= {
        "current": current,
        "summary": (current.quality_summary if current else None) or {},
        "charts": _distribution(current.scaffolding_distribution if current else {}),
        "members": training_file.members.select_related("conversation").order_by("added_at"),
    }
    return render_page(request, "training_files/detail.html", "training_files/_versions.html", context)


@require_POST
def version_retry(request: HttpRequest, pk, number: int) -> HttpResponse:
    from training_files.services import training_file_build_retry, training_file_version_get

    training_file = get_owned_or_404(TrainingFile, request.user, pk=pk)
    try:
        version = training_file_version_get(training_file=training_file, number=number)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    try:
        training_file_build_retry(version=version, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Version {version.number} is building again.")
    return redirect("training_files:detail", pk=training_file.pk)


@require_POST
def members_remove(request: HttpRequest, pk) -> HttpResponse:
    from training_files.services import training_file_members_update

    training_file = get_owned_or_404(TrainingFile, request.user, pk=pk)
    remove = _ids(request, "remove")
    if not remove:
        messages.error(request, "Select at least one conversation to remove.")
        return redirect("training_files:detail", pk=training_file.pk)
    try:
        version, _ = training_file_members_update(training_file=training_file, actor=request.user, remove=remove)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Removed {len(remove)} conversation(s); version {version.number} is building.")
    return redirect("training_files:detail", pk=training_file.pk)


@require_GET
def download(request: HttpRequest, pk, number: int, fmt: str) -> HttpResponse:
    """Redirect to a short-lived signed URL of one format of a ready version; otherwise explain and go back."""
    from training_files.services import training_file_download

    training_file = get_owned_or_404(TrainingFile, request.user, pk=pk)
    try:
        result = training_file_download(training_file=training_file, fmt=fmt, version_number=number)
    except ApplicationError as exc:
        if exc.status_code == 404:
            raise Http404(exc.message) from exc
        messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("training_files:detail", kwargs={"pk": training_file.pk}))
    return HttpResponseRedirect(result["url"])
