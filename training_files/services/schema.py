"""The project's JSON Schema of the full v4 training file (``training_files/schemas/``) and its validator."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "brightrun-lora-v4-full.schema.json"


@cache
def full_v4_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator() -> Draft202012Validator:
    schema = full_v4_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def full_v4_validate(doc: Any) -> list[str]:
    """Every way ``doc`` breaks the full v4 schema, as ``"path: message"``; empty when valid."""
    out = []
    for error in sorted(_validator().iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        out.append(f"{path or '(root)'}: {error.message}")
    return out
