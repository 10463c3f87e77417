"""API pagination. Kept apart from ``brightrun.api`` because DRF imports it while loading
its own generic views (importing viewsets here would be circular)."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request


class Pagination(LimitOffsetPagination):
    """LimitOffset: default 50 rows, at most 500 per page (a larger ``limit`` is capped).

    Unlike DRF's default, a malformed ``limit`` or ``offset`` (empty, not plain ASCII digits, ``limit`` < 1) is
    refused with 400 ``invalid_pagination`` instead of silently replaced, so a client's bug shows at once.
    """

    default_limit = 50
    max_limit = 500

    def _integer(self, request: Request, name: str, minimum: int) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        value = int(raw) if raw.isascii() and raw.isdigit() else None
        if value is None or value < minimum:
            raise ValidationError({name: [f"Must be an integer of at least {minimum}."]}, code="invalid_pagination")
        return value

    def get_limit(self, request: Request) -> int:
        value = self._integer(request, self.limit_query_param, 1)
        return self.default_limit if value is None else min(value, self.max_limit)

    def get_offset(self, request: Request) -> int:
        value = self._integer(request, self.offset_query_param, 0)
        return value or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "default": self.default_limit},
            self.offset_query_param: {"minimum": 0, "default": 0},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
            if parameter["name"] == self.limit_query_param:
                parameter["description"] = f"Rows per page, at most {self.max_limit} (a larger value is capped)."
        return parameters
