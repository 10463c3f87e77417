"""The generation API (names integrations depend on) and its bad-input answers."""

from __future__ import annotations

import pytest
from django.test import override_settings

from conversations.models import GenerationBatch
from tests.factories import ConversationFactory, FailedGenerationFactory, GenerationLogFactory, TurnFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/generation-batches/"
ITEM = {"persona": "overwhelmed_avoider", "emotional_arc": "confusion_to_clarity", "training_topic": "ignored_401k"}


def test_create_from_items(owner_user, scaffolding, api_client_for, django_capture_on_commit_callbacks):
    client = api_client_for(owner_user)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            URL,
            {"name": "Pilot", "items": [ITEM, {**ITEM, "temperature": 0.4}], "priority": "high", "concurrency": 2},
            format="json",
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "running" and body["total_items"] == 2 and body["name"] == "Pilot"
    assert float(body["estimated_cost_usd"]) > 0 and body["priority"] == "high"
    assert len(callbacks) == 2  # one task per item, up to the concurrency, enqueued after commit
    detail = client.get(f"{URL}{body['id']}/").json()
    assert detail["progress_percent"] == 0.0 and detail["etr_seconds"] is None
    items = client.get(f"{URL}{body['id']}/items/").json()["results"]
    assert [i["persona"] for i in items] == ["overwhelmed_avoider"] * 2 and items[1]["temperature"] == 0.4


def test_create_from_selection_and_estimate(owner_user, scaffolding, api_client_for):
    client = api_client_for(owner_user)
    selection = {
        "personas": ["overwhelmed_avoider", "anxious_planner"],
        "emotional_arcs": ["confusion_to_clarity"],
        "training_topics": ["ignored_401k", "spending_priorities"],
        "repeat": 2,
    }
    estimate = client.post(f"{URL}estimate/", {"selection": selection}, format="json").json()
    assert estimate["total_items"] + estimate["skipped_incompatible"] == 8
    response = client.post(URL, {"selection": selection, "mode": "message_batches"}, format="json")
    assert response.status_code == 201
    assert response.json()["total_items"] == estimate["total_items"]
    assert response.json()["mode"] == "message_batches"
    assert GenerationBatch.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"items": [{**ITEM, "persona": "nobody"}]}, "unknown_persona"),
        ({"items": [{**ITEM, "emotional_arc": "nope"}]}, "unknown_emotional_arc"),
        ({"items": [{**ITEM, "training_topic": "nope"}]}, "unknown_training_topic"),
        ({"items": [{**ITEM, "template_version": 999999}]}, "unknown_template_version"),
        ({"items": [{**ITEM, "temperature": 1.5}]}, "invalid_temperature"),
        ({"items": [{**ITEM, "temperature": -0.1}]}, "invalid_temperature"),
        ({"items": []}, "empty_selection"),
        (
            {
                "selection": {
                    "personas": [],
                    "emotional_arcs": ["confusion_to_clarity"],
                    "training_topics": ["ignored_401k"],
                }
            },
            "empty_selection",
        ),
        (
            {
                "selection": {
                    "personas": ["overwhelmed_avoider"],
                    "emotional_arcs": ["confusion_to_clarity"],
                    "training_topics": ["ignored_401k"],
                    "repeat": 10_001,
                }
            },
            "too_many_items",
        ),
        ({"items": [ITEM] * 10_001}, "too_many_items"),
        ({}, "items_or_selection"),
        (
            {"items": [ITEM], "selection": {"personas": [], "emotional_arcs": [], "training_topics": []}},
            "items_or_selection",
        ),
        ({"items": [ITEM], "concurrency": 11}, "max_value"),
        ({"items": [ITEM], "mode": "turbo"}, "invalid_choice"),
        ({"items": "everything"}, "not_a_list"),
    ],
)
def test_bad_input_is_400_with_a_code_and_creates_nothing(owner_user, scaffolding, api_client_for, payload, code):
    response = api_client_for(owner_user).post(URL, payload, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert GenerationBatch.objects.count() == 0


def test_incompatible_items_are_refused(owner_user, scaffolding, api_client_for):
    from conversations.models import EmotionalArc, Persona, TrainingTopic
    from conversations.services.scaffolding import compatibility_check

    for persona in Persona.objects.all():
        for arc in EmotionalArc.objects.all():
            for topic in TrainingTopic.objects.all():
                if not compatibility_check(persona=persona, arc=arc, topic=topic).compatible:
                    item = {"persona": persona.key, "emotional_arc": arc.key, "training_topic": topic.key}
                    response = api_client_for(owner_user).post(URL, {"items": [item]}, format="json")
                    assert response.status_code == 400 and response.json()["code"] == "incompatible_selection"
                    forced = api_client_for(owner_user).post(
                        URL, {"items": [item], "allow_incompatible": True}, format="json"
                    )
                    assert forced.status_code == 201
                    return
    pytest.skip("the seeded scaffolding has no incompatible combination")


@override_settings(GENERATION_MAX_ITEMS=10_000)
def test_cancel_pause_resume(owner_user, scaffolding, api_client_for):
    client = api_client_for(owner_user)
    batch_id = client.post(URL, {"items": [ITEM] * 3}, format="json").json()["id"]
    assert client.post(f"{URL}{batch_id}/pause/").json()["status"] == "paused"
    assert client.post(f"{URL}{batch_id}/pause/").json()["code"] == "invalid_transition"
    assert client.post(f"{URL}{batch_id}/resume/").json()["status"] == "running"
    cancelled = client.post(f"{URL}{batch_id}/cancel/").json()
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_items"] == 3
    again = client.post(f"{URL}{batch_id}/cancel/")
    assert again.status_code == 400 and again.json()["code"] == "invalid_transition"


def test_conversations_include_turns(owner_user, api_client_for, django_assert_max_num_queries):
    conversation = ConversationFactory(owner=owner_user)
    TurnFactory(conversation=conversation, index=1, role="user")
    TurnFactory(conversation=conversation, index=2, role="assistant", content="Let's look at it together.")
    ConversationFactory(owner=owner_user)
    client = api_client_for(owner_user)
    with django_assert_max_num_queries(5):
        listing = client.get("/api/v1/conversations/").json()
    assert listing["count"] == 2
    detail = client.get(f"/api/v1/conversations/{conversation.pk}/").json()
    assert [t["role"] for t in detail["turns"]] == ["user", "assistant"]
    assert client.get("/api/v1/conversations/", {"persona": conversation.persona.key}).json()["count"] == 1


def test_generation_logs_and_stats(owner_user, other_user, api_client_for):
    for ms, status in [(1000, "success"), (2000, "success"), (3000, "success"), (500, "failed")]:
        GenerationLogFactory(owner=owner_user, duration_ms=ms, status=status, cost_usd="0.010000", output_tokens=100)
    GenerationLogFactory(owner=other_user)
    client = api_client_for(owner_user)
    assert client.get("/api/v1/generation-logs/").json()["count"] == 4
    stats = client.get("/api/v1/generation-logs/stats/").json()
    assert stats["calls"] == 4 and stats["success_rate"] == 0.75
    assert stats["latency_ms"]["p50"] == 2000.0 and stats["cost_usd"] == "0.040000"
    assert stats["by_status"]["failed"]["calls"] == 1
    assert stats["by_model"]["claude-sonnet-4-5-20250929"]["output_tokens"] == 400
    bad = client.get("/api/v1/generation-logs/stats/", {"start": "yesterday"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_date"
    empty = client.get("/api/v1/generation-logs/stats/", {"start": "2020-01-01", "end": "2020-01-02"}).json()
    assert empty["calls"] == 0 and empty["success_rate"] is None


def test_failed_generation_report_and_raw(owner_user, api_client_for, local_storage):
    failure = FailedGenerationFactory(owner=owner_user, details={"findings": [{"turn_number": 4, "code": "X"}]})
    client = api_client_for(owner_user)
    report = client.get(f"/api/v1/failed-generations/{failure.pk}/report/")
    assert report.status_code == 200 and "attachment" in report["Content-Disposition"]
    assert report.json()["details"]["findings"][0]["turn_number"] == 4
    raw = client.get(f"/api/v1/failed-generations/{failure.pk}/raw/").json()
    assert raw["url"].startswith("http://testserver/files/download/") and raw["expires_in"] == 3600
    none = FailedGenerationFactory(owner=owner_user, raw_response_key="")
    assert client.get(f"/api/v1/failed-generations/{none.pk}/raw/").json()["code"] == "no_raw_response"
