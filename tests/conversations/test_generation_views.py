"""Generation pages: generate, bulk generator with the live estimate line, batch pages, failures."""

from __future__ import annotations

import pytest

from conversations.models import GenerationBatch
from tests.factories import BatchItemFactory, FailedGenerationFactory, GenerationBatchFactory

pytestmark = pytest.mark.django_db


def test_generate_pages_explain_a_missing_key(owner_user, scaffolding, client, settings):
    settings.ANTHROPIC_API_KEY = ""
    client.force_login(owner_user)
    for url in ["/generate/", "/generate/bulk/"]:
        page = client.get(url).content.decode()
        assert "export ANTHROPIC_API_KEY=" in page and "disabled" in page


def test_generate_single_creates_a_batch(owner_user, scaffolding, client, settings):
    settings.ANTHROPIC_API_KEY = "sk-ant-test"
    client.force_login(owner_user)
    response = client.post(
        "/generate/",
        {
            "persona": "overwhelmed_avoider",
            "emotional_arc": "confusion_to_clarity",
            "training_topic": "ignored_401k",
            "temperature": "0.5",
        },
    )
    batch = GenerationBatch.objects.get()
    assert response["Location"] == f"/generation/batches/{batch.pk}/"
    assert batch.total_items == 1 and batch.items.get().temperature == 0.5


def test_generate_single_form_errors(owner_user, scaffolding, client, settings):
    settings.ANTHROPIC_API_KEY = "sk-ant-test"
    client.force_login(owner_user)
    response = client.post("/generate/", {"persona": "nobody", "temperature": "3"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not GenerationBatch.objects.exists()


def test_bulk_estimate_line_and_create(owner_user, scaffolding, client, settings):
    settings.ANTHROPIC_API_KEY = "sk-ant-test"
    client.force_login(owner_user)
    form = {
        "personas": ["overwhelmed_avoider", "anxious_planner"],
        "emotional_arcs": ["confusion_to_clarity"],
        "training_topics": ["ignored_401k", "spending_priorities", "negotiating_compensation"],
        "repeat": "1",
        "mode": "live",
        "priority": "normal",
        "concurrency": "3",
        "error_policy": "continue",
    }
    line = client.get("/generate/estimate/", form).content.decode()
    assert "2 × 1 × 3 =" in line and "conversation" in line and "≈ $" in line and "min" in line
    assert "Choose at least one" in client.get("/generate/estimate/", {"repeat": "1"}).content.decode()
    response = client.post("/generate/bulk/", form)
    batch = GenerationBatch.objects.get()
    assert response["Location"] == f"/generation/batches/{batch.pk}/"


def test_batch_detail_and_progress_fragment(owner_user, scaffolding, client, django_assert_max_num_queries):
    batch = GenerationBatchFactory(owner=owner_user, total_items=4, succeeded_items=1)
    BatchItemFactory.create_batch(3, batch=batch)
    client.force_login(owner_user)
    with django_assert_max_num_queries(10):
        page = client.get(f"/generation/batches/{batch.pk}/").content.decode()
    assert 'id="batch-progress"' in page and "25.0%" in page and 'hx-trigger="every 2s"' in page
    fragment = client.get(f"/generation/batches/{batch.pk}/progress/", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.strip().startswith("<section") and "25.0%" in fragment
    GenerationBatch.objects.filter(pk=batch.pk).update(status="completed")
    done = client.get(f"/generation/batches/{batch.pk}/progress/").content.decode()
    assert "hx-trigger" not in done  # stops polling once finished


def test_batch_actions_from_the_page(owner_user, scaffolding, client):
    batch = GenerationBatchFactory(owner=owner_user)
    client.force_login(owner_user)
    client.post(f"/generation/batches/{batch.pk}/pause/")
    batch.refresh_from_db()
    assert batch.status == "paused"
    response = client.post(f"/generation/batches/{batch.pk}/pause/", follow=True)
    assert "cannot be paused" in response.content.decode()


def test_lists_have_query_ceilings(owner_user, client, django_assert_max_num_queries):
    GenerationBatchFactory.create_batch(3, owner=owner_user)
    FailedGenerationFactory.create_batch(3, owner=owner_user)
    client.force_login(owner_user)
    for url in ["/generation/batches/", "/generation/failures/", "/conversations/"]:
        with django_assert_max_num_queries(8):
            assert client.get(url).status_code == 200


def test_failure_page_shows_findings(owner_user, client):
    failure = FailedGenerationFactory(
        owner=owner_user,
        details={
            "findings": [
                {
                    "turn_number": 4,
                    "role": "assistant",
                    "code": "TRAILING_BACKSLASH",
                    "message": "ends with a backslash",
                }
            ]
        },
    )
    client.force_login(owner_user)
    page = client.get(f"/generation/failures/{failure.pk}/").content.decode()
    assert "TRAILING_BACKSLASH" in page and "Download report" in page


def test_logs_page_shows_statistics_for_a_range(owner_user, other_user, client, django_assert_max_num_queries):
    from tests.factories import GenerationLogFactory

    for ms in (1000, 2000, 3000):
        GenerationLogFactory(owner=owner_user, duration_ms=ms, cost_usd="0.010000")
    GenerationLogFactory(owner=other_user, duration_ms=9000)
    client.force_login(owner_user)
    with django_assert_max_num_queries(8):
        page = client.get("/generation/logs/").content.decode()
    assert "<strong>3</strong> calls" in page and "p50 2000 ms" in page and "$0.0300" in page
    empty = client.get("/generation/logs/", {"start": "2020-01-01", "end": "2020-01-02"}).content.decode()
    assert "<strong>0</strong> calls" in empty
    bad = client.get("/generation/logs/", {"start": "soon"})
    assert bad.status_code == 400 and "is not a date" in bad.content.decode()


def test_batch_list_refreshes_itself_only_while_a_batch_runs(owner_user, client):
    client.force_login(owner_user)
    empty = client.get("/generation/batches/").content.decode()
    assert (
        "No batches yet." in empty and 'href="/generate/bulk/"' in empty and "hx-trigger" not in empty.split("<main")[1]
    )
    running = GenerationBatchFactory(
        owner=owner_user, name="Spring", status="running", total_items=4, succeeded_items=1
    )
    page = client.get("/generation/batches/").content.decode()
    assert 'hx-get="/generation/batches/" hx-trigger="every 3s" hx-swap="outerHTML"' in page
    assert 'aria-label="Progress of Spring"' in page and 'value="25.0"' in page
    fragment = client.get("/generation/batches/", HTTP_HX_REQUEST="true")
    assert "<html" not in fragment.content.decode() and "Spring" in fragment.content.decode()
    assert "HX-Request" in fragment["Vary"]
    running.status = "completed"
    running.save(update_fields=["status"])
    assert "hx-trigger" not in client.get("/generation/batches/", HTTP_HX_REQUEST="true").content.decode()
