"""Endpoints behind the local backend's signed URLs (the S3 backend never reaches these).

The signature is the authorisation, so these views need no session; they are exempt
from the login middleware and CSRF. A token grants one operation on one key.
"""

from __future__ import annotations

import tempfile

from django.contrib.auth.decorators import login_not_required
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from brightrun.errors import ApplicationError
from brightrun.storage import file_storage, verify_signed_token

# Room for the multipart envelope around the file (boundaries, part headers).
_MULTIPART_OVERHEAD = 16 * 1024
_CHUNK_BYTES = 1024 * 1024
_SPOOL_BYTES = 8 * 1024 * 1024


def _error(exc: ApplicationError) -> JsonResponse:
    return JsonResponse({"detail": exc.message, "code": exc.code}, status=exc.status_code)


@login_not_required
@require_GET
def signed_download(request: HttpRequest, token: str) -> HttpResponse:
    try:
        grant = verify_signed_token(token, op="get")
    except ApplicationError as exc:
        return _error(exc)
    storage = file_storage()
    if not storage.exists(grant.key):
        return JsonResponse({"detail": "File not found.", "code": "not_found"}, status=404)
    return FileResponse(storage.open(grant.key, "rb"), as_attachment=True, filename=grant.name or None)


@csrf_exempt
@login_not_required
@require_POST
def signed_upload(request: HttpRequest, token: str) -> HttpResponse:
    try:
        grant = verify_signed_token(token, op="put")
    except ApplicationError as exc:
        return _error(exc)
    declared = _declared_length(request)
    if declared < 0:
        return JsonResponse({"detail": "Content-Length is required.", "code": "length_required"}, status=411)
    if declared > grant.max_bytes + _MULTIPART_OVERHEAD:
        return _too_large(grant.max_bytes)
    upload: UploadedFile | None = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"detail": "Send the file in the 'file' form field.", "code": "file_missing"}, status=400)
    if upload.size > grant.max_bytes:
        return _too_large(grant.max_bytes)
    if upload.size == 0:
        return JsonResponse({"detail": "The file is empty.", "code": "empty_file"}, status=400)
    _replace(grant.key, upload)
    return HttpResponse(status=204)


@csrf_exempt
@login_not_required
@require_http_methods(["PUT"])
def signed_put(request: HttpRequest, token: str) -> HttpResponse:
    """Store the raw request body at the token's key (the local twin of an S3 presigned PUT)."""
    try:
        grant = verify_signed_token(token, op="put-object")
    except ApplicationError as exc:
        return _error(exc)
    declared = _declared_length(request)
    if declared < 0:
        return JsonResponse({"detail": "Content-Length is required.", "code": "length_required"}, status=411)
    if declared > grant.max_bytes:
        return _too_large(grant.max_bytes)
    # Read the stream in chunks (request.body would hold it all in memory and trips DATA_UPLOAD_MAX_MEMORY_SIZE).
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        received = 0
        while chunk := request.read(_CHUNK_BYTES):
            received += len(chunk)
            if received > grant.max_bytes:
                return _too_large(grant.max_bytes)
            spool.write(chunk)
        if received != declared:
            return JsonResponse(
                {"detail": "The body is shorter than Content-Length.", "code": "incomplete"}, status=400
            )
        spool.seek(0)
        _replace(grant.key, File(spool, name=grant.key))
    return HttpResponse(status=200)


def _declared_length(request: HttpRequest) -> int:
    """The request's Content-Length, or -1 when it is missing or not a number."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or -1)
    except ValueError:
        return -1


def _replace(key: str, content) -> None:
    """Store ``content`` at exactly ``key`` (a signed grant names one key; a retry overwrites it)."""
    storage = file_storage()
    if storage.exists(key):
        storage.delete(key)
    storage.save(key, content)


def _too_large(limit: int) -> JsonResponse:
    return JsonResponse(
        {"detail": f"The file is larger than the limit of {limit} bytes.", "code": "file_too_large"}, status=413
    )
