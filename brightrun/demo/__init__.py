"""The demo workspace behind ``manage.py load_demo`` (``make demo``): every page has something to show, with
no Anthropic key.

- ``content``: the hand-written conversations (text files in ``conversations/``, written by the team, never
  generated) and their parser.
- ``workspace``: the ``demo-reviewer`` user, the conversations created as the demo user's, enriched by the
  real enrichment chain (no judge) and reviewed through ``conversations.services.review`` into every review
  state, and two honest generation-batch records ($0, no Claude call).
- ``pipeline``: training file → dataset → finished LoRA job on the tiny test model, through the real services.

:func:`demo_load` runs them in that order. It must be called outside a transaction (each service commits on
its own; see ``pipeline``), and it is idempotent: a second run creates nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from brightrun.demo.content import demo_conversations
from brightrun.demo.pipeline import demo_dataset_load, demo_training_file_load, demo_training_job_load
from brightrun.demo.workspace import (
    demo_batches_load,
    demo_conversation_load,
    demo_reviewer_ensure,
    demo_scaffolding,
)
from conversations.models import Conversation, GenerationBatch
from datasets.models import Dataset
from training.models import TrainingJob
from training_files.models import TrainingFileVersion


@dataclass
class DemoReport:
    """What :func:`demo_load` found or made; ``created`` counts only what this run created."""

    conversations: list[Conversation]
    batches: list[GenerationBatch]
    version: TrainingFileVersion
    dataset: Dataset
    job: TrainingJob
    reviewer_password: str | None = None
    created: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def count_by(self, attribute: str) -> Counter:
        return Counter(getattr(c, attribute) for c in self.conversations)


def demo_load(*, owner, log=lambda line: None) -> DemoReport:
    """Load the demo workspace for ``owner`` (the demo user) and return what it holds.

    Called by ``manage.py load_demo``; not inside ``transaction.atomic``. Raises ``ApplicationError`` with a
    stable code when the scaffolding or catalogue is not seeded, or when a step ends in a failed state
    (enrichment, build, validation, training) — the message says which and why.
    """
    started = time.monotonic()
    created: Counter = Counter()
    specs = demo_conversations()
    scaffolding = demo_scaffolding(specs)
    reviewer, password = demo_reviewer_ensure(created=created)
    log(f"Conversations: {len(specs)} hand-written, enriched and reviewed…")
    conversations = [
        demo_conversation_load(spec, owner=owner, reviewer=reviewer, scaffolding=scaffolding, created=created)
        for spec in specs
    ]
    batches = demo_batches_load(owner=owner, conversations=conversations, created=created)
    approved = [c.pk for c in conversations if c.status == Conversation.Status.APPROVED]
    log(f"Training file of the {len(approved)} approved conversations…")
    version = demo_training_file_load(owner=owner, conversation_ids=approved, created=created)
    log("Dataset imported from it and validated…")
    dataset = demo_dataset_load(owner=owner, version=version, created=created)
    log("LoRA job on the tiny test model (CPU or GPU, a few seconds)…")
    job = demo_training_job_load(owner=owner, dataset=dataset, created=created)
    return DemoReport(
        conversations=conversations,
        batches=batches,
        version=version,
        dataset=dataset,
        job=job,
        reviewer_password=password,
        created=created,
        seconds=time.monotonic() - started,
    )


__all__ = ["DemoReport", "demo_load"]
