"""The API's query filters: strict, so a malformed filter is a 400 and never silently ignored.

``FilterSet`` (use it instead of django-filter's) changes two defaults:

* a boolean filter accepts ``true``/``false``/``1``/``0`` (any case) and refuses anything else with 400
  ``invalid_choice`` — django-filter's widget turns an unknown word into "no filter" and returns every row;
* a foreign key filters by the related row's primary key (``?dataset=<uuid>``, ``?base_model=<key>``) instead of a
  model choice: an id the caller cannot see — someone else's, or one that never existed — simply matches nothing,
  the same answer either way, and a malformed UUID is a 400 ``invalid``.

``FilterBackend`` makes every ``filterset_fields`` declaration use it too, and refuses empty filter parameters.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from django_filters import rest_framework as filters
from rest_framework.exceptions import ValidationError


class StrictBooleanField(forms.NullBooleanField):
    widget = forms.TextInput
    _VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            return value
        try:
            return self._VALUES[str(value).lower()]
        except KeyError:
            raise forms.ValidationError("Must be true or false.", code="invalid_choice") from None

    def validate(self, value: Any) -> None:
        """Nothing more to check: ``to_python`` refused what is not a boolean."""


class StrictBooleanFilter(filters.BooleanFilter):
    field_class = StrictBooleanField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput)
        super().__init__(*args, **kwargs)


class IntegerFilter(filters.NumberFilter):
    field_class = forms.IntegerField


def _related_key_filter(field: models.Field) -> dict[str, Any]:
    target = field.target_field
    if isinstance(target, models.UUIDField):
        return {"filter_class": filters.UUIDFilter}
    if isinstance(target, models.IntegerField | models.AutoField):
        return {"filter_class": IntegerFilter}
    return {"filter_class": filters.CharFilter}


class FilterSet(filters.FilterSet):
    FILTER_DEFAULTS = {
        **filters.FilterSet.FILTER_DEFAULTS,
        models.BooleanField: {"filter_class": StrictBooleanFilter},
    }

    @classmethod
    def filter_for_lookup(cls, field: models.Field, lookup_type: str) -> tuple[type, dict[str, Any]]:
        if lookup_type == "exact" and isinstance(field, models.ForeignKey | models.OneToOneField):
            spec = _related_key_filter(field)
            return spec["filter_class"], {}
        return super().filter_for_lookup(field, lookup_type)


class FilterBackend(filters.DjangoFilterBackend):
    """Filters with the strict ``FilterSet``; an empty filter parameter (``?dataset=``) is 400 ``empty_parameter``:
    leave a parameter out to not filter (the web UI's forms do not use the API)."""

    filterset_base = FilterSet

    def get_filterset(self, request: Any, queryset: Any, view: Any) -> Any:
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            empty = [name for name in filterset.filters if request.query_params.get(name, None) == ""]
            if empty:
                raise ValidationError(
                    {name: ["May not be empty; leave the parameter out to not filter."] for name in empty},
                    code="empty_parameter",
                )
        return filterset
