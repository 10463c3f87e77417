"""Train/validation split files of a ready dataset (``datasets.services.dataset_split_files``)."""

from __future__ import annotations

import json

import pytest
from django.core.files.base import ContentFile

from brightrun.errors import ApplicationError
from brightrun.storage import file_storage
from datasets.services import dataset_revalidate, dataset_split_files, dataset_validate
from tests.datasets.conftest import chat_jsonl
from tests.factories import DatasetFactory

pytestmark = pytest.mark.django_db


def _ready(owner, data: bytes):
    dataset = DatasetFactory(owner=owner, status="validating", format="", size=0)
    file_storage().save(dataset.storage_key, ContentFile(data))
    return dataset_validate(dataset_id=dataset.pk)


def _lines(key: str) -> list[dict]:
    with file_storage().open(key, "rb") as handle:
        return [json.loads(line) for line in handle.read().splitlines()]


def test_split_files_match_the_validation_statistics(any_storage, owner_user):
    dataset = _ready(owner_user, chat_jsonl(60))
    splits = dataset_split_files(dataset=dataset)
    prefix = f"users/{owner_user.pk}/datasets/{dataset.pk}/splits/"
    assert splits["train"]["key"] == prefix + "train.jsonl"
    assert splits["validation"]["key"] == prefix + "validation.jsonl"
    stats = dataset.statistics["split"]
    assert splits["train"]["examples"] == stats["train"]["examples"]
    assert splits["validation"]["examples"] == stats["validation"]["examples"]
    assert splits["train"]["examples"] + splits["validation"]["examples"] == 60
    assert splits["validation"]["examples"] > 0
    train, validation = _lines(splits["train"]["key"]), _lines(splits["validation"]["key"])
    assert len(train) == splits["train"]["examples"] and len(validation) == splits["validation"]["examples"]
    assert set(train[0]) == {"messages"} and train[0]["messages"][-1]["role"] == "assistant"
    contents = {m["content"] for line in train for m in line["messages"]}
    assert not contents & {m["content"] for line in validation for m in line["messages"] if m["role"] != "system"}


def test_split_files_are_written_once_and_again_after_revalidation(local_storage, owner_user):
    dataset = _ready(owner_user, chat_jsonl(30))
    first = dataset_split_files(dataset=dataset)
    path = local_storage / first["train"]["key"]
    mtime = path.stat().st_mtime_ns
    assert dataset_split_files(dataset=dataset) == first
    assert path.stat().st_mtime_ns == mtime  # not rewritten

    file_storage().delete(dataset.storage_key)
    file_storage().save(dataset.storage_key, ContentFile(chat_jsonl(20)))
    dataset_revalidate(dataset=dataset, actor=owner_user)
    dataset = dataset_validate(dataset_id=dataset.pk)
    second = dataset_split_files(dataset=dataset)
    assert second["train"]["examples"] + second["validation"]["examples"] == 20


def test_split_files_need_a_ready_dataset(local_storage, owner_user):
    with pytest.raises(ApplicationError) as caught:
        dataset_split_files(dataset=DatasetFactory(owner=owner_user, status="invalid"))
    assert caught.value.code == "dataset_not_ready"
