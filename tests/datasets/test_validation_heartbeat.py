"""A running validation's heartbeat keeps the sweeper away; a run that lost its claim stops beating.

The worker-kill end to end lives in tests/integration/test_worker_faults.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from datasets.models import Dataset, DatasetValidation
from datasets.services import datasets_sweep
from datasets.services.runs import _beat, _claim

pytestmark = pytest.mark.django_db


def _validating(owner) -> Dataset:
    return Dataset.objects.create(
        owner=owner,
        name="Long one",
        file_name="l.jsonl",
        storage_key=f"users/{owner.pk}/datasets/long/l.jsonl",
        status="validating",
        validation_enqueued_at=timezone.now() - timedelta(hours=1),
    )


def test_a_beating_validation_is_not_swept_and_a_silent_one_is(owner_user, django_capture_on_commit_callbacks):
    dataset = _claim(_validating(owner_user).pk)
    assert dataset is not None and dataset.validation_attempts == 1
    DatasetValidation.objects.create(owner=owner_user, dataset=dataset)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Dataset.objects.filter(pk=dataset.pk).update(validation_started_at=an_hour_ago, updated_at=an_hour_ago)
    dataset.refresh_from_db()

    beat = _beat(dataset)
    assert beat() is True  # the run is alive: a long validation, not a dead one
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert datasets_sweep().requeued == 0
    assert not callbacks

    Dataset.objects.filter(pk=dataset.pk).update(updated_at=an_hour_ago)  # silent since: the worker died
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert datasets_sweep().requeued == 1
    assert len(callbacks) == 1
    assert DatasetValidation.objects.get(dataset=dataset).status == "failed"  # the dead run, as history
    assert beat() is False  # released: the old run may no longer claim the dataset's time
