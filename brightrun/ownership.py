"""Row ownership: the one chokepoint that decides which rows a user may see.

Every user-owned model inherits :class:`OwnedModel`; user-facing code reaches rows only
through ``Model.objects.for_user(user)`` or :func:`get_owned_or_404`. Another user's row
is indistinguishable from a missing one (404, never 403). Code that must bypass the
scope (tasks, the admin, maintenance) says so with an ``unscoped_`` name.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    AnyUser = AbstractBaseUser | AnonymousUser

M = TypeVar("M", bound="OwnedModel")


def user_is_active(user: Any) -> bool:
    """True for an authenticated, active user; anonymous and deactivated users see nothing."""
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


class OwnedQuerySet(models.QuerySet):
    """Queryset with the scoping entry point. Domain filters chain after ``for_user``."""

    def for_user(self, user: AnyUser | None) -> OwnedQuerySet:
        """Rows owned by ``user``; nothing for anonymous or inactive users.

        There is deliberately no staff bypass: staff use the admin, which is unscoped by
        design and acts through the same services.
        """
        if not user_is_active(user):
            return self.none()
        return self.filter(owner_id=user.pk)


class OwnedManager(models.Manager.from_queryset(OwnedQuerySet)):  # type: ignore[misc]
    pass


class OwnedModel(models.Model):
    """Abstract base of every user-owned row: UUID primary key, indexed owner, timestamps.

    Child rows (turns, items, metric points, versions) inherit it too, with the owner
    copied from the parent by the service that creates them, so that scoping is always a
    single indexed filter.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OwnedManager()

    class Meta:
        abstract = True
        ordering = ("-created_at",)


def get_owned_or_404(model: type[M], user: AnyUser | None, **lookup: Any) -> M:
    """Return the row of ``model`` matching ``lookup`` that ``user`` owns, else raise 404.

    A malformed id (not a UUID) is also a 404: callers never learn whether a row exists.
    """
    try:
        return model.objects.for_user(user).get(**lookup)
    except (model.DoesNotExist, ValidationError, ValueError, TypeError) as exc:
        raise Http404(f"No {model._meta.verbose_name} matches the given query.") from exc
