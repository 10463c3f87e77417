from __future__ import annotations

import pytest

from tests.training_files.helpers import trainable, vertical


@pytest.fixture
def active_vertical(db):
    return vertical()


@pytest.fixture
def make_trainable(active_vertical):
    return trainable


@pytest.fixture
def built(local_storage, owner_user, make_trainable, django_capture_on_commit_callbacks):
    """A file of three conversations with version 1 built (local storage)."""
    from training_files.services import training_file_build, training_file_create

    conversations = [make_trainable(owner_user, exchanges=n) for n in (2, 3, 4)]
    with django_capture_on_commit_callbacks(execute=False):
        training_file, _ = training_file_create(
            owner=owner_user, name="First file", conversation_ids=[c.pk for c in conversations]
        )
    version = training_file_build(version=training_file.versions.get())
    assert version.status == "ready", version.error
    training_file.refresh_from_db()
    return training_file, conversations
