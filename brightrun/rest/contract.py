"""The published OpenAPI document as the contract for request bodies.

The API's document is generated from the serializers (drf-spectacular). DRF itself coerces JSON types leniently —
``0`` for a string field becomes ``"0"``, ``"5"`` for an integer becomes ``5`` — so a client's type bug would go
unnoticed and the document would not be the whole truth. ``request_body_errors`` checks the JSON types of a parsed
body against the request schema of its operation, at every depth, and the project's JSON parser
(:mod:`brightrun.rest.parsers`) refuses a body with a value of the wrong type with 400 and per-field errors, coded as
DRF codes the same mistake (``not_a_list``, else ``invalid``). Everything else — required fields, choices, bounds,
lengths, formats — stays with the serializers, whose messages and stable codes (``required``, ``invalid_choice``,
``min_value`` …) clients already rely on.

The document is built once per process, on the first JSON body it sees (about a second), and indexed by method and
path template.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError


@dataclass(frozen=True)
class _Operation:
    pattern: re.Pattern[str]
    validator: Draft202012Validator | None


_lock = threading.Lock()
_index: dict[str, list[_Operation]] | None = None


def _path_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$")


def _build() -> dict[str, list[_Operation]]:
    from drf_spectacular.generators import SchemaGenerator

    document = SchemaGenerator().get_schema(request=None, public=True)
    components = document.get("components", {})
    index: dict[str, list[_Operation]] = {}
    for template, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            validator = None
            if body is not None:
                validator = Draft202012Validator(_nullable({**body, "components": components}))
            index.setdefault(method.upper(), []).append(_Operation(_path_pattern(template), validator))
    return index


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` in JSON Schema terms (``null`` added to the allowed types)."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


def _operations(method: str) -> list[_Operation]:
    global _index
    if _index is None:
        with _lock:
            if _index is None:
                _index = _build()
    return _index.get(method.upper(), [])


def _location(error: SchemaError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "non_field_errors"


def _message(error: SchemaError) -> str:
    expected = error.validator_value
    expected = " or ".join(expected) if isinstance(expected, list) else expected
    return f"Must be of JSON type {expected}."


def _code(error: SchemaError) -> str:
    """DRF's own code for the same mistake: ``not_a_list`` where a list was expected, else ``invalid``."""
    expected = error.validator_value
    return "not_a_list" if expected == "array" or (isinstance(expected, list) and "array" in expected) else "invalid"


def request_body_errors(method: str, path: str, body: Any) -> dict[str, list[tuple[str, str]]]:
    """Values of ``body`` with the wrong JSON type for ``method path``: ``{field: [(message, code)]}`` (empty: none).

    A path the document does not describe, or an operation without a JSON request body, has nothing to check.
    """
    for operation in _operations(method):
        if operation.pattern.match(path):
            if operation.validator is None:
                return {}
            errors: dict[str, list[tuple[str, str]]] = {}
            wrong_types = [error for error in operation.validator.iter_errors(body) if error.validator == "type"]
            for error in sorted(wrong_types, key=lambda e: [str(part) for part in e.absolute_path])[:50]:
                errors.setdefault(_location(error), []).append((_message(error), _code(error)))
            return errors
    return {}
