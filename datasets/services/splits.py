"""Train and validation split files of a ready dataset, for trainers (SPEC §9.2, §10.4).

Callers: the training app's local runner and remote submitter (a worker acting for the owner; unscoped by
design). The split is the validator's own (``datasets.validation.iter_examples``: by content digest, so
duplicates never straddle the splits), with the validation percent recorded by the dataset's latest validation,
so the files hold exactly the examples the statistics and the training estimate counted.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from django.core.files import File

from brightrun.errors import ApplicationError
from brightrun.storage import file_storage, open_stream, owned_key
from datasets.models import Dataset
from datasets.validation import FORMATS, iter_examples

logger = logging.getLogger(__name__)
SPLITS = ("train", "validation")
MANIFEST = "manifest.json"


def _keys(dataset: Dataset) -> dict[str, str]:
    keys = {
        name: owned_key(dataset.owner_id, "datasets", str(dataset.pk), "splits", f"{name}.jsonl") for name in SPLITS
    }
    keys[MANIFEST] = owned_key(dataset.owner_id, "datasets", str(dataset.pk), "splits", MANIFEST)
    return keys


def _stamp(dataset: Dataset) -> str:
    """What the files were made from: a re-validation (new split percent, new file) makes new ones."""
    return f"{dataset.storage_key}@{dataset.validated_at.isoformat() if dataset.validated_at else ''}"


def _existing(dataset: Dataset, keys: dict[str, str]) -> dict[str, Any] | None:
    storage = file_storage()
    try:
        if not storage.exists(keys[MANIFEST]):
            return None
        with storage.open(keys[MANIFEST], "rb") as handle:
            manifest = msgspec.json.decode(handle.read())
    except (OSError, msgspec.DecodeError) as exc:
        logger.warning("dataset %s: unreadable split manifest (%s); rebuilding", dataset.pk, exc)
        return None
    if not isinstance(manifest, dict) or manifest.get("stamp") != _stamp(dataset):
        return None
    if not all(storage.exists(keys[name]) for name in SPLITS):
        return None
    return {name: manifest[name] for name in SPLITS}


def _store(key: str, path: Path) -> None:
    storage = file_storage()
    if storage.exists(key):
        storage.delete(key)
    with path.open("rb") as handle:
        saved = storage.save(key, File(handle, name=path.name))
    if saved != key:  # a concurrent writer stored the same (deterministic) content first
        storage.delete(saved)


def dataset_split_files(*, dataset: Dataset) -> dict[str, dict[str, Any]]:
    """Write (once) the dataset's ``train.jsonl`` and ``validation.jsonl`` under
    ``users/<owner>/datasets/<id>/splits/`` and return ``{"train": {"key", "examples", "size"},
    "validation": {...}}``.

    Each line is ``{"messages": [...]}`` (chat format, whatever the source format) from the validator's valid
    examples, duplicates included as in the statistics. Idempotent: a manifest records what the files were made
    from, and they are made again only after a re-validation. Streams from and to storage through a local
    temporary folder, so memory does not grow with the file. Code ``dataset_not_ready``.
    """
    if dataset.status != Dataset.Status.READY:
        raise ApplicationError(
            f"The dataset is {dataset.status}; only a ready dataset has training splits.", code="dataset_not_ready"
        )
    keys = _keys(dataset)
    existing = _existing(dataset, keys)
    if existing is not None:
        return existing
    split_stats = (dataset.statistics or {}).get("split") or {}
    percent = split_stats.get("validation_percent")
    fmt = dataset.format if dataset.format in FORMATS else "auto"
    encode = msgspec.json.Encoder().encode
    result: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="brightrun-splits-") as folder:
        paths = {name: Path(folder) / f"{name}.jsonl" for name in SPLITS}
        counts = dict.fromkeys(SPLITS, 0)
        handles = {name: path.open("wb") for name, path in paths.items()}
        try:
            stream = open_stream(dataset.storage_key)
            try:
                for example in iter_examples(
                    stream, format=fmt, validation_percent=percent if isinstance(percent, int) else None
                ):
                    handles[example.split].write(encode({"messages": example.messages}) + b"\n")
                    counts[example.split] += 1
            finally:
                stream.close()
        finally:
            for handle in handles.values():
                handle.close()
        for name in SPLITS:
            _store(keys[name], paths[name])
            result[name] = {"key": keys[name], "examples": counts[name], "size": paths[name].stat().st_size}
        manifest = Path(folder) / MANIFEST
        manifest.write_bytes(encode({"stamp": _stamp(dataset), **result}))
        _store(keys[MANIFEST], manifest)
    return result
