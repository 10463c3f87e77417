"""Object storage helpers: owner-prefixed keys and short-lived signed URLs.

One interface for both backends:

* S3 (django-storages): presigned GET for downloads, presigned POST (exact key,
  ``content-length-range``) for direct uploads, presigned PUT for machine uploads.
* Local files: URLs signed by the app (``django.core.signing``) and served by
  :mod:`brightrun.file_views`, with the same expiry and size limit.

Signed URLs are produced on demand and never stored in the database. Every key lives
under its owner's prefix ``users/<owner id>/``; a key outside it cannot be produced.
"""

from __future__ import annotations

import io
import logging
import os
import posixpath
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import boto3
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.conf import settings
from django.core import signing
from django.core.files.storage import Storage, storages
from django.urls import reverse

from brightrun.errors import ApplicationError

_SALT = "brightrun.storage.signed-url"
logger = logging.getLogger(__name__)

STORAGE_UNAVAILABLE_MESSAGE = "File storage is unavailable right now, so nothing was changed. Try again in a moment."
#: S3 error codes that mean "the service is failing", not "your request is wrong".
_OUTAGE_CODES = frozenset({"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"})


def file_storage() -> Storage:
    return storages["default"]


def is_s3(storage: Storage | None = None) -> bool:
    storage = storage or file_storage()
    return type(storage).__module__.startswith("storages.backends.s3")


def _signing_client(storage: Storage):
    """The boto3 client that signs URLs for clients.

    Normally the storage's own client. With ``AWS_S3_PUBLIC_ENDPOINT_URL`` (for example
    when the nodes reach S3 at an internal address that browsers cannot), a client for the
    public address signs instead: SigV4 signs the host, so it cannot be swapped afterwards.
    """
    public = settings.AWS_S3_PUBLIC_ENDPOINT_URL
    if not public:
        return storage.connection.meta.client
    internal = storage.connection.meta.client
    return boto3.session.Session().client(
        "s3",
        endpoint_url=public,
        region_name=internal.meta.region_name,
        aws_access_key_id=storage.access_key or None,
        aws_secret_access_key=storage.secret_key or None,
        config=internal.meta.config,
    )


def owner_prefix(owner_id: Any) -> str:
    return f"users/{owner_id}/"


def owned_key(owner_id: Any, *parts: str) -> str:
    """Build a storage key under ``owner_id``'s prefix from path ``parts``.

    Rejects empty parts, absolute parts, ``..`` and backslashes, so the result is always
    inside the owner's prefix.
    """
    clean: list[str] = []
    for part in parts:
        if not isinstance(part, str) or not part or part.startswith("/") or "\\" in part or "\x00" in part:
            raise ApplicationError(f"Invalid storage path part {part!r}.", code="invalid_storage_key")
        segments = part.split("/")
        if any(seg in ("", ".", "..") for seg in segments):
            raise ApplicationError(f"Invalid storage path part {part!r}.", code="invalid_storage_key")
        clean.extend(segments)
    if not clean:
        raise ApplicationError("A storage key needs at least one path part.", code="invalid_storage_key")
    return owner_prefix(owner_id) + "/".join(clean)


def assert_owned_key(owner_id: Any, key: str) -> str:
    """Return ``key`` if it is a normalised key under ``owner_id``'s prefix, else raise."""
    prefix = owner_prefix(owner_id)
    if (
        not isinstance(key, str)
        or not key.startswith(prefix)
        or posixpath.normpath(key) != key
        or "\\" in key
        or "\x00" in key
        or key == prefix
    ):
        raise ApplicationError("That file does not belong to you.", code="storage_key_not_owned", status_code=404)
    return key


@dataclass(frozen=True)
class UploadInstructions:
    """How a client uploads one file directly: a multipart POST of ``fields`` + ``file``."""

    method: str
    url: str
    fields: dict[str, str]
    file_field: str
    max_bytes: int
    expires_in: int
    key: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        return data


def _ttl(ttl: int | None) -> int:
    value = settings.SIGNED_URL_TTL_SECONDS if ttl is None else int(ttl)
    if value < 1:
        raise ApplicationError("A signed URL must live at least one second.", code="invalid_ttl")
    return value


def _absolute(path: str) -> str:
    return settings.SITE_URL + path


def download_url(*, owner_id: Any, key: str, ttl: int | None = None, filename: str | None = None) -> str:
    """A short-lived URL to download ``key``; the caller has already checked ownership of the row."""
    assert_owned_key(owner_id, key)
    expires_in = _ttl(ttl)
    storage = file_storage()
    name = filename or posixpath.basename(key)
    if is_s3(storage):
        client = _signing_client(storage)
        return client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": storage.bucket_name,
                "Key": key,
                "ResponseContentDisposition": f"attachment; filename*=UTF-8''{quote(name)}",
            },
            ExpiresIn=expires_in,
        )
    token = signing.dumps({"op": "get", "k": key, "n": name, "exp": int(time.time()) + expires_in}, salt=_SALT)
    return _absolute(reverse("files:download", args=[token]))


def upload_instructions(
    *, owner_id: Any, key: str, max_bytes: int | None = None, ttl: int | None = None, content_type: str | None = None
) -> UploadInstructions:
    """Instructions for uploading exactly ``key`` directly to storage, at most ``max_bytes``.

    ``content_type``: S3 stores the object with exactly this type (a field of the signed policy, so a client cannot
    change it) — never one the browser guessed, such as ``text/html``.
    """
    assert_owned_key(owner_id, key)
    expires_in = _ttl(ttl)
    limit = settings.UPLOAD_MAX_BYTES if max_bytes is None else int(max_bytes)
    if limit < 1:
        raise ApplicationError("The upload size limit must be positive.", code="invalid_upload_limit")
    storage = file_storage()
    if is_s3(storage):
        client = _signing_client(storage)
        fields = {"Content-Type": content_type} if content_type else None
        conditions: list[Any] = [["content-length-range", 1, limit], {"key": key}]
        if content_type:
            conditions.append({"Content-Type": content_type})
        post = client.generate_presigned_post(
            Bucket=storage.bucket_name, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
        )
        return UploadInstructions("POST", post["url"], post["fields"], "file", limit, expires_in, key)
    token = signing.dumps({"op": "put", "k": key, "max": limit, "exp": int(time.time()) + expires_in}, salt=_SALT)
    url = _absolute(reverse("files:upload", args=[token]))
    return UploadInstructions("POST", url, {}, "file", limit, expires_in, key)


def upload_put_url(*, owner_id: Any, key: str, ttl: int | None = None, max_bytes: int | None = None) -> str:
    """A short-lived URL that accepts one ``PUT`` of the raw bytes of ``key`` (machines, not browsers).

    For remote training workers, which upload artifact files without a form. S3: a presigned ``put_object``
    URL (S3 cannot bound a presigned PUT's size, so the caller checks sizes afterwards). Local: an app-signed
    URL served by :func:`brightrun.file_views.signed_put`, which refuses more than ``max_bytes``
    (default ``UPLOAD_MAX_BYTES``).
    """
    assert_owned_key(owner_id, key)
    expires_in = _ttl(ttl)
    storage = file_storage()
    if is_s3(storage):
        client = _signing_client(storage)
        return client.generate_presigned_url(
            "put_object", Params={"Bucket": storage.bucket_name, "Key": key}, ExpiresIn=expires_in
        )
    limit = settings.UPLOAD_MAX_BYTES if max_bytes is None else int(max_bytes)
    if limit < 1:
        raise ApplicationError("The upload size limit must be positive.", code="invalid_upload_limit")
    token = signing.dumps(
        {"op": "put-object", "k": key, "max": limit, "exp": int(time.time()) + expires_in}, salt=_SALT
    )
    return _absolute(reverse("files:put", args=[token]))


def uploaded_object_check(*, owner_id: Any, key: str, max_bytes: int | None = None) -> int:
    """Check a directly uploaded object before the app accepts it; returns its size.

    S3 enforces the presigned POST's ``content-length-range`` itself; this second check
    also covers S3-compatible servers that do not, and deletes an oversized object.
    """
    assert_owned_key(owner_id, key)
    limit = settings.UPLOAD_MAX_BYTES if max_bytes is None else int(max_bytes)
    storage = file_storage()
    if not storage.exists(key):
        raise ApplicationError("No uploaded file was found. Upload it, then confirm.", code="upload_missing")
    size = storage.size(key)
    if size > limit:
        storage.delete(key)
        raise ApplicationError(f"The uploaded file has {size} bytes, over the limit of {limit}.", code="file_too_large")
    if size == 0:
        raise ApplicationError("The uploaded file is empty.", code="empty_file")
    return size


def open_stream(key: str) -> BinaryIO:
    """Open a stored object for sequential reading without copying it anywhere first.

    django-storages' S3 file spools the whole object to a temporary file on first read; the boto3
    body streams it instead, so a 512 MB dataset costs one read buffer of memory. Callers close it.
    """
    storage = file_storage()
    if is_s3(storage):
        client = storage.connection.meta.client
        return client.get_object(Bucket=storage.bucket_name, Key=key)["Body"]
    return storage.open(key, "rb")


class BoundedStream(io.RawIOBase):
    """At most ``limit`` bytes of an open file (all of it when None); closes the file when closed."""

    def __init__(self, handle: BinaryIO, limit: int | None) -> None:
        super().__init__()
        self._handle = handle
        self._left = limit

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self._left is not None:
            if size is None or size < 0 or size > self._left:
                size = self._left
            if size == 0:
                return b""
        data = self._handle.read(size)
        if self._left is not None:
            self._left -= len(data)
        return data

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


#: storage → (process id, boto3 client) for :func:`open_range`.
_range_clients: weakref.WeakKeyDictionary[Storage, tuple[int, Any]] = weakref.WeakKeyDictionary()


def _range_client(storage: Storage):
    """An S3 client of this process's own for ranged reads.

    Parallel validation forks: a child that used the storage's client would share its pooled connections (one
    socket, two processes) with the parent. So each process makes its own client, like the storage's (same
    session, endpoint, region and configuration), on first use.
    """
    pid = os.getpid()
    cached = _range_clients.get(storage)
    if cached is not None and cached[0] == pid:
        return cached[1]
    # The session and arguments django-storages' S3Storage.connection uses, for a client instead of a resource.
    client = storage._create_session().client(
        "s3",
        region_name=storage.region_name,
        use_ssl=storage.use_ssl,
        endpoint_url=storage.endpoint_url,
        config=storage.client_config,
        verify=storage.verify,
    )
    _range_clients[storage] = (pid, client)
    return client


def open_range(key: str, start: int, end: int | None) -> BinaryIO:
    """Open the bytes ``[start, end)`` of a stored object (``end`` None: to its end) for sequential reading.

    For parallel validation (``datasets.validation.validate_ranges``). S3: a ranged ``GetObject`` whose body
    streams, with a client of the calling process's own (safe after a fork); local: the file, seeked, behind a
    reader that stops at ``end``. An empty range, or one that starts past the end of the object, reads as
    empty. Callers close it.
    """
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"bad byte range [{start}, {end})")
    if end is not None and end == start:
        return io.BytesIO(b"")
    storage = file_storage()
    if is_s3(storage):
        client = _range_client(storage)
        params: dict[str, Any] = {"Bucket": storage.bucket_name, "Key": key}
        if start or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            return client.get_object(**params)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":  # starts past the end
                return io.BytesIO(b"")
            raise
    handle = storage.open(key, "rb")
    try:
        handle.seek(start)
    except BaseException:
        handle.close()
        raise
    return BoundedStream(handle, None if end is None else end - start)


def copy_object(*, source_key: str, target_key: str) -> int:
    """Copy one stored object to a new key (server-side on S3); returns the copy's size."""
    storage = file_storage()
    if is_s3(storage):
        client = storage.connection.meta.client
        client.copy({"Bucket": storage.bucket_name, "Key": source_key}, storage.bucket_name, target_key)
    else:
        with storage.open(source_key, "rb") as source:
            saved = storage.save(target_key, source)
        if saved != target_key:
            storage.delete(saved)
            raise ApplicationError("The copy's storage key is already taken.", code="storage_key_taken")
    return storage.size(target_key)


@dataclass(frozen=True)
class SignedGrant:
    op: str
    key: str
    name: str
    max_bytes: int


def verify_signed_token(token: str, *, op: str) -> SignedGrant:
    """Check a local signed URL's signature, operation and expiry; return what it grants."""
    try:
        data = signing.loads(token, salt=_SALT)
    except signing.BadSignature as exc:
        raise ApplicationError("This link is not valid.", code="invalid_signature", status_code=403) from exc
    if not isinstance(data, dict) or data.get("op") != op or not isinstance(data.get("k"), str):
        raise ApplicationError("This link is not valid.", code="invalid_signature", status_code=403)
    if int(data.get("exp", 0)) < time.time():
        raise ApplicationError("This link has expired.", code="link_expired", status_code=403)
    return SignedGrant(op=op, key=data["k"], name=data.get("n", ""), max_bytes=int(data.get("max", 0)))


def is_storage_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means object storage could not be reached or is failing.

    Connection errors and timeouts (botocore ``ConnectionError``, ``HTTPClientError``: refused, reset, closed,
    read timeout) and S3 answers that say the service itself failed (5xx, ``SlowDown``). A missing key, a
    denied request or a bad argument is not an outage.
    """
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or exc.response.get("Error", {}).get("Code") in _OUTAGE_CODES
    return False


@contextmanager
def storage_unavailable_errors(operation: str) -> Iterator[None]:
    """Turn an object-storage outage inside the block into ``ApplicationError`` ``storage_unavailable`` (503).

    For services that a person is waiting on (confirming an upload): they answer "try again" instead of a 500.
    The outage is logged at WARNING with ``operation`` and the error class; other errors pass through unchanged.
    """
    try:
        yield
    except Exception as exc:
        if not is_storage_outage(exc):
            raise
        logger.warning("storage unavailable during %s: %s: %s", operation, type(exc).__name__, exc)
        raise ApplicationError(STORAGE_UNAVAILABLE_MESSAGE, code="storage_unavailable", status_code=503) from exc


def storage_check() -> None:
    """Raise if the configured storage cannot be reached (health check)."""
    storage = file_storage()
    if is_s3(storage):
        storage.connection.meta.client.head_bucket(Bucket=storage.bucket_name)
        return
    location = Path(storage.location)
    location.mkdir(parents=True, exist_ok=True)
    if not os.access(location, os.W_OK):
        raise PermissionError(f"{location} is not writable")


def storage_ensure_bucket() -> bool:
    """Create the S3 bucket if it is missing (S3-compatible servers in dev, CI and compose)."""
    storage = file_storage()
    if not is_s3(storage):
        return False
    client = storage.connection.meta.client
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if storage.bucket_name in existing:
        return False
    client.create_bucket(Bucket=storage.bucket_name)
    return True


def storage_cors_rules() -> list[dict[str, Any]]:
    """CORS rules that let pages served from ``SITE_URL`` upload to and download from the bucket directly."""
    return [
        {
            "AllowedOrigins": [settings.SITE_URL],
            "AllowedMethods": ["GET", "POST", "PUT", "HEAD"],
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 3600,
        }
    ]


def storage_ensure_cors() -> bool:
    """Set the bucket's CORS rules for browser uploads (S3 backend only); returns whether it applied them."""
    storage = file_storage()
    if not is_s3(storage):
        return False
    client = storage.connection.meta.client
    client.put_bucket_cors(Bucket=storage.bucket_name, CORSConfiguration={"CORSRules": storage_cors_rules()})
    return True
