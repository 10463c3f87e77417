"""Signed storage URLs on both backends: expiry, size limits, owner prefixes."""

from __future__ import annotations

import base64
import json
import time
import uuid
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.core.files.base import ContentFile
from freezegun import freeze_time

from brightrun import storage
from brightrun.errors import ApplicationError

OWNER = uuid.UUID("11111111-1111-1111-1111-111111111111")
OTHER = uuid.UUID("22222222-2222-2222-2222-222222222222")


# --- keys -----------------------------------------------------------------------------


def test_owned_key_is_under_owner_prefix():
    assert storage.owned_key(OWNER, "datasets", "abc/data.jsonl") == f"users/{OWNER}/datasets/abc/data.jsonl"


@pytest.mark.parametrize("part", ["..", "a/../b", "/etc/passwd", "a//b", "", "a\\b", "./a", "a\x00b"])
def test_owned_key_rejects_escapes(part):
    with pytest.raises(ApplicationError) as exc:
        storage.owned_key(OWNER, part)
    assert exc.value.code == "invalid_storage_key"


@pytest.mark.parametrize(
    "key",
    [f"users/{OTHER}/x.json", f"users/{OWNER}/../{OTHER}/x.json", f"users/{OWNER}/", "x.json", f"users/{OWNER}x/a"],
)
def test_urls_cannot_be_produced_outside_owner_prefix(any_storage, key):
    with pytest.raises(ApplicationError) as exc:
        storage.download_url(owner_id=OWNER, key=key)
    assert exc.value.code == "storage_key_not_owned"
    with pytest.raises(ApplicationError):
        storage.upload_instructions(owner_id=OWNER, key=key)


# --- local backend ----------------------------------------------------------------------


def _save(key: str, data: bytes = b'{"hello": "world"}\n') -> str:
    return storage.file_storage().save(key, ContentFile(data))


def _path(url: str) -> str:
    return urlparse(url).path


@pytest.mark.django_db
def test_local_download_url_works_then_expires(local_storage, client):
    key = _save(storage.owned_key(OWNER, "exports", "a.jsonl"))
    with freeze_time("2026-01-01 12:00:00"):
        url = storage.download_url(owner_id=OWNER, key=key, ttl=60)
    with freeze_time("2026-01-01 12:00:59"):
        response = client.get(_path(url))
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == b'{"hello": "world"}\n'
        assert "attachment" in response["Content-Disposition"]
    with freeze_time("2026-01-01 12:01:01"):
        response = client.get(_path(url))
        assert response.status_code == 403
        assert response.json()["code"] == "link_expired"


@pytest.mark.django_db
def test_local_signed_url_cannot_be_reused_for_another_key(local_storage, client):
    mine = _save(storage.owned_key(OWNER, "a.txt"))
    _save(storage.owned_key(OTHER, "b.txt"), b"secret")
    token = _path(storage.download_url(owner_id=OWNER, key=mine)).rstrip("/").split("/")[-1]
    payload, _, signature = token.rpartition(":")
    forged = (
        payload.replace(
            payload.split(":")[0],
            base64.urlsafe_b64encode(
                json.dumps({"op": "get", "k": f"users/{OTHER}/b.txt", "exp": int(time.time()) + 60}).encode()
            )
            .decode()
            .rstrip("="),
        )
        + ":"
        + signature
    )
    assert client.get(f"/files/download/{forged}/").status_code == 403
    # A download token does not grant an upload either.
    assert client.post(f"/files/upload/{token}/", {"file": ContentFile(b"x", name="x")}).status_code == 403


@pytest.mark.django_db
def test_local_upload_within_limit_is_stored(local_storage, client):
    key = storage.owned_key(OWNER, "uploads", "data.jsonl")
    instructions = storage.upload_instructions(owner_id=OWNER, key=key, max_bytes=1024)
    assert instructions.method == "POST" and instructions.max_bytes == 1024 and instructions.key == key
    response = client.post(_path(instructions.url), {"file": ContentFile(b"a" * 1024, name="data.jsonl")})
    assert response.status_code == 204
    assert storage.file_storage().open(key).read() == b"a" * 1024


@pytest.mark.django_db
def test_local_upload_beyond_limit_is_refused(local_storage, client):
    key = storage.owned_key(OWNER, "uploads", "big.jsonl")
    instructions = storage.upload_instructions(owner_id=OWNER, key=key, max_bytes=1024)
    response = client.post(_path(instructions.url), {"file": ContentFile(b"a" * 1025, name="big.jsonl")})
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    huge = client.post(_path(instructions.url), {"file": ContentFile(b"a" * 100_000, name="big.jsonl")})
    assert huge.status_code == 413
    assert not storage.file_storage().exists(key)


@pytest.mark.django_db
def test_local_upload_url_expires(local_storage, client):
    key = storage.owned_key(OWNER, "uploads", "late.jsonl")
    with freeze_time("2026-01-01 12:00:00"):
        instructions = storage.upload_instructions(owner_id=OWNER, key=key, ttl=3600)
    with freeze_time("2026-01-01 13:00:01"):
        response = client.post(_path(instructions.url), {"file": ContentFile(b"a", name="late.jsonl")})
    assert response.status_code == 403
    assert response.json()["code"] == "link_expired"


@pytest.mark.django_db
def test_local_tampered_token_is_refused(local_storage, client):
    key = _save(storage.owned_key(OWNER, "a.txt"))
    url = _path(storage.download_url(owner_id=OWNER, key=key))
    assert client.get(url[:-3] + "xx/").status_code == 403


# --- S3 backend (moto's server) -------------------------------------------------------


def test_s3_download_url_is_presigned_and_expires(s3_storage):
    key = _save(storage.owned_key(OWNER, "exports", "a.jsonl"))
    with freeze_time("2026-01-01 12:00:00"):
        url = storage.download_url(owner_id=OWNER, key=key, ttl=120)
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    assert parsed.path == f"/brightrun-test/{key}"  # path-style addressing, exact key
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]  # SigV4
    assert query["X-Amz-Expires"] == ["120"]
    assert query["X-Amz-Date"] == ["20260101T120000Z"]
    assert "X-Amz-Signature" in query
    assert "attachment" in query["response-content-disposition"][0]
    # moto does not check signatures or expiry, so only fetchability is checked live.
    fresh = storage.download_url(owner_id=OWNER, key=key)
    assert requests.get(fresh, timeout=10).content == b'{"hello": "world"}\n'
    assert parse_qs(urlparse(fresh).query)["X-Amz-Expires"] == ["3600"]  # default: 1 hour


def _policy(instructions) -> dict:
    return json.loads(base64.b64decode(instructions.fields["policy"]))


def test_s3_upload_is_a_presigned_post_limited_to_key_and_size(s3_storage):
    key = storage.owned_key(OWNER, "uploads", "data.jsonl")
    with freeze_time("2026-01-01 12:00:00"):
        instructions = storage.upload_instructions(owner_id=OWNER, key=key, max_bytes=1024)
    policy = _policy(instructions)
    assert policy["expiration"] == "2026-01-01T13:00:00Z"
    assert ["content-length-range", 1, 1024] in policy["conditions"]
    assert {"key": key} in policy["conditions"]
    assert instructions.fields["key"] == key
    assert instructions.fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"

    fresh = storage.upload_instructions(owner_id=OWNER, key=key, max_bytes=1024)
    response = requests.post(fresh.url, data=fresh.fields, files={"file": ("data.jsonl", b"a" * 1000)}, timeout=10)
    assert response.status_code in (200, 204), response.text
    assert storage.file_storage().open(key).read() == b"a" * 1000


def test_s3_upload_stores_the_pinned_content_type(s3_storage):
    """The browser cannot choose the stored type (e.g. text/html): it is a field of the signed policy."""
    key = storage.owned_key(OWNER, "uploads", "typed.jsonl")
    instructions = storage.upload_instructions(
        owner_id=OWNER, key=key, max_bytes=1024, content_type="application/jsonl"
    )
    assert instructions.fields["Content-Type"] == "application/jsonl"
    assert {"Content-Type": "application/jsonl"} in _policy(instructions)["conditions"]
    response = requests.post(
        instructions.url, data=instructions.fields, files={"file": ("x.jsonl", b"{}\n", "text/html")}, timeout=10
    )
    assert response.status_code in (200, 204), response.text
    head = storage._signing_client(storage.file_storage()).head_object(Bucket="brightrun-test", Key=key)
    assert head["ContentType"] == "application/jsonl"


def test_s3_upload_beyond_limit_is_refused(s3_storage):
    """S3 refuses a POST outside the policy's content-length-range; moto's server does not
    enforce POST policies, so the app's own check refuses (and deletes) the object too."""
    key = storage.owned_key(OWNER, "uploads", "big.jsonl")
    instructions = storage.upload_instructions(owner_id=OWNER, key=key, max_bytes=1024)
    assert ["content-length-range", 1, 1024] in _policy(instructions)["conditions"]
    requests.post(instructions.url, data=instructions.fields, files={"file": ("big.jsonl", b"a" * 2048)}, timeout=10)
    with pytest.raises(ApplicationError) as exc:
        storage.uploaded_object_check(owner_id=OWNER, key=key, max_bytes=1024)
    assert exc.value.code == "file_too_large"
    assert not storage.file_storage().exists(key)


def test_uploaded_object_check_accepts_within_limit(any_storage):
    key = _save(storage.owned_key(OWNER, "uploads", "ok.jsonl"), b"a" * 10)
    assert storage.uploaded_object_check(owner_id=OWNER, key=key, max_bytes=10) == 10
    with pytest.raises(ApplicationError) as exc:
        storage.uploaded_object_check(owner_id=OWNER, key=storage.owned_key(OWNER, "missing"), max_bytes=10)
    assert exc.value.code == "upload_missing"


def test_s3_public_endpoint_signs_for_clients(s3_storage, settings):
    """Nodes may reach S3 at an internal address; signed URLs must carry the public one."""
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = "https://files.brightrun.example"
    key = storage.owned_key(OWNER, "a.json")
    url = storage.download_url(owner_id=OWNER, key=key)
    assert url.startswith(f"https://files.brightrun.example/brightrun-test/{key}?")
    post = storage.upload_instructions(owner_id=OWNER, key=key)
    assert post.url == "https://files.brightrun.example/brightrun-test"


def _signature_and_rest(url: str) -> tuple[str, str, dict[str, list[str]]]:
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    return query.pop("X-Amz-Signature")[0], parsed.path, query


@pytest.mark.parametrize("operation", ["download", "put"])
def test_s3_signed_url_is_bound_to_its_key(s3_storage, operation):
    """moto does not verify signatures, so the property is shown on the URLs themselves: SigV4 is deterministic
    (same key, time and parameters → same signature) and covers the path, so the signature S3 expects for another
    key — even another file of the same owner, with every other parameter equal — differs from the one issued."""
    mine, theirs, sibling = (
        storage.owned_key(OWNER, "exports", "a.jsonl"),
        storage.owned_key(OTHER, "exports", "a.jsonl"),
        storage.owned_key(OWNER, "exports", "b.jsonl"),
    )

    def sign(key: str) -> str:
        owner = OTHER if key == theirs else OWNER
        with freeze_time("2026-01-01 12:00:00"):
            if operation == "put":
                return storage.upload_put_url(owner_id=owner, key=key, ttl=300)
            return storage.download_url(owner_id=owner, key=key, ttl=300, filename="a.jsonl")

    issued, path, params = _signature_and_rest(sign(mine))
    assert _signature_and_rest(sign(mine)) == (issued, path, params)  # deterministic: a verifier recomputes it
    assert "host" in params["X-Amz-SignedHeaders"][0]
    for other in (theirs, sibling):
        expected, other_path, other_params = _signature_and_rest(sign(other))
        assert other_params == params and other_path != path  # only the key differs …
        assert expected != issued  # … and S3 would expect another signature for it
    with pytest.raises(ApplicationError):  # and no URL is ever produced for a key outside the owner's prefix
        storage.download_url(owner_id=OWNER, key=theirs)
