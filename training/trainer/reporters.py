"""Where the trainer reports to: the ``Reporter`` protocol and the two process-edge reporters of the CLI.

- ``JsonLinesReporter``: one JSON object per line on a stream (stdout), never cancels.
- ``CallbackReporter``: POSTs each report to the job's callback URL with
  ``X-Brightrun-Signature: sha256=<hex HMAC-SHA256(token, raw body)>``; a response ``{"cancel": true}`` makes
  ``should_cancel()`` true. Progress reports that fail are logged and dropped (training goes on); terminal
  reports (completed, failed, cancelled) are retried.

Both share the body shape ``{"job_id", "type", ...fields}`` (type: stage, started, metric, event, completed,
failed, cancelled). The in-process local runner uses its own database-backed reporter.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import sys
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from typing import Any, Protocol, TextIO, runtime_checkable

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Brightrun-Signature"
CALLBACK_TIMEOUT_SECONDS = 15
TERMINAL_ATTEMPTS = 4


@runtime_checkable
class Reporter(Protocol):
    def stage(self, text: str, progress: float | None = None) -> None: ...

    def started(self, total_steps: int, device: str) -> None: ...

    def metric(
        self,
        step: int,
        epoch: float,
        training_loss: float | None = None,
        validation_loss: float | None = None,
        learning_rate: float | None = None,
        grad_norm: float | None = None,
        tokens_per_second: float | None = None,
    ) -> None: ...

    def event(self, kind: str, message: str = "", data: dict[str, Any] | None = None) -> None: ...

    def should_cancel(self) -> bool: ...


def sign(token: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256(token, body)>``."""
    return "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def verify(token: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of a signature header (used by the control plane and the tests)."""
    return bool(header) and hmac.compare_digest(sign(token, body), header)


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become None (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


class MessageReporter(ABC):
    """Turns reporter calls into ``{"job_id", "type", ...}`` messages; subclasses decide where they go."""

    def __init__(self, job_id: str = ""):
        self.job_id = job_id

    @abstractmethod
    def send(self, message: dict[str, Any], *, terminal: bool = False) -> None:
        """Deliver one message (stdout line, signed callback, …); ``terminal`` marks the last one."""

    def _send(self, message_type: str, /, terminal: bool = False, **fields: Any) -> None:
        self.send(_clean({"job_id": self.job_id, "type": message_type, **fields}), terminal=terminal)

    def stage(self, text: str, progress: float | None = None) -> None:
        self._send("stage", text=text, progress=progress)

    def started(self, total_steps: int, device: str) -> None:
        self._send("started", total_steps=total_steps, device=device)

    def metric(
        self,
        step: int,
        epoch: float,
        training_loss: float | None = None,
        validation_loss: float | None = None,
        learning_rate: float | None = None,
        grad_norm: float | None = None,
        tokens_per_second: float | None = None,
    ) -> None:
        self._send(
            "metric",
            step=step,
            epoch=epoch,
            training_loss=training_loss,
            validation_loss=validation_loss,
            learning_rate=learning_rate,
            grad_norm=grad_norm,
            tokens_per_second=tokens_per_second,
        )

    def event(self, kind: str, message: str = "", data: dict[str, Any] | None = None) -> None:
        self._send("event", kind=kind, message=message, data=data or {})

    def should_cancel(self) -> bool:
        return False

    def completed(self, result: dict[str, Any]) -> None:
        self._send("completed", terminal=True, **result)

    def failed(self, error: dict[str, Any]) -> None:
        self._send("failed", terminal=True, **error)

    def cancelled(self, result: dict[str, Any]) -> None:
        self._send("cancelled", terminal=True, **result)


class JsonLinesReporter(MessageReporter):
    """Writes each message as one JSON line to ``stream`` (stdout by default) and flushes."""

    def __init__(self, job_id: str = "", stream: TextIO | None = None):
        super().__init__(job_id)
        self.stream = stream or sys.stdout

    def send(self, message: dict[str, Any], *, terminal: bool = False) -> None:
        self.stream.write(json.dumps(message, sort_keys=True) + "\n")
        self.stream.flush()


class CallbackReporter(MessageReporter):
    """POSTs signed messages to ``url``; learns about a cancel from the responses."""

    def __init__(self, url: str, token: str, job_id: str = "", *, timeout: float = CALLBACK_TIMEOUT_SECONDS):
        super().__init__(job_id)
        self.url = url
        self.token = token
        self.timeout = timeout
        self.cancel_requested = False

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - the URL comes from the job spec (http or https)
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(self.token, body)},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            payload = response.read()
        try:
            answer = json.loads(payload) if payload else {}
        except ValueError:
            answer = {}
        if isinstance(answer, dict) and answer.get("cancel") is True:
            self.cancel_requested = True

    def send(self, message: dict[str, Any], *, terminal: bool = False) -> None:
        body = json.dumps(message, sort_keys=True, separators=(",", ":")).encode()
        attempts = TERMINAL_ATTEMPTS if terminal else 1
        for attempt in range(1, attempts + 1):
            try:
                self._post(body)
                return
            except (urllib.error.URLError, OSError, ValueError) as exc:
                logger.warning("callback %s failed (attempt %s/%s): %s", message["type"], attempt, attempts, exc)
                if attempt < attempts:
                    time.sleep(min(2**attempt, 10))
        if terminal:
            raise OSError(f"Could not deliver the {message['type']} callback to {self.url}")

    def should_cancel(self) -> bool:
        return self.cancel_requested


class NullReporter(MessageReporter):
    """Reports nowhere (benchmarks, scripts)."""

    def send(self, message: dict[str, Any], *, terminal: bool = False) -> None:
        return None
