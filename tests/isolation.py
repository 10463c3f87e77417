"""The isolation contract: every route that names an owned object, and every list.

Each app adds its routes here when it adds them to the URL configuration. The contract
(``tests/test_isolation.py``) then checks for every entry that:

* the owner gets the expected 2xx/3xx;
* another user gets 404 (never 403: they must not learn the object exists);
* an anonymous caller gets 401/403 (API) or a redirect to the login page (UI);

and for every list that the other user's list does not contain the owner's rows.
``test_every_object_route_is_covered`` walks the URL configuration and fails for any route
with a path parameter that is neither here nor in ``EXEMPT`` (with a reason).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.factories import NotificationFactory


@dataclass(frozen=True)
class ObjectRoute:
    name: str  # URL name, namespaced for the UI ("notifications:mark_read") or the router's ("notification-detail")
    kind: str  # "api" | "ui"
    method: str  # "get" | "post" | "patch" | "put" | "delete"
    make: Callable[[Any], Any]  # builds the owner's object
    owner_status: tuple[int, ...] = (200,)
    data: dict[str, Any] | None = None
    url_kwargs: Callable[[Any], dict[str, Any]] = field(default=lambda obj: {"pk": obj.pk})

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.name}"


@dataclass(frozen=True)
class ListRoute:
    name: str
    kind: str
    make: Callable[[Any], Any]

    def __str__(self) -> str:
        return f"list {self.name}"


def _token(owner):
    from brightrun.services import api_token_create

    return api_token_create(owner=owner, name="isolation").token


OBJECT_ROUTES: list[ObjectRoute] = [
    # brightrun: notifications and API tokens
    ObjectRoute("notification-detail", "api", "get", lambda u: NotificationFactory(owner=u)),
    ObjectRoute("notification-mark-read", "api", "post", lambda u: NotificationFactory(owner=u)),
    ObjectRoute("notification-detail", "api", "patch", lambda u: NotificationFactory(owner=u), data={"is_read": True}),
    ObjectRoute("notifications:mark_read", "ui", "post", lambda u: NotificationFactory(owner=u), (302,)),
    ObjectRoute("accounts:token_revoke", "ui", "post", _token, (302,)),
]

LIST_ROUTES: list[ListRoute] = [
    ListRoute("notification-list", "api", lambda u: NotificationFactory(owner=u)),
    ListRoute("notifications:list", "ui", lambda u: NotificationFactory(owner=u)),
    ListRoute("accounts:tokens", "ui", _token),
]

# Routes with a path parameter that do not name an owned object, and why.
EXEMPT: dict[str, str] = {
    "files:download": "the path carries a signed token for one storage key; tested in test_storage.py",
    "files:upload": "the path carries a signed token for one storage key; tested in test_storage.py",
    "admin:*": "the Django admin is staff-only and deliberately unscoped (SPEC §2)",
    "django.views.static.serve": "static files in DEBUG",
}
