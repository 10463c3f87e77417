"""Builders of trainable conversations for the training_files tests."""

from __future__ import annotations

from conversations.models import VerticalProfile
from tests.factories import ConversationFactory, TurnFactory

SYSTEM_PROMPT = (
    "You are Elena Morales, CFP, a warm and precise financial planner. Acknowledge emotions first, explain "
    "clearly, never shame, and end with one concrete next step."
)


def vertical() -> VerticalProfile:
    return VerticalProfile.objects.get_or_create(
        key="financial_planning_consultant",
        defaults={
            "name": "Elena Morales, CFP",
            "business": "Pathways Financial Planning",
            "expertise": "Fee-only planning",
            "years_experience": 15,
            "core_philosophy": [f"Principle {i}" for i in range(1, 6)],
            "communication_style": {"tone": "warm", "techniques": ["validate"], "avoid": ["jargon"]},
            "inference_system_prompt": SYSTEM_PROMPT,
        },
    )[0]


def trainable(owner, *, exchanges: int = 3, **fields):
    """An approved, enrichment-completed conversation with ``exchanges`` alternating user/assistant pairs."""
    fields.setdefault("status", "approved")
    fields.setdefault("enrichment_status", "completed")
    fields.setdefault("conversation_metadata", {"session_context": "Evening call", "conversation_phase": "opening"})
    conversation = ConversationFactory(owner=owner, turn_count=exchanges * 2, exchange_count=exchanges, **fields)
    for n in range(1, exchanges + 1):
        TurnFactory(
            conversation=conversation,
            index=2 * n - 1,
            role="user",
            content=f"Question {n} of {conversation.pk}: what should I do about my savings?",
            primary_emotion="worry",
            intensity=0.7,
        )
        TurnFactory(
            conversation=conversation,
            index=2 * n,
            role="assistant",
            content=f"Answer {n} of {conversation.pk}: let us look at it calmly, step by step.",
            primary_emotion="calm",
            intensity=0.4,
        )
    return conversation
