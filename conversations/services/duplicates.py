"""Near-duplicate detection (SPEC §5.4): MinHash over word 5-gram shingles of the assistant turns.

Signatures (128 permutations, fixed seed, so they are comparable across processes and runs) are stored on the
conversation; a new conversation is compared with an LSH index built from the stored signatures of the same
owner's conversations only, and every candidate is confirmed with the estimated Jaccard similarity before it is
grouped. Conversations of different owners are never compared.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from datasketch import MinHash, MinHashLSH
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from conversations.models import Conversation, NearDuplicateGroup, Turn
from conversations.services.validation import conversation_turns

NUM_PERM = 128
SEED = 1
#: datasketch's permutation scheme; stored signatures are only comparable with sketches of the same scheme.
SCHEME = "affine32"
SHINGLE_WORDS = 5

_WORD = re.compile(r"[\w']+")


def shingles(texts: list[str]) -> set[str]:
    """Word 5-grams (lower case, punctuation dropped) of each text; a shorter text is one shingle.

    Shingles never span two turns.
    """
    found: set[str] = set()
    for text in texts:
        words = _WORD.findall((text or "").lower())
        if not words:
            continue
        if len(words) < SHINGLE_WORDS:
            found.add(" ".join(words))
            continue
        found.update(" ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1))
    return found


def _minhash(signature: list[int]) -> MinHash:
    return MinHash(num_perm=NUM_PERM, seed=SEED, hashvalues=np.array(signature, dtype=np.uint64), scheme=SCHEME)


def conversation_minhash(*, conversation: Conversation) -> list[int]:
    """The MinHash signature (128 ints) of the conversation's assistant turns; ``[]`` when they have no words."""
    texts = [t.content for t in conversation_turns(conversation) if t.role == Turn.Role.ASSISTANT]
    found = shingles(texts)
    if not found:
        return []
    m = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME)
    m.update_batch([s.encode("utf-8") for s in found])
    return [int(v) for v in m.hashvalues]


def _jaccard(a: list[int], b: list[int]) -> float:
    return _minhash(a).jaccard(_minhash(b))


def _dissolve_if_single(group_id: Any) -> None:
    members = Conversation.objects.filter(duplicate_group_id=group_id)
    if members.count() < 2:
        members.update(duplicate_group=None)
        NearDuplicateGroup.objects.filter(pk=group_id).delete()


@transaction.atomic
def near_duplicates_assign(*, conversation: Conversation) -> NearDuplicateGroup | None:
    """Store the conversation's signature and put it in one group with its near-duplicates; return the group.

    Compares only with the same owner's conversations that have a stored signature. Matches (estimated Jaccard
    ≥ ``settings.NEAR_DUPLICATE_THRESHOLD``) join one group: an existing group of the conversation or of a
    match (the oldest when several, the others are merged into it), else a new one owned by the owner. A
    conversation that no longer matches anything leaves its group (a group left with one member is dissolved).
    Locks the owner's user row so that two enrichments of one owner do not build groups side by side;
    idempotent.
    """
    get_user_model().objects.select_for_update().filter(pk=conversation.owner_id).first()
    signature = conversation_minhash(conversation=conversation)
    conversation.minhash = signature or None
    old_group_id = conversation.duplicate_group_id
    matches: list[tuple[Any, Any]] = []
    if signature:
        threshold = float(settings.NEAR_DUPLICATE_THRESHOLD)
        others = list(
            Conversation.objects.filter(owner_id=conversation.owner_id, minhash__isnull=False)
            .exclude(pk=conversation.pk)
            .values_list("pk", "minhash", "duplicate_group_id")
        )
        lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        stored = {}
        for pk, sig, group_id in others:
            if isinstance(sig, list) and len(sig) == NUM_PERM:
                lsh.insert(str(pk), _minhash(sig))
                stored[str(pk)] = (pk, sig, group_id)
        for key in lsh.query(_minhash(signature)):
            pk, sig, group_id = stored[key]
            if _jaccard(signature, sig) >= threshold:
                matches.append((pk, group_id))

    if not matches:
        conversation.duplicate_group = None
        conversation.save(update_fields=["minhash", "duplicate_group", "updated_at"])
        if old_group_id is not None:
            _dissolve_if_single(old_group_id)
        return None

    group_ids = {g for _, g in matches if g is not None}
    if old_group_id is not None:
        group_ids.add(old_group_id)
    groups = list(
        NearDuplicateGroup.objects.filter(pk__in=group_ids, owner_id=conversation.owner_id).order_by("created_at")
    )
    group = groups[0] if groups else NearDuplicateGroup.objects.create(owner_id=conversation.owner_id)
    merged = [g.pk for g in groups[1:]]
    if merged:
        Conversation.objects.filter(owner_id=conversation.owner_id, duplicate_group_id__in=merged).update(
            duplicate_group=group
        )
        NearDuplicateGroup.objects.filter(pk__in=merged).delete()
    Conversation.objects.filter(owner_id=conversation.owner_id, pk__in=[pk for pk, _ in matches]).update(
        duplicate_group=group
    )
    conversation.duplicate_group = group
    conversation.save(update_fields=["minhash", "duplicate_group", "updated_at"])
    return group


def group_members(conversation: Conversation):
    """The conversations in ``conversation``'s near-duplicate group (itself included), oldest first.

    Empty when it is in no group. Rows of the conversation's owner only.
    """
    if conversation.duplicate_group_id is None:
        return Conversation.objects.none()
    return Conversation.objects.filter(
        owner_id=conversation.owner_id, duplicate_group_id=conversation.duplicate_group_id
    ).order_by("created_at")
