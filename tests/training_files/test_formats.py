"""The three rendered formats: pair invariants, schemas, stored bytes (SPEC §7.2-§7.5)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from brightrun.storage import file_storage
from training_files.services import training_file_build, training_file_create
from training_files.services.schema import full_v4_validate

REFERENCE = Path(__file__).resolve().parents[3] / "shared/reference/original"
REFERENCE_FULL = REFERENCE / "c-alpha-build_v3.4_emotional-dataset-full-JSON-format_v4.json"


def _read(version, fmt) -> bytes:
    with file_storage().open(version.files[fmt]["key"], "rb") as handle:
        return handle.read()


def _build(owner, conversations, name, capture):
    with capture(execute=False):
        training_file, _ = training_file_create(owner=owner, name=name, conversation_ids=[c.pk for c in conversations])
    version = training_file_build(version=training_file.versions.get())
    assert version.status == "ready", version.error
    return version


def test_v4_jsonl_meta_and_pairs(built):
    training_file, _conversations = built
    version = training_file.current_version
    raw = _read(version, "v4-jsonl").decode()
    assert raw.endswith("\n") and "\r" not in raw
    lines = raw.split("\n")[:-1]
    meta = json.loads(lines[0])["_meta"]
    pairs = [json.loads(line) for line in lines[1:]]
    assert meta["format_spec"] == "brightrun-lora-v4" and meta["version"] == "4.0.0"
    assert meta["total_pairs"] == len(pairs) == 2 + 3 + 4 == version.training_pair_count
    assert meta["total_conversations"] == 3
    assert len({p["id"] for p in pairs}) == len(pairs)
    for pair in pairs:
        assert pair["target_response"] and pair["target_response"].startswith("Answer")
        assert pair["current_user_input"].startswith("Question")
        history = [t["content"] for t in pair["conversation_history"]]
        assert pair["current_user_input"] not in history
        assert pair["target_response"] not in history
        assert len(history) == 2 * (pair["turn_number"] - 1)
        assert pair["id"] == f"{pair['conversation_id']}-e{pair['turn_number']}"


def test_chat_jsonl_roles_alternate(built, active_vertical):
    training_file, _conversations = built
    raw = _read(training_file.current_version, "chat-jsonl").decode()
    assert raw.endswith("\n")
    records = [json.loads(line) for line in raw.splitlines()]
    assert len(records) == 3
    for record in records:
        messages = record["messages"]
        assert messages[0] == {"role": "system", "content": active_vertical.inference_system_prompt}
        roles = [m["role"] for m in messages[1:]]
        assert roles == ["user", "assistant"] * (len(roles) // 2) and roles[-1] == "assistant"
        contents = [m["content"] for m in messages]
        assert len(contents) == len(set(contents))
        assert set(record["metadata"]) == {"conversation_id", "persona", "arc", "topic", "quality_tier"}
    assert sum(len(r["messages"]) - 1 for r in records) == 2 * (2 + 3 + 4)


def test_full_json_validates_and_matches_pairs(built):
    training_file, _conversations = built
    version = training_file.current_version
    doc = json.loads(_read(version, "v4-json"))
    assert full_v4_validate(doc) == []
    meta = doc["training_file_metadata"]
    assert meta["total_conversations"] == 3
    assert meta["total_training_pairs"] == sum(len(c["training_pairs"]) for c in doc["conversations"]) == 9
    assert meta["quality_summary"]["human_reviewed_count"] == 3
    assert meta["quality_summary"]["avg_quality_score"] is None  # nothing scored: never invented
    assert sum(meta["scaffolding_distribution"]["personas"].values()) == 3
    jsonl_pairs = [json.loads(x) for x in _read(version, "v4-jsonl").decode().splitlines()[1:]]
    json_pairs = [p for c in doc["conversations"] for p in c["training_pairs"]]
    assert json_pairs == jsonl_pairs


def test_full_json_validates_against_reference_schema(
    local_storage, owner_user, make_trainable, django_capture_on_commit_callbacks
):
    if not REFERENCE_FULL.exists():
        pytest.skip("reference schema not available")
    from tests.factories import EmotionalArcFactory, PersonaFactory

    persona = PersonaFactory(key="pragmatic_optimist")
    arc = EmotionalArcFactory(key="confusion_to_clarity")
    judge = {
        k: {"score": 4, "rationale": "ok"} for k in ("empathy", "clarity", "appropriateness", "brand_voice_alignment")
    }
    conversation = make_trainable(
        owner_user,
        persona=persona,
        emotional_arc=arc,
        quality_score=4.2,
        quality_tier="production",
        judge_scores=judge,
        conversation_metadata={"session_context": "x", "conversation_phase": "practical_implementation"},
    )
    version = _build(owner_user, [conversation], "Reference check", django_capture_on_commit_callbacks)
    doc = json.loads(_read(version, "v4-json"))
    # Documented deviation (1): target_model is null when none is configured; the reference wants a string.
    assert doc["training_file_metadata"].pop("target_model") is None
    schema = json.loads(REFERENCE_FULL.read_text())
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(doc)]
    assert errors == []


def test_sha256_and_size_match_stored_bytes(
    any_storage, owner_user, make_trainable, django_capture_on_commit_callbacks
):
    conversations = [make_trainable(owner_user, exchanges=3) for _ in range(3)]
    version = _build(owner_user, conversations, f"Stored {any_storage}", django_capture_on_commit_callbacks)
    assert set(version.files) == {"chat-jsonl", "v4-jsonl", "v4-json"}
    for fmt, entry in version.files.items():
        body = _read(version, fmt)
        assert len(body) == entry["size"], fmt
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], fmt
        assert entry["key"].startswith(f"users/{owner_user.pk}/training-files/{version.training_file_id}/v1/")


def test_pair_ids_unique_across_files(owner_user, make_trainable, local_storage, django_capture_on_commit_callbacks):
    a = [make_trainable(owner_user) for _ in range(2)]
    b = [make_trainable(owner_user) for _ in range(2)]
    ids = []
    for name, members in (("A", a), ("B", b)):
        version = _build(owner_user, members, name, django_capture_on_commit_callbacks)
        ids += [json.loads(x)["id"] for x in _read(version, "v4-jsonl").decode().splitlines()[1:]]
    assert len(ids) == len(set(ids)) == 12


def test_broken_alternation_never_duplicates(
    owner_user, make_trainable, local_storage, django_capture_on_commit_callbacks
):
    from tests.factories import TurnFactory

    conversation = make_trainable(owner_user, exchanges=2)
    TurnFactory(conversation=conversation, index=5, role="user", content="A trailing question with no answer?")
    version = _build(owner_user, [conversation], "Trailing", django_capture_on_commit_callbacks)
    record = json.loads(_read(version, "chat-jsonl"))
    assert record["messages"][-1]["role"] == "assistant"
    assert version.training_pair_count == 2
