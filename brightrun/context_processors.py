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
    ("conversations:quality", "Quality"),
    ("training_files:list", "Training files"),
    ("datasets:list", "Datasets"),
    ("training:job_list", "Training"),
    ("training:model_list", "Models"),
    ("training:costs", "Costs"),
    ("notifications:list", "Notifications"),
    ("accounts:tokens", "API tokens"),
]

# Links for one permission only, shown after the entry they follow.
PERMISSION_NAVIGATION: list[tuple[str, str, str, str]] = [
    # (permission, follows url name, url name, label)
    ("conversations.review_conversation", "conversations:conversation_list", "conversations:review_queue", "Review"),
]


def _links(user) -> list[tuple[str, str]]:
    links = list(NAVIGATION)
    for permission, follows, url_name, label in PERMISSION_NAVIGATION:
        if user.has_perm(permission):
            at = next(i for i, (name, _) in enumerate(links) if name == follows) + 1
            links.insert(at, (url_name, label))
    return links


def navigation(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if not user_is_active(user):
        return {"navigation": []}
    return {
        # Both lazy: fragments (polled progress bars) render neither, so they cost no query.
        "navigation": SimpleLazyObject(lambda: _links(user)),
        "unread_notifications": SimpleLazyObject(lambda: Notification.objects.for_user(user).unread().count()),
    }
