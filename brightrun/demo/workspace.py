"""The conversations side of the demo workspace: the demo reviewer, the hand-written conversations (enriched
and reviewed through the real services) and two generation-batch records that list them.

Called by :func:`brightrun.demo.demo_load` only, outside any transaction, so every service commits (and
enqueues what it enqueues) exactly as it does for a user. Idempotent: a conversation is found again by
``(owner, model=DEMO_MODEL, title)``, enrichment runs only while it is not ``completed``, and a conversation's
review steps resume after the review actions it already has.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from brightrun.demo.content import DemoConversation
from brightrun.errors import ApplicationError
from conversations.models import (
    BatchItem,
    Conversation,
    EmotionalArc,
    GenerationBatch,
    Persona,
    TrainingTopic,
    Turn,
    VerticalProfile,
)
from conversations.services.batches import generation_batch_recount
from conversations.services.enrichment import conversation_enrich
from conversations.services.review import conversation_review, turn_edit

#: ``Conversation.model`` and ``GenerationBatch.model`` of the demo set: no Claude model wrote these.
DEMO_MODEL = "hand-written-demo"
DEMO_NOTE = (
    "Loaded from the hand-written demo set by manage.py load_demo: written by the Bright Run team, "
    "no prompt was sent to Claude and nothing was spent."
)
REVIEWER_USERNAME = "demo-reviewer"
REVIEWERS_GROUP = "Reviewers"  # created by conversations/migrations/0004_reviewers_group.py
#: One batch record per conversation tier, so the batches page shows the two kinds apart.
BATCH_NAMES = {
    "template": "Demo set: everyday planning conversations (hand-written)",
    "edge_case": "Demo set: edge cases (hand-written)",
}


def demo_reviewer_ensure(*, created: Counter) -> tuple[object, str | None]:
    """The ``demo-reviewer`` user, in the Reviewers group; returns it and its password when made now.

    A new reviewer gets a random password, printed once and kept (mode 0600) in
    ``VAR_DIR/demo-reviewer-login.txt``, the way ``create_demo_user`` keeps the demo login.
    """
    User = get_user_model()
    group = Group.objects.filter(name=REVIEWERS_GROUP).first()
    if group is None:
        raise ApplicationError("The Reviewers group is missing; run manage.py migrate.", code="reviewers_missing")
    user = User.objects.filter(username=REVIEWER_USERNAME).first()
    password = None
    if user is None:
        password = secrets.token_urlsafe(12)
        user = User.objects.create_user(
            username=REVIEWER_USERNAME, email=f"{REVIEWER_USERNAME}@example.com", password=password
        )
        created["users"] += 1
        saved = settings.VAR_DIR / "demo-reviewer-login.txt"
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(f"Reviewer login: username '{REVIEWER_USERNAME}', password '{password}'\n", encoding="utf-8")
        saved.chmod(0o600)
    user.groups.add(group)
    return user, password


@dataclass(frozen=True)
class Scaffolding:
    personas: dict[str, Persona]
    arcs: dict[str, EmotionalArc]
    topics: dict[str, TrainingTopic]


def demo_scaffolding(specs: tuple[DemoConversation, ...]) -> Scaffolding:
    """The seeded rows the demo set refers to, by key; ``scaffolding_missing`` names what is not there."""
    found = Scaffolding(
        personas={p.key: p for p in Persona.objects.filter(key__in={s.persona for s in specs})},
        arcs={a.key: a for a in EmotionalArc.objects.filter(key__in={s.arc for s in specs})},
        topics={t.key: t for t in TrainingTopic.objects.filter(key__in={s.topic for s in specs})},
    )
    missing = sorted(
        {f"persona {s.persona}" for s in specs if s.persona not in found.personas}
        | {f"arc {s.arc}" for s in specs if s.arc not in found.arcs}
        | {f"topic {s.topic}" for s in specs if s.topic not in found.topics}
    )
    if missing or not VerticalProfile.objects.active().exists():
        raise ApplicationError(
            "The scaffolding is not seeded (missing: "
            + (", ".join(missing) or "the active vertical")
            + "); run manage.py seed_scaffolding first.",
            code="scaffolding_missing",
        )
    return found


def _create(spec: DemoConversation, *, owner, scaffolding: Scaffolding) -> Conversation:
    persona = scaffolding.personas[spec.persona]
    arc = scaffolding.arcs[spec.arc]
    with transaction.atomic():
        conversation = Conversation.objects.create(
            owner=owner,
            title=spec.title,
            persona=persona,
            emotional_arc=arc,
            training_topic=scaffolding.topics[spec.topic],
            tier=arc.tier,
            template_version=None,
            generation_system_prompt=DEMO_NOTE,
            conversation_metadata={**spec.metadata, "client_persona": f"{persona.name} - {persona.archetype}"},
            model=DEMO_MODEL,
            temperature=0.0,
            turn_count=len(spec.turns),
            exchange_count=sum(1 for t in spec.turns if t.role == Turn.Role.ASSISTANT),
        )
        Turn.objects.bulk_create(
            Turn(
                owner=owner,
                conversation=conversation,
                index=index,
                role=turn.role,
                content=turn.content,
                primary_emotion=turn.primary_emotion,
                secondary_emotion=turn.secondary_emotion,
                intensity=turn.intensity,
            )
            for index, turn in enumerate(spec.turns, start=1)
        )
    return conversation


def _review(conversation: Conversation, spec: DemoConversation, *, owner, reviewer, created: Counter) -> None:
    done = conversation.review_actions.count()
    for step in spec.reviews[done:]:
        conversation.refresh_from_db()
        if step.action == "edit":
            turn_edit(turn=conversation.turns.get(index=step.turn), actor=owner, content=spec.edits[step.turn])
        else:
            conversation_review(
                conversation=conversation,
                actor=owner if step.action == "resubmit" else reviewer,
                action=step.action,
                reason_codes=list(step.reasons),
                comment=step.comment,
                reviewer_score=step.score,
            )
        created["review_actions"] += 1


def demo_conversation_load(
    spec: DemoConversation, *, owner, reviewer, scaffolding: Scaffolding, created: Counter
) -> Conversation:
    """Create (once), enrich and review one demo conversation; returns it with its final state."""
    conversation = Conversation.objects.filter(owner=owner, model=DEMO_MODEL, title=spec.title).first()
    if conversation is None:
        conversation = _create(spec, owner=owner, scaffolding=scaffolding)
        created["conversations"] += 1
    if conversation.enrichment_status != Conversation.EnrichmentStatus.COMPLETED:
        # judge=False: the demo never calls Claude, whatever JUDGE_ENABLED says.
        conversation_enrich(conversation=conversation, judge=False)
        if conversation.enrichment_status != Conversation.EnrichmentStatus.COMPLETED:
            raise ApplicationError(
                f"Enrichment of demo conversation {spec.slug!r} ended {conversation.enrichment_status}: "
                f"{conversation.enrichment_error}",
                code="demo_enrichment_failed",
            )
    _review(conversation, spec, owner=owner, reviewer=reviewer, created=created)
    conversation.refresh_from_db()
    return conversation


def demo_batches_load(*, owner, conversations: list[Conversation], created: Counter) -> list[GenerationBatch]:
    """One completed batch record per tier whose succeeded items point at the demo conversations.

    Honest by construction: model ``hand-written-demo``, no generation log, zero attempts, estimated and actual
    cost 0 (``generation_batch_recount`` sums the non-existent logs), and a status message saying so.
    """
    batches = []
    for tier, name in BATCH_NAMES.items():
        members = [c for c in conversations if c.tier == tier]
        batch = GenerationBatch.objects.filter(owner=owner, name=name).first()
        if batch is None and members:
            now = timezone.now()
            with transaction.atomic():
                batch = GenerationBatch.objects.create(
                    owner=owner,
                    name=name,
                    model=DEMO_MODEL,
                    status=GenerationBatch.Status.COMPLETED,
                    status_message=DEMO_NOTE,
                    total_items=len(members),
                    started_at=now,
                    finished_at=now,
                )
                BatchItem.objects.bulk_create(
                    BatchItem(
                        owner=owner,
                        batch=batch,
                        position=position,
                        persona_id=c.persona_id,
                        emotional_arc_id=c.emotional_arc_id,
                        training_topic_id=c.training_topic_id,
                        tier=c.tier,
                        status=BatchItem.Status.SUCCEEDED,
                        started_at=now,
                        finished_at=now,
                        conversation=c,
                    )
                    for position, c in enumerate(members, start=1)
                )
                generation_batch_recount(batch_id=batch.pk)
            created["generation_batches"] += 1
            batch.refresh_from_db()
        if batch is not None:
            batches.append(batch)
    return batches
