"""Streamed builds of a training-file version into the three formats (SPEC §7.4, §7.5).

Memory does not grow with the number of conversations: members are read in chunks of ``CHUNK_SIZE`` (turns
prefetched per chunk), every output is written to a temporary file on disk while its SHA-256 and size are
computed, and the finished files are streamed to storage. Counts, the quality summary and the scaffolding
distribution come from aggregate queries. The only per-version data held in memory is the member id list.

One pass over the database writes three things: the chat JSONL (final), the v4 pair lines and the v4
``conversations[]`` items (bodies). The v4 JSONL and the full v4 JSON are then assembled from their header —
now that ``total_pairs`` is known exactly — and the body files, so ``_meta.total_pairs`` always equals the
number of pair lines that follow.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from django.core.files import File
from django.db.models import Avg, Count, Max, Min, Prefetch, QuerySet
from django.utils.text import slugify

from brightrun.storage import file_storage, owned_key
from conversations.models import Conversation, Turn, VerticalProfile
from conversations.services.v4 import FORMAT_SPEC, FORMAT_VERSION, consultant_profile, training_pairs
from training_files.models import TrainingFile, TrainingFileVersion

CHUNK_SIZE = 200
COPY_BUFFER = 1024 * 1024

CHAT_JSONL = "chat-jsonl"
V4_JSONL = "v4-jsonl"
V4_JSON = "v4-json"
FORMATS: dict[str, str] = {CHAT_JSONL: ".chat.jsonl", V4_JSONL: ".v4.jsonl", V4_JSON: ".v4.json"}
CONTENT_TYPES = {CHAT_JSONL: "application/jsonl", V4_JSONL: "application/jsonl", V4_JSON: "application/json"}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class HashingWriter:
    """A binary file on disk that keeps the SHA-256 and byte count of everything written to it."""

    def __init__(self, handle: IO[bytes]):
        self.handle = handle
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write_text(self, text: str) -> None:
        self.write(text.encode("utf-8"))

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.sha256.update(data)
        self.size += len(data)

    def copy_from(self, path: str) -> None:
        with open(path, "rb") as source:
            while chunk := source.read(COPY_BUFFER):
                self.write(chunk)


@dataclass(frozen=True)
class BuiltFile:
    path: str
    size: int
    sha256: str


def base_name(training_file: TrainingFile, number: int) -> str:
    """``<slug of the name>-v<n>``: the file name stem of every rendered format."""
    return f"{slugify(training_file.name)[:80] or 'training-file'}-v{number}"


def member_queryset(version: TrainingFileVersion) -> QuerySet:
    """The version's member conversations (only the file owner's), oldest first."""
    return Conversation.objects.filter(owner_id=version.owner_id, pk__in=list(version.member_ids)).order_by(
        "created_at", "id"
    )


def quality_summary(conversations: QuerySet) -> dict[str, Any]:
    """avg/min/max quality score over scored conversations, scored and human-reviewed counts (aggregates)."""
    total = conversations.count()
    scored = conversations.filter(quality_score__isnull=False).aggregate(
        avg=Avg("quality_score"), min=Min("quality_score"), max=Max("quality_score"), n=Count("id")
    )
    reviewed = conversations.filter(status=Conversation.Status.APPROVED).count()
    return {
        "avg_quality_score": round(scored["avg"], 3) if scored["avg"] is not None else None,
        "min_quality_score": scored["min"],
        "max_quality_score": scored["max"],
        "scored_count": scored["n"],
        "human_reviewed_count": reviewed,
        "human_reviewed_percentage": round(100.0 * reviewed / total, 2) if total else 0.0,
    }


def scaffolding_distribution(conversations: QuerySet) -> dict[str, dict[str, int]]:
    """Conversations per persona, emotional arc and training topic key (aggregates)."""

    def by(field: str) -> dict[str, int]:
        rows = conversations.order_by().values(field).annotate(n=Count("id")).order_by(field)
        return {row[field]: row["n"] for row in rows}

    return {
        "personas": by("persona__key"),
        "emotional_arcs": by("emotional_arc__key"),
        "training_topics": by("training_topic__key"),
    }


def iter_members(version: TrainingFileVersion, *, chunk_size: int = CHUNK_SIZE) -> Iterator[Conversation]:
    """Members with scaffolding and ordered turns, fetched ``chunk_size`` at a time (server-side cursor)."""
    turns = Prefetch("turns", queryset=Turn.objects.order_by("index"))
    yield from (
        member_queryset(version)
        .select_related("persona", "emotional_arc", "training_topic")
        .prefetch_related(turns)
        .iterator(chunk_size=chunk_size)
    )


def chat_record(conversation: Conversation, turns: list[Turn], system_prompt: str) -> dict[str, Any]:
    """One chat-JSONL line: system, then alternating user/assistant messages ending with assistant.

    A turn that breaks the alternation (two user or two assistant turns in a row) is skipped rather than
    merged, and a trailing user turn (no answer) is dropped, so the roles always alternate and no message
    appears twice.
    """
    messages: list[dict[str, str]] = [{"role": "system", "content": system_prompt}]
    expected = Turn.Role.USER
    for turn in turns:
        if turn.role != expected or not (turn.content or "").strip():
            continue
        messages.append({"role": turn.role, "content": turn.content})
        expected = Turn.Role.ASSISTANT if expected == Turn.Role.USER else Turn.Role.USER
    if messages[-1]["role"] == Turn.Role.USER:
        messages.pop()
    return {
        "messages": messages,
        "metadata": {
            "conversation_id": str(conversation.pk),
            "persona": conversation.persona.key,
            "arc": conversation.emotional_arc.key,
            "topic": conversation.training_topic.key,
            "quality_tier": conversation.quality_tier,
        },
    }


def conversation_metadata(conversation: Conversation, turns: list[Turn]) -> dict[str, Any]:
    """The v4 full file's per-conversation metadata (SPEC §7.4)."""
    persona, arc, topic = conversation.persona, conversation.emotional_arc, conversation.training_topic
    return {
        "conversation_id": str(conversation.pk),
        "source_file": os.path.basename(conversation.enriched_key or "") or f"fp_conversation_{conversation.pk}.json",
        "created_date": conversation.created_at.date().isoformat(),
        "total_turns": len(turns),
        "quality_tier": conversation.quality_tier,
        "scaffolding": {
            "persona_key": persona.key,
            "persona_name": f"{persona.name} - {persona.archetype}",
            "emotional_arc_key": arc.key,
            "emotional_arc": arc.name,
            "training_topic_key": topic.key,
            "training_topic": topic.name,
        },
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def render_version(
    *,
    version: TrainingFileVersion,
    vertical: VerticalProfile,
    workdir: str,
    summary: dict[str, Any],
    distribution: dict[str, Any],
    now: datetime,
    target_model: str | None = None,
) -> tuple[dict[str, BuiltFile], int, int]:
    """Write the three formats of ``version`` into ``workdir``; returns ``(files, conversations, pairs)``.

    Pure with respect to the database (reads only). Never holds more than one chunk of conversations.
    """
    stem = base_name(version.training_file, version.number)
    paths = {fmt: os.path.join(workdir, stem + suffix) for fmt, suffix in FORMATS.items()}
    pairs_body = os.path.join(workdir, "pairs.body")
    conversations_body = os.path.join(workdir, "conversations.body")
    system_prompt = vertical.inference_system_prompt
    total_conversations = total_pairs = 0
    seen_pair_ids: set[str] = set()

    with (
        open(paths[CHAT_JSONL], "wb") as chat_handle,
        open(pairs_body, "w", encoding="utf-8", newline="\n") as pairs_out,
        open(conversations_body, "w", encoding="utf-8", newline="\n") as conversations_out,
    ):
        chat = HashingWriter(chat_handle)
        for conversation in iter_members(version):
            turns = list(conversation.turns.all())
            pairs = training_pairs(conversation=conversation, turns=turns, vertical=vertical)
            if not pairs:
                continue
            for pair in pairs:
                if not pair["target_response"] or pair["id"] in seen_pair_ids:
                    raise ValueError(f"Pair {pair['id']} is empty or repeated.")
                seen_pair_ids.add(pair["id"])
                pairs_out.write(_dumps(pair) + "\n")
            chat.write_text(_dumps(chat_record(conversation, turns, system_prompt)) + "\n")
            item = {"conversation_metadata": conversation_metadata(conversation, turns), "training_pairs": pairs}
            conversations_out.write(("" if total_conversations == 0 else ",\n") + _dumps(item))
            total_conversations += 1
            total_pairs += len(pairs)
        # Only ids are kept across chunks (uniqueness check); 10,000 conversations × 8 pairs ≈ 6 MB.
        seen_pair_ids.clear()

    built: dict[str, BuiltFile] = {CHAT_JSONL: BuiltFile(paths[CHAT_JSONL], chat.size, chat.sha256.hexdigest())}

    with open(paths[V4_JSONL], "wb") as handle:
        out = HashingWriter(handle)
        meta = {
            "file_name": stem,
            "format_spec": FORMAT_SPEC,
            "version": FORMAT_VERSION,
            "total_pairs": total_pairs,
            "total_conversations": total_conversations,
        }
        out.write_text(_dumps({"_meta": meta}) + "\n")
        out.copy_from(pairs_body)
        built[V4_JSONL] = BuiltFile(paths[V4_JSONL], out.size, out.sha256.hexdigest())

    with open(paths[V4_JSON], "wb") as handle:
        out = HashingWriter(handle)
        metadata = {
            "file_name": stem,
            "version": FORMAT_VERSION,
            "created_date": _iso(version.created_at),
            "last_updated": _iso(now),
            "format_spec": FORMAT_SPEC,
            "target_model": target_model,
            "vertical": vertical.key,
            "total_conversations": total_conversations,
            "total_training_pairs": total_pairs,
            "quality_summary": summary,
            "scaffolding_distribution": distribution,
        }
        out.write_text(
            '{\n"training_file_metadata": '
            + _dumps(metadata)
            + ',\n"consultant_profile": '
            + _dumps(consultant_profile(vertical))
            + ',\n"conversations": [\n'
        )
        out.copy_from(conversations_body)
        out.write_text("\n]\n}\n")
        built[V4_JSON] = BuiltFile(paths[V4_JSON], out.size, out.sha256.hexdigest())

    os.remove(pairs_body)
    os.remove(conversations_body)
    return built, total_conversations, total_pairs


def storage_key(version: TrainingFileVersion, fmt: str) -> str:
    """The owner-prefixed storage key of one rendered format of ``version``."""
    filename = base_name(version.training_file, version.number) + FORMATS[fmt]
    return owned_key(version.owner_id, "training-files", str(version.training_file_id), f"v{version.number}", filename)


def store_file(*, key: str, path: str, fmt: str) -> None:
    """Stream the local file at ``path`` to storage at exactly ``key`` (replacing a leftover of a failed try)."""
    storage = file_storage()
    if storage.exists(key):
        storage.delete(key)
    with open(path, "rb") as handle:
        django_file = File(handle, name=os.path.basename(key))
        django_file.content_type = CONTENT_TYPES[fmt]
        saved = storage.save(key, django_file)
    if saved != key:
        storage.delete(saved)
        raise RuntimeError(f"Storage wrote {saved!r} instead of {key!r}.")


def delete_stored(keys: list[str]) -> None:
    """Delete stored objects of a failed build; a delete that fails is not an error (the orphan sweep reports it)."""
    storage = file_storage()
    for key in keys:
        try:
            storage.delete(key)
        except Exception:  # noqa: BLE001, S112 - best effort cleanup after a failure
            continue


def build_workdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="brightrun-training-file-")
