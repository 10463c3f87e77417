"""Fixtures for the conversations tests: seeded scaffolding and a batch runner."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from conversations.models import BatchItem, GenerationBatch
from conversations.services.generation import generation_dispatch, generation_item_run


@pytest.fixture
def scaffolding(db):
    """The product's seeded scaffolding (vertical, personas, arcs, topics, templates)."""
    call_command("seed_scaffolding", verbosity=0)


@pytest.fixture
def run_batch():
    """Process a live batch in this process the way workers would: dispatch, then run each item task."""

    def run(batch: GenerationBatch, *, rounds: int = 50) -> GenerationBatch:
        for _ in range(rounds):
            batch.refresh_from_db()
            if batch.status != GenerationBatch.Status.RUNNING:
                break
            generation_dispatch(batch_id=batch.pk)
            ids = list(
                batch.items.filter(status=BatchItem.Status.QUEUED, dispatched_at__isnull=False).values_list(
                    "pk", flat=True
                )
            )
            if not ids:
                break
            for pk in ids:
                generation_item_run(item_id=pk)
        batch.refresh_from_db()
        return batch

    return run
