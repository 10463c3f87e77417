from __future__ import annotations

import uuid

import pytest

from tests.training_files.helpers import trainable, vertical

CHAT_LINE = (
    '{"messages": [{"role": "system", "content": "You are a careful financial planner."}, '
    '{"role": "user", "content": "Question %d: should I pay off my card or save first?"}, '
    '{"role": "assistant", "content": "Answer %d: pay the 24%% card first, then build a buffer."}]}\n'
)


def chat_jsonl(examples: int = 12) -> bytes:
    """A valid chat JSONL file of ``examples`` distinct examples."""
    return "".join(CHAT_LINE % (n, n) for n in range(examples)).encode()


@pytest.fixture
def built_version(local_storage, owner_user, django_capture_on_commit_callbacks):
    """A ready training-file version of twelve approved conversations (local storage).

    The conversations have fixed ids (their text contains the id), so the deterministic validation split of
    the imported dataset is the same on every run: it holds examples in both splits at 10%.
    """
    from training_files.services import training_file_build, training_file_create

    vertical()
    conversations = [trainable(owner_user, exchanges=2 + n % 3, id=uuid.UUID(int=0xB817E_0000 + n)) for n in range(12)]
    with django_capture_on_commit_callbacks(execute=False):
        training_file, _ = training_file_create(
            owner=owner_user, name="Import me", conversation_ids=[c.pk for c in conversations]
        )
    version = training_file_build(version=training_file.versions.get())
    assert version.status == "ready", version.error
    training_file.refresh_from_db()
    return version
