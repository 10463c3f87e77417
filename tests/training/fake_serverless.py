"""A RunPod-serverless-compatible HTTP server on loopback, for driving the remote training backend in tests.

Standard library only: ``ThreadingHTTPServer`` in a daemon thread. The endpoint URL is
``http://127.0.0.1:<port>/v2/<endpoint id>`` (what ``TRAINING_REMOTE_ENDPOINT`` holds in production), under it:

* ``POST /run`` with ``{"input": {...}}`` → ``{"id", "status": "IN_QUEUE"}``; the job then plays a behaviour;
* ``GET /status/{id}`` → ``{"id", "status", "output"?, "error"?}`` (IN_QUEUE | IN_PROGRESS | COMPLETED |
  FAILED | CANCELLED | TIMED_OUT);
* ``POST /cancel/{id}`` → ``{"id", "status": "CANCELLED"}`` (a finished job keeps its status);
* every request needs ``Authorization: Bearer <api_key>`` (else 401); unknown ids → 404.

Behaviours (FIFO from :meth:`FakeServerless.enqueue`, else ``default_behaviour``):

* ``trainer`` — the real thing: :func:`training.remote_handler.run_job` translates the input into a trainer spec
  and runs ``python -m training.trainer --job <spec>`` in a subprocess, which downloads the dataset from the
  presigned URLs, trains, PUTs the artifact files and posts signed callbacks; the handler's return value becomes
  ``output`` of a COMPLETED job (as RunPod does with a handler's return value).
* ``complete`` — scripted: signed ``started``, ``stage``, ``metric`` callbacks, small files PUT to every upload
  URL, a ``completed`` callback with their sizes and SHA-256; COMPLETED with output ``{"status": "completed",
  "files"}``. ``callbacks=False`` posts nothing (the poller finds it); ``upload=False`` uploads and lists nothing.
* ``completed_with_failed_output`` — no callbacks; COMPLETED whose ``output.status`` is ``"failed"`` (the SPEC §14
  defect: a worker "COMPLETED" that is a failure).
* ``fail`` — a signed ``failed`` callback carrying ``error`` text (only the message: the control plane
  classifies it), then FAILED with that ``error``; ``callbacks=False`` skips the callback (the poller finds it).
* ``hang`` — a ``started`` callback (unless ``callbacks=False``), then IN_PROGRESS until cancelled.
* ``unavailable`` — ``/run`` answers 503 (counted in ``requests``), nothing is queued.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BEHAVIOURS = ("trainer", "complete", "completed_with_failed_output", "fail", "hang", "unavailable")
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")
OOM_TEXT = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.10 GiB total)"


@dataclass
class Behaviour:
    kind: str = "complete"
    error: str = OOM_TEXT
    callbacks: bool = True  # post the scripted callbacks (complete, fail, hang)
    upload: bool = True  # PUT files to the upload URLs (complete); without, the output lists no files

    def __post_init__(self) -> None:
        if self.kind not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {self.kind!r}")


@dataclass
class FakeJob:
    id: str
    input: dict[str, Any]
    behaviour: Behaviour
    status: str = "IN_QUEUE"
    output: Any = None
    error: str | None = None
    callback_responses: list[dict] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def as_status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.output is not None:
            body["output"] = self.output
        if self.error is not None:
            body["error"] = self.error
        return body


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeServerless:
    """The fake endpoint. ``start()`` returns self; ``endpoint`` is the URL to configure."""

    def __init__(
        self,
        *,
        api_key: str = "rp-test-key",
        models_dir: Path | None = None,
        work_dir: Path | None = None,
        trainer_input: dict[str, Any] | None = None,
    ):
        self.api_key = api_key
        self.models_dir = models_dir
        self.work_dir = work_dir
        self.trainer_input = trainer_input or {}  # merged into a ``trainer`` job's input, e.g. {"max_steps": 2}
        self.default_behaviour = Behaviour("complete")
        self.jobs: dict[str, FakeJob] = {}
        self.requests: list[tuple[str, str]] = []
        self.errors: list[BaseException] = []
        self._queue: list[Behaviour] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._played: list[FakeJob] = []  # every job ever queued, even if a test removed it from ``jobs``

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeServerless:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-serverless", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        for job in self._played:
            job.cancelled.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=60)

    @property
    def endpoint(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v2/fake-endpoint"

    def enqueue(self, *behaviours: Behaviour | str) -> None:
        with self._lock:
            self._queue.extend(b if isinstance(b, Behaviour) else Behaviour(b) for b in behaviours)

    def wait(self, job_id: str, *, statuses=TERMINAL, timeout: float = 120.0) -> FakeJob:
        """Block until the fake job reaches one of ``statuses``; raise on timeout or a server error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.errors:
                raise AssertionError(f"fake serverless failed: {self.errors!r}")
            job = self.jobs.get(job_id)
            if job is not None and job.status in statuses:
                return job
            time.sleep(0.05)
        job = self.jobs.get(job_id)
        raise AssertionError(f"job {job_id} still {job and job.status} after {timeout}s")

    # --- jobs ------------------------------------------------------------------------------------
    def _submit(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            behaviour = self._queue.pop(0) if self._queue else self.default_behaviour
        if behaviour.kind == "unavailable":
            return 503, {"error": "no workers available"}
        job = FakeJob(id=f"fake-{uuid.uuid4().hex[:12]}", input=payload.get("input") or {}, behaviour=behaviour)
        self.jobs[job.id] = job
        self._played.append(job)
        thread = threading.Thread(target=self._play, args=(job,), name=f"fake-job-{job.id}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return 200, {"id": job.id, "status": job.status}

    def _play(self, job: FakeJob) -> None:
        try:
            time.sleep(0.05)  # let the control plane store the external id first, as a real queue would
            if job.cancelled.is_set():
                return
            job.status = "IN_PROGRESS"
            getattr(self, f"_play_{job.behaviour.kind}")(job)
        except BaseException as exc:  # surfaced by wait() and the fixture's teardown
            self.errors.append(exc)
            job.status, job.error = "FAILED", repr(exc)

    def _finish(self, job: FakeJob, status: str, *, output: Any = None, error: str | None = None) -> None:
        if job.cancelled.is_set():
            return
        job.output, job.error, job.status = output, error, status

    def _play_trainer(self, job: FakeJob) -> None:
        from training.remote_handler import run_job

        work_dir = self.work_dir or Path.cwd() / "var" / "fake-serverless"
        output = run_job({**job.input, **self.trainer_input}, work_dir=work_dir / job.id, models=self.models_dir)
        self._finish(job, "COMPLETED", output=output)

    def _play_complete(self, job: FakeJob) -> None:
        say = self.callback if job.behaviour.callbacks else (lambda job, fields: {})
        say(job, {"type": "started", "total_steps": 2, "device": "fake-gpu"})
        say(job, {"type": "stage", "text": "Training", "progress": 10})
        say(job, {"type": "metric", "step": 1, "epoch": 0.5, "training_loss": 2.0, "learning_rate": 1e-4})
        say(job, {"type": "metric", "step": 2, "epoch": 1.0, "training_loss": 1.0, "validation_loss": 1.2})
        files = []
        uploads = (job.input.get("artifact_uploads") or {}) if job.behaviour.upload else {}
        for name, url in uploads.items():
            content = f"fake artifact {name} of {job.input.get('job_id')}\n".encode()
            headers = {"Content-Type": "application/octet-stream"}  # as the trainer sends (no form parsing)
            request = urllib.request.Request(url, data=content, method="PUT", headers=headers)
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status in (200, 204), response.status
            files.append({"name": name, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()})
        say(job, {"type": "completed", "files": files, "tokens_per_second": 1234.5, "steps": 2})
        self._finish(job, "COMPLETED", output={"status": "completed", "files": files, "steps": 2})

    def _play_completed_with_failed_output(self, job: FakeJob) -> None:
        error = {"code": "trainer_error", "message": job.behaviour.error, "hint": ""}
        self._finish(job, "COMPLETED", output={"status": "failed", "error": error})

    def _play_fail(self, job: FakeJob) -> None:
        if job.behaviour.callbacks:
            self.callback(job, {"type": "failed", "message": job.behaviour.error})
        self._finish(job, "FAILED", error=job.behaviour.error)

    def _play_hang(self, job: FakeJob) -> None:
        if job.behaviour.callbacks:
            self.callback(job, {"type": "started", "total_steps": 100, "device": "fake-gpu"})
        job.cancelled.wait(timeout=300)

    def callback(self, job: FakeJob, fields: dict[str, Any]) -> dict[str, Any]:
        """POST one signed callback body for ``job``, as the worker's reporter does; returns the JSON answer."""
        body = json.dumps({"job_id": job.input.get("job_id"), **fields}).encode()
        request = urllib.request.Request(
            job.input["callback_url"],
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Brightrun-Signature": sign(job.input["callback_token"], body),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read() or b"{}")
        job.callback_responses.append(answer)
        return answer


class _Handler(BaseHTTPRequestHandler):
    fake: FakeServerless
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        prefix = "/v2/fake-endpoint/"
        path = self.path.split("?", 1)[0]
        self.fake.requests.append((method, path))
        if self.headers.get("Authorization") != f"Bearer {self.fake.api_key}":
            return self._reply(401, {"error": "Unauthorized"})
        if not path.startswith(prefix):
            return self._reply(404, {"error": "not found"})
        action, _, job_id = path[len(prefix) :].partition("/")
        if method == "POST" and action == "run" and not job_id:
            try:
                payload = json.loads(raw or b"{}")
            except ValueError:
                return self._reply(400, {"error": "invalid JSON"})
            if not isinstance(payload, dict) or not isinstance(payload.get("input"), dict):
                return self._reply(400, {"error": "input is required"})
            return self._reply(*self.fake._submit(payload))
        job = self.fake.jobs.get(job_id)
        if job is None:
            return self._reply(404, {"error": "job not found"})
        if method == "GET" and action == "status":
            return self._reply(200, job.as_status())
        if method == "POST" and action == "cancel":
            if job.status not in TERMINAL:
                job.status = "CANCELLED"
                job.cancelled.set()
            return self._reply(200, {"id": job.id, "status": job.status})
        return self._reply(404, {"error": "not found"})

    def do_GET(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._route("GET")

    def do_POST(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._route("POST")
