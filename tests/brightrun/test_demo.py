"""``manage.py load_demo``: the whole demo workspace through the real services, then idempotence."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from brightrun.demo.content import DemoContentError, demo_conversations, parse_conversation
from brightrun.demo.workspace import DEMO_MODEL, REVIEWER_USERNAME
from brightrun.models import CostRecord
from conversations.models import BatchItem, Conversation, GenerationBatch, GenerationLog, ReviewAction, Turn
from datasets.models import Dataset
from tests.training.conftest import tiny_model_path  # noqa: F401 - session fixture
from training.models import ModelArtifact, TrainingJob
from training_files.models import TrainingFile, TrainingFileVersion

COUNTED = (
    Conversation,
    Turn,
    ReviewAction,
    GenerationBatch,
    BatchItem,
    TrainingFile,
    TrainingFileVersion,
    Dataset,
    TrainingJob,
    ModelArtifact,
    CostRecord,
)


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED} | {"users": get_user_model().objects.count()}


@pytest.fixture
def demo_settings(local_storage, tiny_model_path, settings, tmp_path):  # noqa: F811
    settings.VAR_DIR = tmp_path / "var"  # the demo and reviewer login files
    settings.TRAINING_MODELS_DIR = tiny_model_path.parent
    settings.TRAINING_WORK_DIR = tmp_path / "work"
    settings.JUDGE_ENABLED = True  # the demo never judges, whatever the setting says
    call_command("seed_scaffolding", stdout=StringIO())
    call_command("seed_training", stdout=StringIO())
    return settings


@pytest.mark.django_db
def test_load_demo_builds_every_page_and_runs_twice_without_creating_anything(demo_settings):
    out = StringIO()
    call_command("load_demo", stdout=out)

    demo = get_user_model().objects.get(username="demo")
    reviewer = get_user_model().objects.get(username=REVIEWER_USERNAME)
    assert reviewer.groups.filter(name="Reviewers").exists() and not reviewer.is_superuser
    assert (demo_settings.VAR_DIR / "demo-reviewer-login.txt").exists()

    specs = demo_conversations()
    conversations = Conversation.objects.filter(owner=demo, model=DEMO_MODEL)
    statuses = Counter(conversations.values_list("status", flat=True))
    assert statuses == Counter(spec.final_status for spec in specs)
    assert statuses == {"approved": 15, "pending_review": 7, "needs_revision": 3, "rejected": 2, "archived": 3}
    assert set(statuses) == set(Conversation.Status.values)  # every review state has something to show
    assert len(specs) == 30 and len({s.topic for s in specs}) >= 15 and len({s.arc for s in specs}) == 10

    # Enrichment ran for real (no judge); scores come from the structure formula and the reviewer.
    assert set(conversations.values_list("enrichment_status", flat=True)) == {"completed"}
    assert not conversations.filter(structure_score__isnull=True).exists()
    assert not conversations.exclude(judge_scores=None).exists()
    assert not GenerationLog.objects.exists()  # no Claude call of any kind
    assert not conversations.filter(reviewer_score=None).exclude(quality_score=None).exists()  # nothing defaulted
    assert set(conversations.filter(status="approved").values_list("quality_tier", flat=True)) <= {
        "seed_dataset",
        "production",
    }

    # Review history through the review service: the reviewer approves, the owner resubmits and edits.
    assert ReviewAction.objects.filter(owner=demo).count() == sum(len(s.reviews) for s in specs)
    assert set(ReviewAction.objects.filter(action="approve").values_list("actor__username", flat=True)) == {
        REVIEWER_USERNAME
    }
    edited = ReviewAction.objects.get(action="edit")
    assert edited.actor == demo and edited.to_status == "pending_review"
    assert Turn.objects.filter(conversation=edited.conversation).exclude(original_content=None).count() == 1

    # Two honest batch records: $0, no attempts, every item succeeded and points at a demo conversation.
    batches = GenerationBatch.objects.filter(owner=demo)
    assert batches.count() == 2 and set(batches.values_list("status", flat=True)) == {"completed"}
    assert {b.actual_cost_usd for b in batches} == {Decimal("0")}
    assert sum(b.succeeded_items for b in batches) == 30 == sum(b.total_items for b in batches)
    assert BatchItem.objects.filter(conversation__in=conversations, status="succeeded", attempts=0).count() == 30

    version = TrainingFileVersion.objects.get(training_file__owner=demo)
    assert version.status == "ready" and version.conversation_count == 15
    assert set(version.files) == {"chat-jsonl", "v4-jsonl", "v4-json"}
    dataset = Dataset.objects.get(owner=demo)
    assert dataset.status == "ready" and dataset.training_file_version == version and dataset.example_count == 15
    job = TrainingJob.objects.get(owner=demo)
    assert job.status == "completed", (job.error_code, job.error_message)
    assert job.backend == "local" and job.hyperparameters["epochs"] == 2 and job.hyperparameters["rank"] == 8
    assert job.artifact.files and CostRecord.objects.filter(source_id=job.pk, kind="training").exists()

    # The pages the summary points at render the demo data.
    owner_client, reviewer_client = Client(), Client()
    owner_client.force_login(demo)
    reviewer_client.force_login(reviewer)
    pages = [
        "/conversations/",
        "/generation/batches/",
        f"/training-files/{version.training_file_id}/",
        f"/datasets/{dataset.pk}/",
        f"/training/{job.pk}/",
        f"/models/{job.artifact.pk}/",
        "/costs/",
    ]
    for path in pages:
        assert owner_client.get(path).status_code == 200, path
    queue = reviewer_client.get("/review/")
    assert queue.status_code == 200 and edited.conversation.title.encode() in queue.content

    text = out.getvalue()
    assert "approved 15" in text and "/training-files/" in text and f"/training/{job.pk}/" in text

    before = _counts()
    again = StringIO()
    call_command("load_demo", stdout=again)
    assert _counts() == before
    assert "created by this run: nothing" in again.getvalue()
    assert "Reviewer login" not in again.getvalue()


def test_demo_content_rejects_broken_files():
    header = "title: t\npersona: p\narc: a\ntopic: x\nsession_context: s\nconversation_phase: c\nexpected_outcome: e\n"
    good = header + "\n[user: worry 0.7]\nHello there, Elena.\n\n[assistant: empathy 0.6]\nHello, how are you?\n"
    assert parse_conversation(good, slug="good").final_status == "pending_review"
    broken = {
        "two users": header + "\n[user: worry 0.7]\nOne.\n[user: worry 0.6]\nTwo.\n[assistant: calm 0.5]\nThree.\n",
        "ends with user": header + "\n[user: worry 0.7]\nOne.\n[assistant: calm 0.5]\nTwo.\n[user: worry 0.6]\nX.\n",
        "intensity": header + "\n[user: worry 1.7]\nOne.\n[assistant: calm 0.5]\nTwo.\n",
        "action": "review: bless\n" + good,
        "edit block": "review: needs_revision\nreview: edit turn=2\n" + good,
        "header": good.replace("topic: x\n", ""),
    }
    for name, text in broken.items():
        with pytest.raises(DemoContentError):
            parse_conversation(text, slug=name)
