"""The dashboard: counts per stage, this week's spend, running work with progress, and a flat query count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import (
    ConversationFactory,
    CostRecordFactory,
    DatasetFactory,
    GenerationBatchFactory,
    ModelArtifactFactory,
    NotificationFactory,
    TrainingFileFactory,
    TrainingFileVersionFactory,
    TrainingJobFactory,
)
from training_files.models import Export

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("dashboard")


def _pipeline(owner, n: int = 2) -> None:
    """``n`` rows in every stage and every kind of running work."""
    for status in ("pending_review", "approved"):
        ConversationFactory.create_batch(n, owner=owner, status=status)
    for _ in range(n):
        training_file = TrainingFileFactory(owner=owner)
        TrainingFileVersionFactory(training_file=training_file, number=1, status="building")
        GenerationBatchFactory(owner=owner, status="running", total_items=4, succeeded_items=1)
        DatasetFactory(owner=owner, status="validating")
        TrainingJobFactory(owner=owner, status="running", progress=25.0, stage="Training")
        ModelArtifactFactory(job__owner=owner)
        Export.objects.create(owner=owner, scope="all_approved", format="csv", status="running")
        NotificationFactory(owner=owner)
    CostRecordFactory(owner=owner, kind="generation", amount_usd="1.50")
    CostRecordFactory(owner=owner, kind="training", amount_usd="4.25")


def test_dashboard_shows_stages_spend_and_running_work(owner_user, other_user, web_client_for):
    _pipeline(owner_user)
    _pipeline(other_user, n=1)
    CostRecordFactory(
        owner=owner_user, kind="judging", amount_usd="9.00", incurred_at=timezone.now() - timedelta(days=8)
    )
    batch = GenerationBatchFactory(
        owner=owner_user, name="Spring batch", status="running", total_items=4, succeeded_items=2
    )
    response = web_client_for(owner_user).get(DASHBOARD)
    assert response.status_code == 200
    body = response.content.decode()
    pipeline = response.context["pipeline"]
    assert pipeline["conversations"]["total"] == 4
    assert {r["value"]: r["count"] for r in pipeline["conversations"]["rows"]}["approved"] == 2
    assert pipeline["training_files"]["total"] == 2 and pipeline["training_files"]["ready"] == 0
    assert pipeline["datasets"]["total"] == 6  # two validating, four ready under the jobs
    assert {r["value"]: r["count"] for r in pipeline["jobs"]["rows"]} == {
        "queued": 0, "preparing": 0, "running": 2, "completed": 2, "failed": 0, "cancelled": 0,
    }  # fmt: skip
    assert pipeline["models"]["total"] == 2
    # spend of the last 7 days only, every kind listed
    spend = response.context["spend"]
    assert str(spend["total"]) == "5.750000" and [r["kind"] for r in spend["rows"]] == [
        "generation",
        "judging",
        "training",
    ]
    assert "$5.75" in body and f'href="{reverse("training:costs")}?days=7"' in body
    # running work links to each item, with progress; it polls while something runs
    assert reverse("conversations:batch_detail", args=[batch.pk]) in body
    assert 'aria-label="Batch Spring batch"' in body and 'value="50.0"' in body
    assert f'hx-get="{DASHBOARD}" hx-trigger="every 5s"' in body
    assert response.context["running"]["batches"]["more"] is False
    assert len(response.context["running"]["jobs"]["items"]) == 2
    assert f"{reverse('conversations:conversation_list')}?status=approved" in body


def test_empty_dashboard_points_to_the_next_steps(owner_user, web_client_for):
    body = web_client_for(owner_user).get(DASHBOARD).content.decode()
    assert "Nothing is running." in body and "hx-trigger" not in body.split('id="running-work"')[1].split(">")[0]
    for name in ("conversations:generate", "datasets:upload", "training:configure"):
        assert f'href="{reverse(name)}"' in body, name
    assert "$0.00" in body


def test_running_work_fragment_polls_then_reloads_the_page(owner_user, web_client_for):
    job = TrainingJobFactory(owner=owner_user, status="running", name="Voice run")
    client = web_client_for(owner_user)
    fragment = client.get(DASHBOARD, HTTP_HX_REQUEST="true")
    assert "<html" not in fragment.content.decode() and "Voice run" in fragment.content.decode()
    assert "HX-Refresh" not in fragment and fragment["Cache-Control"] == "no-store"
    assert "HX-Request" in fragment["Vary"]
    job.status = "completed"
    job.save(update_fields=["status"])
    assert client.get(DASHBOARD, HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"


def test_dashboard_query_count_is_flat(owner_user, web_client_for, django_assert_max_num_queries):
    # session + user, 5 running-work lists, 6 stage/spend aggregates, 2 permission reads (navigation), the unread
    # count and the recent notifications; the polled fragment reads only session, user and running work.
    client = web_client_for(owner_user)
    _pipeline(owner_user, n=2)
    with django_assert_max_num_queries(17):
        assert client.get(DASHBOARD).status_code == 200
    _pipeline(owner_user, n=4)  # more rows (and "and more" running work) cost no more queries
    with django_assert_max_num_queries(17):
        response = client.get(DASHBOARD)
    assert response.context["running"]["batches"]["more"] is True
    with django_assert_max_num_queries(7):
        assert client.get(DASHBOARD, HTTP_HX_REQUEST="true").status_code == 200
