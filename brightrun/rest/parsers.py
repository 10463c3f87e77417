"""The API's JSON parser: DRF's, plus the published contract for request bodies (see ``brightrun.rest.contract``)."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.parsers import JSONParser

from brightrun.rest.contract import request_body_errors


class ContractJSONParser(JSONParser):
    """Parse JSON, then refuse a body with a value of the wrong JSON type for its operation (400)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
        request = (parser_context or {}).get("request")
        if request is not None:
            errors = request_body_errors(request.method, request.path, data)
            if errors:
                raise ValidationError(
                    {field: [ErrorDetail(message, code) for message, code in found] for field, found in errors.items()}
                )
        return data
