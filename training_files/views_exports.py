"""Export pages (SPEC §8, §13.2): history, create (POST), download redirect.

The lead mounts ``urlpatterns`` in the ``training_files`` namespace: ``exports``, ``export_create``,
``export_download``.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from brightrun.errors import ApplicationError
from brightrun.htmx import render_page
from brightrun.ownership import get_owned_or_404
from training_files import services
from training_files.models import Export

LIST_LIMIT = 200


@require_GET
def export_list(request: HttpRequest) -> HttpResponse:
    """The user's exports, newest first, with a form to start one; rows refresh themselves while one renders."""
    exports = list(Export.objects.for_user(request.user).defer("conversation_ids").order_by("-created_at")[:LIST_LIMIT])
    context = {
        "exports": exports,
        "live": any(e.status in (Export.Status.QUEUED, Export.Status.RUNNING) for e in exports),
        "formats": Export.Format.choices,
        "options": [
            (name, name.removeprefix("include_").replace("_", " ").capitalize())
            for name in services.exports.OPTION_NAMES
        ],
    }
    return render_page(request, "training_files/exports.html", "training_files/_export_rows.html", context)


@require_POST
def export_create(request: HttpRequest) -> HttpResponse:
    """Queue an export of all approved conversations or of the selected ids; back to the list with a message."""
    scope = request.POST.get("scope", "")
    raw_ids = request.POST.getlist("conversations")
    if len(raw_ids) == 1:
        raw_ids = [part for part in raw_ids[0].replace(",", " ").split() if part]
    if scope not in (Export.Scope.ALL_APPROVED, Export.Scope.SELECTED):
        messages.error(request, "Choose all approved conversations or selected ones.")
        return redirect("training_files:exports")
    options = {name: request.POST.get(name) in ("1", "on", "true") for name in services.exports.OPTION_NAMES}
    try:
        export = services.export_create(
            owner=request.user,
            scope=scope,
            fmt=request.POST.get("format", ""),
            conversation_ids=raw_ids if scope == Export.Scope.SELECTED else None,
            options=options,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Export {str(export.pk)[:8]} queued; it will be ready shortly.")
    return redirect("training_files:exports")


@require_GET
def export_download(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """Redirect to a short-lived signed URL of a completed export (counts the download)."""
    export = get_owned_or_404(Export, request.user, pk=pk)
    try:
        result = services.export_download(export=export)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("training_files:exports")
    return redirect(result["url"])


urlpatterns = [
    path("exports/", export_list, name="exports"),
    path("exports/new/", export_create, name="export_create"),
    path("exports/<uuid:pk>/download/", export_download, name="export_download"),
]
