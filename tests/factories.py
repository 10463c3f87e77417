"""factory_boy factories shared by every app's tests."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from brightrun.models import CostRecord, Notification

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    owner = factory.SubFactory(UserFactory)
    type = Notification.Type.DATASET_READY
    title = factory.Sequence(lambda n: f"Dataset {n} is ready")
    message = "Validation passed."
    link = "/"


class CostRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CostRecord

    owner = factory.SubFactory(UserFactory)
    kind = CostRecord.Kind.GENERATION
    amount_usd = "1.250000"
    source_type = "conversations.generationbatch"
    source_id = factory.Faker("uuid4", cast_to=None)
    incurred_at = factory.LazyFunction(timezone.now)
