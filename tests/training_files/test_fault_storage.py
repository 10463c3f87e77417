"""S3 becomes unavailable during a training-file build and a dataset confirm.

Real parts only: moto's S3 server (our own, not the session's), the app's storage (django-storages + boto3)
talking to it through a loopback TCP proxy that the test switches off (every connection is reset) and on again.
moto keeps its state throughout, so what was stored before the outage can be checked afterwards, and the test
inspects the bucket directly (bypassing the proxy) to see exactly which objects exist. The moment of the outage
is chosen with botocore's own event hooks on the storage's client (after a PutObject, after a failed call).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from brightrun.storage import file_storage, storage_ensure_bucket
from datasets.models import Dataset
from datasets.services import dataset_create
from tests.processes import free_port
from tests.training_files.helpers import trainable
from training_files.models import TrainingFileVersion
from training_files.services import (
    training_file_build,
    training_file_build_retry,
    training_file_create,
    training_file_download,
    training_file_members_update,
)

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "brightrun-fault"


class SwitchableProxy:
    """A TCP proxy on loopback to ``target_port``. ``off()`` resets every open connection and every new one
    (clients see "connection reset" at once); ``on()`` forwards again. The upstream keeps all its state."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, name="s3-proxy", daemon=True).start()

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                self._reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                self._reset(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open.difference_update((source, sink))

    def off(self) -> None:
        self.up = False
        with self._lock:
            live, self._open = list(self._open), set()
        for sock in live:
            self._reset(sock)

    def on(self) -> None:
        self.up = True

    def close(self) -> None:
        self._closed = True
        self.off()
        self.listener.close()



@pytest.fixture(scope="module")
def moto_endpoint():
    """Our own moto S3 server (the session's one is shared by other tests and must stay up)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield port
    server.stop()


@pytest.fixture
def proxy(moto_endpoint):
    proxy = SwitchableProxy(moto_endpoint)
    yield proxy
    proxy.close()


@pytest.fixture
def bucket(moto_endpoint):
    """A boto3 client straight to moto (no proxy): the test's view of what is really stored."""
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{moto_endpoint}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield client
    listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    for entry in listed:
        client.delete_object(Bucket=BUCKET, Key=entry["Key"])


@pytest.fixture
def proxied_storage(proxy, bucket, settings):
    """The app's default storage on S3 through the proxy, with the client settings the app uses in production
    (``AWS_S3_CONNECT_TIMEOUT``-style timeouts and a bounded number of attempts), kept short here."""
    settings.STORAGE_BACKEND = "s3"
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = None
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": f"http://127.0.0.1:{proxy.port}",
                "region_name": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "client_config": Config(
                    signature_version="s3v4",
                    s3={"addressing_style": "path"},
                    connect_timeout=2,
                    read_timeout=5,
                    retries={"mode": "standard", "max_attempts": 2},
                ),
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": False,
            },
        },
    }
    storage_ensure_bucket()
    return file_storage()


def _client_events(storage):
    return storage.connection.meta.client.meta.events


def _stored(bucket, prefix: str) -> dict[str, str]:
    """key → sha256 of every object under ``prefix``, read straight from moto."""
    found = {}
    for entry in bucket.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []):
        body = bucket.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()
        found[entry["Key"]] = hashlib.sha256(body).hexdigest()
    return found


def _prefix(version: TrainingFileVersion) -> str:
    return f"users/{version.owner_id}/training-files/{version.training_file_id}/v{version.number}/"


def _file_with_two_versions(owner, django_capture_on_commit_callbacks):
    """A file whose version 1 is built (ready, current) and whose version 2 (one more member) is building."""
    conversations = [trainable(owner, exchanges=n) for n in (2, 3, 4)]
    with django_capture_on_commit_callbacks(execute=False):
        training_file, _ = training_file_create(
            owner=owner, name="Outage file", conversation_ids=[c.pk for c in conversations[:2]]
        )
    v1 = training_file_build(version=training_file.versions.get())
    assert v1.status == "ready", v1.error
    with django_capture_on_commit_callbacks(execute=False):
        v2, _ = training_file_members_update(training_file=training_file, actor=owner, add=[conversations[2].pk])
    assert v2.number == 2 and v2.status == "building"
    return training_file, v1, v2


def _assert_version_intact(bucket, version: TrainingFileVersion) -> None:
    expected = {entry["key"]: entry["sha256"] for entry in version.files.values()}
    assert len(expected) == 3
    assert _stored(bucket, _prefix(version)) == expected


def _download_sha256(training_file, number: int) -> tuple[str, str]:
    """Fetch the signed download URL the app hands out (through the proxy) and hash what comes back."""
    link = training_file_download(training_file=training_file, fmt="chat-jsonl", version_number=number)
    with urllib.request.urlopen(link["url"], timeout=10) as response:
        return hashlib.sha256(response.read()).hexdigest(), link["sha256"]


def test_outage_during_a_build_keeps_the_previous_version_and_the_retry_completes(
    active_vertical, owner_user, proxied_storage, proxy, bucket, django_capture_on_commit_callbacks
):
    training_file, v1, v2 = _file_with_two_versions(owner_user, django_capture_on_commit_callbacks)
    _assert_version_intact(bucket, v1)

    puts = []

    def storage_goes_down_after_the_first_write(**kwargs):
        puts.append(kwargs["model"].name)
        if len(puts) == 1:
            proxy.off()

    _client_events(proxied_storage).register("after-call.s3.PutObject", storage_goes_down_after_the_first_write)
    try:
        v2 = training_file_build(version=v2)
    finally:
        _client_events(proxied_storage).unregister("after-call.s3.PutObject", storage_goes_down_after_the_first_write)

    assert puts == ["PutObject"]  # one format was written, then S3 went away mid-build
    assert v2.status == "failed" and v2.files == {}
    assert "Connection" in v2.error or "Endpoint" in v2.error, v2.error
    training_file.refresh_from_db()
    assert training_file.current_version_id == v1.pk
    v1.refresh_from_db()
    assert v1.status == "ready"
    _assert_version_intact(bucket, v1)  # checked on the server itself while the app cannot reach it
    # The build could not delete the format it wrote before the outage (S3 was down): it stays, unreferenced by
    # the failed version (no files, not downloadable), until the retry writes the same key again.
    assert len(_stored(bucket, _prefix(v2))) == 1
    with pytest.raises(Exception, match="not ready"):
        training_file_download(training_file=training_file, fmt="chat-jsonl", version_number=2)

    proxy.on()
    downloaded, recorded = _download_sha256(training_file, 1)
    assert downloaded == recorded == v1.files["chat-jsonl"]["sha256"]

    v2 = training_file_build_retry(version=v2, actor=owner_user, enqueue=False)
    v2 = training_file_build(version=v2)
    assert v2.status == "ready", v2.error
    training_file.refresh_from_db()
    assert training_file.current_version_id == v2.pk
    # The object written before the outage was replaced by the retry; nothing else of version 2 is stored.
    _assert_version_intact(bucket, v2)
    _assert_version_intact(bucket, v1)
    downloaded, recorded = _download_sha256(training_file, 2)
    assert downloaded == recorded


def test_a_short_outage_during_a_build_leaves_nothing_of_the_failed_version(
    active_vertical, owner_user, proxied_storage, proxy, bucket, django_capture_on_commit_callbacks
):
    """S3 fails one write, then answers again by the time the build cleans up: no partial version 2 remains."""
    training_file, v1, v2 = _file_with_two_versions(owner_user, django_capture_on_commit_callbacks)
    events = _client_events(proxied_storage)
    failed = []

    def down_after_first_put(**kwargs):
        proxy.off()

    def back_after_the_failure(**kwargs):
        failed.append(kwargs["event_name"])
        proxy.on()

    events.register_first("after-call.s3.PutObject", down_after_first_put, unique_id="fault-down")
    events.register("after-call-error.s3", back_after_the_failure, unique_id="fault-up")
    try:
        v2 = training_file_build(version=v2)
    finally:
        events.unregister("after-call.s3.PutObject", unique_id="fault-down")
        events.unregister("after-call-error.s3", unique_id="fault-up")

    assert failed, "no S3 call failed: the outage did not happen"
    assert v2.status == "failed" and v2.files == {}
    assert _stored(bucket, _prefix(v2)) == {}  # the format written before the failure was deleted
    training_file.refresh_from_db()
    assert training_file.current_version_id == v1.pk
    _assert_version_intact(bucket, v1)


def test_dataset_confirm_while_storage_is_down_is_a_clean_503_and_a_later_confirm_works(
    owner_user, proxied_storage, proxy, bucket, api_client_for, django_capture_on_commit_callbacks, caplog
):
    data = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
    pending = dataset_create(owner=owner_user, name="During an outage", file_name="train.jsonl", file_size=len(data))
    dataset = pending.dataset
    bucket.put_object(Bucket=BUCKET, Key=dataset.storage_key, Body=data)  # the browser's direct upload
    client = api_client_for(owner_user)
    url = f"/api/v1/datasets/{dataset.pk}/confirm/"

    fields = ("status", "size", "confirmed_at", "upload_expires_at", "validation_enqueued_at", "updated_at")
    before = Dataset.objects.values(*fields).get(pk=dataset.pk)

    proxy.off()
    caplog.set_level(logging.WARNING, logger="brightrun.storage")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url, format="json")
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["code"] == "storage_unavailable" and "storage is unavailable" in body["detail"]
    assert callbacks == []  # no validation enqueued
    assert any("storage unavailable during dataset confirm" in r.getMessage() for r in caplog.records)
    assert Dataset.objects.values(*fields).get(pk=dataset.pk) == before  # the dataset is unchanged
    assert before["status"] == Dataset.Status.UPLOADING

    proxy.on()
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url, format="json")
    assert response.status_code == 200, response.content
    assert len(callbacks) == 1
    dataset.refresh_from_db()
    assert dataset.status == Dataset.Status.VALIDATING and dataset.size == len(data)


def test_s3_client_settings_bound_an_outage():
    """``STORAGE_BACKEND=s3`` builds the storage with the timeouts and attempts from the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env.update(
        DJANGO_SETTINGS_MODULE="brightrun.settings_test",
        STORAGE_BACKEND="s3",
        AWS_S3_ENDPOINT_URL="http://127.0.0.1:9",
        AWS_S3_ADDRESSING_STYLE="path",
        AWS_S3_CONNECT_TIMEOUT="1.5",
        AWS_S3_READ_TIMEOUT="7",
        AWS_S3_MAX_ATTEMPTS="4",
    )
    code = (
        "import django; django.setup(); from django.core.files.storage import default_storage as s; "
        "c = s.client_config; print(c.connect_timeout, c.read_timeout, c.retries['max_attempts'], "
        "c.retries['mode'], c.s3['addressing_style'], c.signature_version)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1.5", "7.0", "4", "standard", "path", "s3v4"]
