"""drf-spectacular post-processing: every operation documents the errors it can answer with.

All API errors share one body, ``{"detail": str, "code": str, "errors"?: {field: [str]}}`` (see
``brightrun.api.exception_handler``). Views declare their success responses; this hook adds the error statuses
every operation can produce, so the document is true for clients and for the schema-conformance fuzzing
(tests/test_api_fuzz.py):

* 400 — a malformed body, query parameter or filter (stable ``code``);
* 401 / 403 — no or a revoked token (401), or not allowed (403; e.g. ``not_a_reviewer``);
* 404 — an id the caller cannot see (someone else's object is a 404 as well, never a 403), or no such route;
* 405 — a method the path does not allow;
* 413 / 415 — a body over the size limit, or not JSON;
* 429 — too many requests (login and generation rate limits);
* 503 — the database or storage is unavailable for a moment (``database_unavailable``/``storage_unavailable``).

An operation that declares one of these itself keeps its own description.
"""

from __future__ import annotations

from typing import Any

ERROR_COMPONENT = "Error"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every API error.",
    "properties": {
        "detail": {"type": "string", "description": "A message for people."},
        "code": {"type": "string", "description": "A stable code for programs to switch on."},
        "errors": {
            "type": "object",
            "description": "Per-field messages, for invalid input.",
            "additionalProperties": {},
        },
    },
    "required": ["detail", "code"],
}

_COMMON = {
    "400": "Invalid input (body, query parameter or filter).",
    "401": "Not authenticated, or the token is revoked.",
    "403": "Not allowed.",
    "405": "Method not allowed on this path.",
    "429": "Too many requests; retry after the Retry-After header.",
    "503": "The database or storage is unavailable for a moment; retry.",
}
_WITH_BODY = {
    "413": "The request body is too large.",
    "415": "The body is not JSON.",
}
_NOT_FOUND = {"404": "Nothing the caller can see has this id, or an object the request names does not exist."}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = dict(_COMMON)
            if method in ("post", "put", "patch"):
                statuses.update(_WITH_BODY)
            statuses.update(_NOT_FOUND)
            responses = operation["responses"]
            for status, description in statuses.items():
                responses.setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": reference}}}
                )
    return result
