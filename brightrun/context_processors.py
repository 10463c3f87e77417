"""Template context shared by every page: navigation and the unread-notification count."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from brightrun.models import Notification
from brightrun.ownership import user_is_active

# (url name, label). Later apps add their areas here when their pages exist.
NAVIGATION: list[tuple[str, str]] = [
    ("dashboard", "Dashboard"),
    ("conversations:scaffolding", "Scaffolding"),
    ("conversations:generate", "Generate"),
    ("conversations:batch_list", "Batches"),
    ("conversations:conversation_list", "Conversations"),
    ("notifications:list", "Notifications"),
    ("accounts:tokens", "API tokens"),
]


def navigation(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if not user_is_active(user):
        return {"navigation": []}
    return {
        "navigation": NAVIGATION,
        # Counted at most once per page, and only if the page shows it.
        "unread_notifications": SimpleLazyObject(lambda: Notification.objects.for_user(user).unread().count()),
    }
