"""API base classes: scoped viewsets, scoped related fields, pagination, error shape."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404
from rest_framework import exceptions, serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from brightrun.errors import ApplicationError
from brightrun.outages import (
    DATABASE_UNAVAILABLE_CODE,
    DATABASE_UNAVAILABLE_MESSAGE,
    database_outage_record,
    is_database_outage,
)


def _first_code(detail: Any, default: str) -> str:
    """The code of the first error in a DRF error structure."""
    if isinstance(detail, exceptions.ErrorDetail):
        return detail.code or default
    if isinstance(detail, dict):
        for value in detail.values():
            return _first_code(value, default)
    if isinstance(detail, list) and detail:
        return _first_code(detail[0], default)
    return default


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Every API error as ``{"detail": str, "code": str, "errors"?: {...}}``.

    Field errors keep DRF's per-field structure under ``errors``; ``code`` is the stable
    code clients switch on. A database that drops or refuses the connection is a 503
    ``database_unavailable`` (logged at WARNING), not a 500.
    """
    if is_database_outage(exc):
        database_outage_record(exc, context.get("request"))
        return Response(
            {"detail": DATABASE_UNAVAILABLE_MESSAGE, "code": DATABASE_UNAVAILABLE_CODE},
            status=503,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, ApplicationError):
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.errors is not None:
            body["errors"] = exc.errors
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            detail=exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "detail": "Invalid input.",
            "code": _first_code(exc.detail, "invalid"),
            "errors": exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail},
        }
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        response.data = {
            "detail": str(detail) if not isinstance(detail, (dict, list)) else "Request failed.",
            "code": _first_code(detail, exc.default_code),
        }
        if isinstance(detail, (dict, list)):
            response.data["errors"] = detail
    return response


class OwnedModelViewSet(viewsets.GenericViewSet):
    """Base of every viewset over owned rows. The scope lives in ``get_queryset`` and is final.

    Subclasses set ``queryset`` (for the model and schema) and may narrow or annotate the
    already-scoped rows in ``refine_queryset``. Overriding ``get_queryset`` raises at
    class-creation time, so no subclass can widen the scope by accident.
    ``perform_create`` sets the owner to the requesting user.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} must not override get_queryset(); use refine_queryset().")

    def get_queryset(self) -> QuerySet:
        base = self.queryset
        if base is None:
            raise TypeError(f"{type(self).__name__} must set queryset.")
        if getattr(self, "swagger_fake_view", False):
            return base.model.objects.none()
        return self.refine_queryset(base.model.objects.for_user(self.request.user))

    def refine_queryset(self, queryset: QuerySet) -> QuerySet:
        """Narrow, order or annotate the owner's rows. Never widens the scope."""
        return queryset

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        serializer.save(owner=self.request.user)


class KeyRelatedField(serializers.SlugRelatedField):
    """A writable reference to a shared catalogue row by its key.

    Input that cannot be a key (not a string, too long, a NUL byte that PostgreSQL refuses in text) fails
    like a missing key ("does not exist") instead of reaching the database.
    """

    MAX_LENGTH = 200

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or not data or len(data) > self.MAX_LENGTH or "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value=str(data)[: self.MAX_LENGTH])
        return super().to_internal_value(data)


class OwnedRelatedField(serializers.PrimaryKeyRelatedField):
    """A writable foreign key limited to the requesting user's rows.

    Another user's id fails validation exactly like a missing one ("does not exist").
    """

    default_error_messages = {
        "does_not_exist": "Object with id {pk_value} does not exist.",
        "incorrect_type": "Incorrect type. Expected an id, received {data_type}.",
    }

    def __init__(self, model: type | None = None, **kwargs: Any) -> None:
        self.model = model
        if not kwargs.get("read_only"):
            kwargs.setdefault("queryset", model.objects.none() if model else None)
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        return self.model.objects.for_user(user)

    def to_internal_value(self, data: Any) -> Any:
        try:
            return super().to_internal_value(data)
        except DjangoValidationError:
            self.fail("does_not_exist", pk_value=data)
