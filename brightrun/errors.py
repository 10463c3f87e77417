"""The error raised by services for broken business rules, with a stable code."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A rule was broken. ``code`` is stable (clients switch on it); ``message`` is for people.

    The API maps it to HTTP 400 (or ``status_code``) as ``{"detail", "code", "errors"?}``;
    the web UI shows ``message`` as an error message.
    """

    status_code = 400

    def __init__(self, message: str, *, code: str, errors: Any = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.errors = errors
        if status_code is not None:
            self.status_code = status_code
