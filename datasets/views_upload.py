"""The dataset upload page (SPEC §9.1).

With JavaScript (``static/js/dataset_upload.js``) the browser creates the dataset through the API, uploads the
file directly to storage (S3 presigned POST or the app's signed local URL) with a progress bar and confirms;
this view only renders the form. Without JavaScript the same form posts the file here and goes through the same
services: create (size limit) → store at the dataset's key → confirm (validation is enqueued after commit).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from brightrun.errors import ApplicationError
from brightrun.storage import file_storage
from datasets.models import Dataset
from datasets.views import parse_context_tokens

#: Room for the multipart envelope around the file (boundaries, part headers, the small form fields).
MULTIPART_OVERHEAD = 16 * 1024
FORMATS = [
    (Dataset.Format.AUTO, "Detect from the first line"),
    (Dataset.Format.CHAT, 'Chat messages ({"messages": [...]})'),
    (Dataset.Format.BRIGHTRUN_V4, "Bright Run v4 JSONL"),
    (Dataset.Format.TURNS, 'Legacy turns ({"conversation_id", "turns"})'),
]
_PLACEHOLDER = uuid.UUID(int=0)
#: Refusals that belong to one field of the form (shown beside it rather than above the form).
FIELD_ERRORS = {
    "invalid_name": "name",
    "file_missing": "file",
    "empty_file": "file",
    "invalid_file_name": "file",
    "invalid_file_size": "file",
    "file_too_large": "file",
    "invalid_format": "format",
    "invalid_context_tokens": "context_tokens",
}


def _api_urls() -> dict[str, str]:
    """The API endpoints the script calls (SPEC §13.1); ``{id}`` stands for the new dataset's id."""
    with_id = {"pk": _PLACEHOLDER}
    urls = {
        "create": reverse("dataset-list"),
        "upload": reverse("dataset-upload", kwargs=with_id),
        "confirm": reverse("dataset-confirm", kwargs=with_id),
        "detail": reverse("datasets:detail", kwargs=with_id),
    }
    return {name: url.replace(str(_PLACEHOLDER), "{id}") for name, url in urls.items()}


def _form(
    request: HttpRequest,
    values: dict[str, Any] | None = None,
    *,
    errors: dict[str, ApplicationError] | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "values": values or {"format": Dataset.Format.AUTO},
        "errors": errors or {},
        "formats": FORMATS,
        "max_bytes": settings.DATASET_MAX_BYTES,
        "urls": _api_urls(),
    }
    return render(request, "datasets/upload.html", context, status=status)


def _refuse(request: HttpRequest, exc: ApplicationError, values: dict[str, Any] | None = None) -> HttpResponse:
    """The form again (400) with what was typed and the reason beside its field (above the form if no field)."""
    field = FIELD_ERRORS.get(exc.code)
    if field is None:
        messages.error(request, f"{exc.message} ({exc.code})")
        return _form(request, values, status=400)
    return _form(request, values, errors={field: exc}, status=400)


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


# CSRF is checked by ``_receive`` instead of the middleware: the middleware reads the form token from the
# body, which parses the whole multipart upload, and an oversized request must be refused before that.
@csrf_exempt
def dataset_upload(request: HttpRequest) -> HttpResponse:
    """GET: the upload form. POST (no JavaScript): refuse an oversized body unread, else store and confirm."""
    if request.method == "GET":
        return _form(request)
    if request.method != "POST":
        return HttpResponseNotAllowed(["GET", "POST"])
    limit = settings.DATASET_MAX_BYTES
    length = _content_length(request)
    if length > limit + MULTIPART_OVERHEAD:
        exc = ApplicationError(
            f"The upload has {length:,} bytes; the limit is {limit:,} bytes ({limit // 2**20} MB).",
            code="file_too_large",
        )
        return _refuse(request, exc)  # the form comes back empty: reading the fields would read the body
    return _receive(request)


@csrf_protect
def _receive(request: HttpRequest) -> HttpResponse:
    from datasets.services import dataset_confirm, dataset_create, dataset_delete
    from datasets.services.lifecycle import check_file_type

    values = {key: request.POST.get(key, "").strip() for key in ("name", "format", "context_tokens")}
    upload: UploadedFile | None = request.FILES.get("file")
    try:
        if upload is None:
            raise ApplicationError("Choose a file to upload.", code="file_missing")
        if not upload.size:
            raise ApplicationError("The file is empty.", code="empty_file")
        check_file_type(upload.name or "", upload.content_type)
        pending = dataset_create(
            owner=request.user,
            name=values["name"],
            file_name=upload.name or "",
            file_size=upload.size,
            format=values["format"] or None,
            context_tokens=parse_context_tokens(values["context_tokens"]),
        )
    except ApplicationError as exc:
        return _refuse(request, exc, values)
    dataset = pending.dataset
    try:
        _store(dataset, upload)
        dataset = dataset_confirm(dataset=dataset, actor=request.user)
    except ApplicationError as exc:
        dataset_delete(dataset=dataset, actor=request.user)  # never left behind as a stuck upload
        return _refuse(request, exc, values)
    messages.success(request, f"Uploaded “{dataset.name}”; validation has started.")
    return redirect("datasets:detail", pk=dataset.pk)


def _store(dataset: Dataset, upload: UploadedFile) -> None:
    """Save the upload at exactly the dataset's key (never a renamed neighbour the dataset would not find)."""
    storage = file_storage()
    saved = storage.save(dataset.storage_key, upload)
    if saved != dataset.storage_key:
        storage.delete(saved)
        raise ApplicationError("The file could not be stored under the dataset's key.", code="storage_key_taken")
