"""Accessibility and small-screen layout of every main page, in real Chromium with axe-core.

One user with data on every page (and the reviewer permission) visits each page; axe-core runs the WCAG 2 A/AA
rules at 1280 px and again at 390 px, and no violation of impact serious or critical is allowed. At 390 px the
page must not scroll sideways (wide tables scroll inside their own wrapper). Every page also needs its own
``<title>`` and the banner, navigation, main and footer landmarks. axe-core comes from npm (``scripts/test.sh``
installs it into ``var/node/``); without it the module is skipped.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from brightrun import services as brightrun_services
from conversations.models import BatchItem, Conversation, PromptTemplate, ReviewAction
from tests.datasets.test_views import _checked, _invalid
from tests.factories import (
    PASSWORD,
    BatchItemFactory,
    CostRecordFactory,
    DatasetFactory,
    FailedGenerationFactory,
    GenerationBatchFactory,
    GenerationLogFactory,
    ModelArtifactFactory,
    NotificationFactory,
    TrainingFileFactory,
    TrainingFileMemberFactory,
    TrainingFileVersionFactory,
    TrainingJobFactory,
    UserFactory,
)
from tests.training_files.helpers import trainable
from training.models import MetricPoint, TrainingEvent
from training.services import catalogue_seed
from training_files.models import Export

AXE = Path(__file__).resolve().parents[2] / "var" / "node" / "node_modules" / "axe-core" / "axe.min.js"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not AXE.exists(),
        reason=f"axe-core is not installed ({AXE} is missing); scripts/test.sh installs it with npm",
    ),
]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
BLOCKING = ("serious", "critical")
AXE_RUN = """async () => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' + n.failureSummary.replace(/\\s+/g, ' ')),
  }));
}"""
LANDMARKS = """() => ({
  banner: !!document.querySelector('header'),
  nav: !!document.querySelector('nav[aria-label]'),
  main: document.querySelectorAll('main').length === 1,
  footer: !!document.querySelector('footer'),
  skip: !!document.querySelector('a[href="#main"]'),
})"""


def _pipeline(user) -> dict[str, str]:
    """Rows for every page of ``user``; returns the detail URLs the page list needs."""
    call_command("seed_scaffolding", verbosity=0)
    catalogue_seed()
    NotificationFactory.create_batch(2, owner=user)
    for kind, amount in (("generation", "3.40"), ("judging", "0.35"), ("training", "12.60")):
        CostRecordFactory(owner=user, kind=kind, amount_usd=amount, incurred_at=timezone.now() - timedelta(days=1))
    brightrun_services.api_token_create(owner=user, name="laptop")

    batch = GenerationBatchFactory(owner=user, name="Spring batch", status="running", total_items=4, succeeded_items=1)
    items = [BatchItemFactory(batch=batch, status="queued") for _ in range(3)]
    BatchItem.objects.filter(pk=items[0].pk).update(status="succeeded")
    GenerationBatchFactory(owner=user, name="Winter batch", status="completed", total_items=2, succeeded_items=2)
    failure = FailedGenerationFactory(owner=user, batch=batch)
    GenerationLogFactory(owner=user, batch=batch, input_tokens=1200, output_tokens=900, cost_usd="0.0171")

    approved = [trainable(user, exchanges=2) for _ in range(3)]
    pending = trainable(
        user,
        status="pending_review",
        title="Worried about retirement",
        is_flagged=True,
        flag_reasons=["truncation_suspected"],
        structure_score=7.4,
        judge_mean=4.2,
        quality_score=4.2,
        quality_tier="production",
        judge_scores={"empathy": {"score": 4, "rationale": "Warm and specific."}},
        validation_report={
            "valid": True,
            "blockers": [],
            "warnings": [{"code": "SHORT_CONTENT", "path": "turns[1]", "message": "Short.", "suggestion": "Expand."}],
        },
    )
    ReviewAction.objects.create(
        owner=user,
        conversation=approved[0],
        actor=user,
        action="approve",
        from_status=Conversation.Status.PENDING_REVIEW,
        to_status=Conversation.Status.APPROVED,
        comment="Good tone.",
    )

    training_file = TrainingFileFactory(owner=user, name="Planner voice")
    version = TrainingFileVersionFactory(
        training_file=training_file,
        number=1,
        conversation_count=3,
        training_pair_count=6,
        built_at=timezone.now(),
        quality_summary={"scored_count": 0, "human_reviewed_percentage": 33.3},
        scaffolding_distribution={
            "personas": {"marcus": 2, "jennifer": 1},
            "emotional_arcs": {"fear_to_confidence": 3},
        },
    )
    training_file.current_version = version
    training_file.save(update_fields=["current_version"])
    for conversation in approved:
        TrainingFileMemberFactory(training_file=training_file, conversation=conversation)
    for fmt, status in (("chat-jsonl", "completed"), ("csv", "running"), ("markdown", "failed")):
        Export.objects.create(
            owner=user,
            scope="all_approved",
            format=fmt,
            status=status,
            conversation_count=3,
            error="Storage unavailable." if status == "failed" else "",
        )

    dataset = _checked(user, name="Planner set")
    _invalid(user, name="Broken set")
    DatasetFactory(owner=user, name="Fresh upload", status="validating", statistics={}, example_count=0)

    job = TrainingJobFactory(
        owner=user,
        name="Voice run",
        dataset=dataset,
        status="running",
        stage="Training",
        progress=40.0,
        current_step=8,
        total_steps=20,
        started_at=timezone.now() - timedelta(minutes=20),
        latest_metrics={"training_loss": 1.4, "learning_rate": 0.00015},
        estimated_cost=Decimal("2.10"),
    )
    MetricPoint.objects.bulk_create(
        MetricPoint(owner=user, job=job, step=s, epoch=s / 10, training_loss=3 - s / 10, learning_rate=2e-4)
        for s in range(1, 9)
    )
    TrainingEvent.objects.create(owner=user, job=job, kind="started", message="Training on cpu.")
    artifact = ModelArtifactFactory(job__owner=user, job__dataset=dataset, job__name="Voice v1")
    return {
        "batch": reverse("conversations:batch_detail", args=[batch.pk]),
        "template": reverse("conversations:scaffolding_template", args=[PromptTemplate.objects.order_by("key")[0].key]),
        "failure": reverse("conversations:failed_detail", args=[failure.pk]),
        "conversation": reverse("conversations:conversation_detail", args=[pending.pk]),
        "review": reverse("conversations:review_detail", args=[pending.pk]),
        "training_file": reverse("training_files:detail", args=[training_file.pk]),
        "dataset": reverse("datasets:detail", args=[dataset.pk]),
        "job": reverse("training:job_detail", args=[job.pk]),
        "model": reverse("training:model_detail", args=[artifact.pk]),
    }


def _pages(detail: dict[str, str]) -> list[tuple[str, str]]:
    return [
        ("dashboard", reverse("dashboard")),
        ("scaffolding", reverse("conversations:scaffolding")),
        ("scaffolding template", detail["template"]),
        ("generate", reverse("conversations:generate")),
        ("generate bulk", reverse("conversations:generate_bulk")),
        ("batches", reverse("conversations:batch_list")),
        ("batch detail", detail["batch"]),
        ("failed generations", reverse("conversations:failed_list")),
        ("failed generation", detail["failure"]),
        ("generation logs", reverse("conversations:generation_logs")),
        ("conversations", reverse("conversations:conversation_list")),
        ("conversation detail", detail["conversation"]),
        ("review queue", reverse("conversations:review_queue")),
        ("review detail", detail["review"]),
        ("quality", reverse("conversations:quality")),
        ("training files", reverse("training_files:list")),
        ("training file detail", detail["training_file"]),
        ("exports", reverse("training_files:exports")),
        ("datasets", reverse("datasets:list")),
        ("dataset upload", reverse("datasets:upload")),
        ("dataset detail", detail["dataset"]),
        ("training configure", reverse("training:configure")),
        ("training jobs", reverse("training:job_list")),
        ("job monitor", detail["job"]),
        ("models", reverse("training:model_list")),
        ("model detail", detail["model"]),
        ("costs", reverse("training:costs")),
        ("notifications", reverse("notifications:list")),
        ("api tokens", reverse("accounts:tokens")),
    ]


def _axe(page, name: str, problems: list[str]) -> None:
    for violation in page.evaluate(AXE_RUN):
        if violation["impact"] in BLOCKING:
            nodes = "\n      ".join(violation["nodes"])
            problems.append(
                f"{name}: axe {violation['id']} ({violation['impact']}): {violation['help']}\n      {nodes}"
            )


def _check(page, name: str, problems: list[str]) -> str:
    """axe at desktop and phone width, landmarks, and no sideways scrolling at 390 px; returns the page's title."""
    # Through DevTools, not a <script> tag: the site's Content-Security-Policy rightly blocks inline scripts.
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    _axe(page, name, problems)
    landmarks = page.evaluate(LANDMARKS)
    missing = [key for key, present in landmarks.items() if not present]
    if missing:
        problems.append(f"{name}: missing {', '.join(missing)}")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(200)  # app.js re-marks the regions that now scroll (debounced resize)
    _axe(page, f"{name} at 390 px", problems)
    width = page.evaluate("document.scrollingElement.scrollWidth")
    if width > PHONE["width"]:
        culprits = page.evaluate(
            """(limit) => Array.from(document.querySelectorAll('main *, header *'))
                 .filter(el => el.getBoundingClientRect().right > limit + 1 && !el.closest('.table-scroll, pre'))
                 .slice(0, 3).map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : ''))""",
            PHONE["width"],
        )
        problems.append(f"{name}: {width} px wide at 390 px (overflowing: {', '.join(culprits)})")
    page.set_viewport_size(DESKTOP)
    return page.title()


@pytest.mark.django_db(transaction=True)
def test_every_page_passes_axe_and_fits_a_phone(page):
    user = UserFactory(username="expert")
    user.user_permissions.add(Permission.objects.get(codename="review_conversation"))  # sees the review queue
    detail = _pipeline(user)
    problems: list[str] = []
    titles: dict[str, str] = {}

    page.goto(reverse("login"))
    titles[_check(page, "login", problems)] = "login"
    page.get_by_label("Username").fill("expert")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Dashboard", exact=True).wait_for()

    for name, url in _pages(detail):
        response = page.goto(url)
        assert response is not None and response.status == 200, f"{name}: {url} answered {response and response.status}"
        title = _check(page, name, problems)
        if title in titles:
            problems.append(f"{name}: same <title> as {titles[title]} ({title!r})")
        titles[title] = name

    assert not problems, "\n".join(problems)
