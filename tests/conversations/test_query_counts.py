"""Query ceilings of the main list, detail and download-URL endpoints (issue 9).

Every request costs at most ``MAX_QUERIES`` whatever the page size: the rows carry related objects
(scaffolding foreign keys, turns, current versions, lineage) so that a missing ``select_related`` /
``prefetch_related`` shows up as one query per row. Page sizes 1, 50 and 500 run against more than 500
conversations, so the largest page is full. The token's once-a-minute ``last_used_at`` write is counted
(the first request of each test pays it).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from brightrun.models import Notification
from conversations.models import Conversation, Turn
from tests.factories import (
    ConversationFactory,
    DatasetFactory,
    EmotionalArcFactory,
    ModelArtifactFactory,
    NotificationFactory,
    PersonaFactory,
    PresetFactory,
    TrainingFileFactory,
    TrainingFileVersionFactory,
    TrainingJobFactory,
    TrainingTopicFactory,
)

MAX_QUERIES = 6
PAGE_SIZES = (1, 50, 500)
CONVERSATIONS = 520
SMALL_LISTS = 12

pytestmark = pytest.mark.django_db


def _count(client, url: str) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    return len(ctx.captured_queries), response


def _assert_ceiling(client, url: str, *, rows: int | None = None) -> int:
    queries, response = _count(client, url)
    assert response.status_code == 200, (url, response.status_code, getattr(response, "content", b"")[:300])
    if rows is not None:
        assert len(response.json()["results"]) == rows, url
    assert queries <= MAX_QUERIES, f"{url}: {queries} queries"
    return queries


def _assert_lists(client, path: str, total: int, check: Callable[[dict], None] | None = None) -> None:
    """The list at every page size stays under the ceiling and costs the same number of queries."""
    sep = "&" if "?" in path else "?"
    client.get(f"{path}{sep}limit=1")  # pays the token's last-use write once, so the counts below compare
    counts = {}
    for size in PAGE_SIZES:
        counts[size] = _assert_ceiling(client, f"{path}{sep}limit={size}", rows=min(size, total))
    assert len(set(counts.values())) == 1, f"{path}: queries grow with the page size: {counts}"
    if check is not None:
        check(client.get(f"{path}{sep}limit=1").json()["results"][0])


@pytest.fixture
def conversations(owner_user, other_user) -> list[Conversation]:
    """More than 500 conversations over several personas/arcs/topics, two turns each; one for another user."""
    scaffolding = [(PersonaFactory(), EmotionalArcFactory(), TrainingTopicFactory()) for _ in range(5)]
    rows = [
        Conversation(
            owner=owner_user,
            title=f"Conversation {n}",
            persona=scaffolding[n % 5][0],
            emotional_arc=scaffolding[n % 5][1],
            training_topic=scaffolding[n % 5][2],
            tier="template",
            generation_system_prompt="system",
            model="claude-sonnet-4-5-20250929",
            temperature=0.7,
            turn_count=2,
            exchange_count=1,
            enriched_key=f"users/{owner_user.pk}/conversations/{n}/v4.json",
        )
        for n in range(CONVERSATIONS)
    ]
    Conversation.objects.bulk_create(rows)
    Turn.objects.bulk_create(
        Turn(owner=owner_user, conversation=c, index=i, role=role, content=f"{role} says something")
        for c in rows
        for i, role in ((1, "user"), (2, "assistant"))
    )
    ConversationFactory(owner=other_user)
    return rows


def test_conversation_list(api_client_for, owner_user, conversations):
    def check(row: dict) -> None:
        assert "turns" not in row and row["turn_count"] == 2 and row["persona"].startswith("persona_")

    _assert_lists(api_client_for(owner_user), "/api/v1/conversations/", CONVERSATIONS, check)


def test_conversation_list_with_turns(api_client_for, owner_user, conversations):
    def check(row: dict) -> None:
        assert len(row["turns"]) == 2 and row["persona"].startswith("persona_")

    _assert_lists(api_client_for(owner_user), "/api/v1/conversations/?include=turns", CONVERSATIONS, check)


def test_conversation_list_refuses_unknown_includes(api_client_for, owner_user):
    response = api_client_for(owner_user).get("/api/v1/conversations/?include=everything")
    assert response.status_code == 400 and response.json()["code"] == "invalid_include"


def test_conversation_detail_and_enriched_url(api_client_for, owner_user, conversations, local_storage):
    client = api_client_for(owner_user)
    conversation = conversations[7]
    key = conversation.enriched_key
    (local_storage / key).parent.mkdir(parents=True)
    (local_storage / key).write_text("{}")
    _assert_ceiling(client, reverse("conversation-detail", args=[conversation.pk]))
    _assert_ceiling(client, reverse("conversation-enriched", args=[conversation.pk]))
    queries, response = _count(client, reverse("conversation-enriched", args=[conversation.pk]))
    assert response.json()["url"].startswith("http://testserver/files/download/")
    # The signed URL needs the row only: no turns, no scaffolding.
    assert queries <= 2, queries


def test_conversation_ui_list(web_client_for, owner_user, conversations):
    """The HTML list has a fixed page size; its query count does not depend on the rows on the page."""
    client = web_client_for(owner_user)
    url = reverse("conversations:conversation_list")
    client.get(url)
    with CaptureQueriesContext(connection) as full:
        response = client.get(url)
    assert response.status_code == 200
    with CaptureQueriesContext(connection) as last:
        response = client.get(url + "?page=last")
    assert response.status_code == 200
    assert len(full.captured_queries) == len(last.captured_queries), (
        len(full.captured_queries),
        len(last.captured_queries),
    )
    # Session, user, reviewer permissions, notification bell, scaffolding choices, count, rows: 8 today.
    assert len(full.captured_queries) <= 10, [q["sql"][:150] for q in full.captured_queries]


@pytest.fixture
def training_files(owner_user) -> list:
    files = []
    for _ in range(SMALL_LISTS):
        training_file = TrainingFileFactory(owner=owner_user)
        version = TrainingFileVersionFactory(training_file=training_file, owner=owner_user)
        training_file.current_version = version
        training_file.save(update_fields=["current_version"])
        files.append(training_file)
    TrainingFileFactory()  # another user's
    return files


def test_training_file_list_detail_download(api_client_for, owner_user, training_files, local_storage):
    client = api_client_for(owner_user)

    def check(row: dict) -> None:
        assert row["current_version"]["files"]

    _assert_lists(client, "/api/v1/training-files/", SMALL_LISTS, check)
    training_file = training_files[3]
    _assert_ceiling(client, reverse("training-file-detail", args=[training_file.pk]))
    queries, response = _count(client, reverse("training-file-download", args=[training_file.pk]) + "?format=v4-json")
    assert response.status_code == 200, response.content
    assert queries <= MAX_QUERIES


def test_dataset_list_detail_download(api_client_for, owner_user, local_storage):
    versions = [TrainingFileVersionFactory(training_file__owner=owner_user) for _ in range(SMALL_LISTS)]
    datasets = [DatasetFactory(owner=owner_user, training_file_version=v, source="import") for v in versions]
    DatasetFactory()  # another user's
    client = api_client_for(owner_user)

    def check(row: dict) -> None:
        assert row["training_file_version"]["number"] >= 1

    _assert_lists(client, "/api/v1/datasets/", SMALL_LISTS, check)
    _assert_ceiling(client, reverse("dataset-detail", args=[datasets[0].pk]))
    _assert_ceiling(client, reverse("dataset-download", args=[datasets[0].pk]))


def test_training_job_and_model_lists(api_client_for, owner_user):
    for _ in range(SMALL_LISTS):
        artifact = ModelArtifactFactory(job__owner=owner_user)
        artifact.job.preset = PresetFactory()
        artifact.job.save(update_fields=["preset"])
    TrainingJobFactory(owner=owner_user)  # without an artifact
    TrainingJobFactory()  # another user's
    client = api_client_for(owner_user)

    def check(row: dict) -> None:
        assert row["dataset"]["name"] and row["base_model"]["hf_id"]

    _assert_lists(client, "/api/v1/training-jobs/", SMALL_LISTS + 1, check)
    _assert_lists(client, "/api/v1/models/", SMALL_LISTS)
    job = artifact.job
    _assert_ceiling(client, reverse("training-job-detail", args=[job.pk]))
    _assert_ceiling(client, reverse("model-detail", args=[artifact.pk]))
    with CaptureQueriesContext(connection) as ctx:
        response = client.post(reverse("model-download", args=[artifact.pk]))
    assert response.status_code == 200, response.content
    assert len(ctx.captured_queries) <= MAX_QUERIES


def test_notification_list(api_client_for, owner_user):
    NotificationFactory.create_batch(SMALL_LISTS, owner=owner_user)
    NotificationFactory()  # another user's
    client = api_client_for(owner_user)
    _assert_lists(client, "/api/v1/notifications/", SMALL_LISTS)
    row = Notification.objects.for_user(owner_user).first()
    _assert_ceiling(client, reverse("notification-detail", args=[row.pk]))
