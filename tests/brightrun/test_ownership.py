"""The scoping chokepoint: for_user, get_owned_or_404, OwnedModelViewSet, OwnedRelatedField."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from brightrun.api import OwnedModelViewSet, OwnedRelatedField
from brightrun.models import Notification
from brightrun.ownership import get_owned_or_404
from tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db


def test_for_user_returns_only_own_rows(owner_user, other_user):
    mine = NotificationFactory(owner=owner_user)
    NotificationFactory(owner=other_user)
    assert list(Notification.objects.for_user(owner_user)) == [mine]


def test_for_user_gives_nothing_to_anonymous_inactive_or_none(owner_user):
    NotificationFactory(owner=owner_user)
    assert not Notification.objects.for_user(AnonymousUser()).exists()
    assert not Notification.objects.for_user(None).exists()
    owner_user.is_active = False
    owner_user.save()
    assert not Notification.objects.for_user(owner_user).exists()


def test_for_user_has_no_staff_bypass(owner_user, other_user):
    NotificationFactory(owner=owner_user)
    other_user.is_staff = other_user.is_superuser = True
    other_user.save()
    assert not Notification.objects.for_user(other_user).exists()


def test_domain_filters_chain_after_for_user(owner_user):
    NotificationFactory(owner=owner_user, is_read=True)
    unread = NotificationFactory(owner=owner_user)
    assert list(Notification.objects.for_user(owner_user).unread()) == [unread]


def test_get_owned_or_404(owner_user, other_user):
    mine = NotificationFactory(owner=owner_user)
    assert get_owned_or_404(Notification, owner_user, pk=mine.pk) == mine
    for user, pk in [(other_user, mine.pk), (owner_user, uuid.uuid4()), (owner_user, "not-a-uuid"), (None, mine.pk)]:
        with pytest.raises(Http404):
            get_owned_or_404(Notification, user, pk=pk)


def test_viewset_cannot_override_get_queryset():
    with pytest.raises(TypeError, match="must not override get_queryset"):

        class Widening(OwnedModelViewSet):
            queryset = Notification.objects.all()

            def get_queryset(self):
                return Notification.objects.all()


class _Ref(serializers.Serializer):
    notification = OwnedRelatedField(model=Notification)


def _context(user):
    request = APIRequestFactory().post("/")
    request.user = user
    return {"request": request}


def test_owned_related_field_accepts_own_and_rejects_others_as_missing(owner_user, other_user):
    mine = NotificationFactory(owner=owner_user)
    theirs = NotificationFactory(owner=other_user)
    ok = _Ref(data={"notification": str(mine.pk)}, context=_context(owner_user))
    assert ok.is_valid(), ok.errors
    assert ok.validated_data["notification"] == mine
    for value in [str(theirs.pk), str(uuid.uuid4()), "garbage"]:
        bad = _Ref(data={"notification": value}, context=_context(owner_user))
        assert not bad.is_valid()
        assert bad.errors["notification"][0].code in ("does_not_exist", "incorrect_type")
        assert "does not exist" in str(bad.errors["notification"][0])
