"""The whole journey in real Chromium, as an expert and a reviewer walk it (issue 8).

Expert: log in → bulk-generate 1 persona × 1 arc × 3 topics against the Claude-compatible test server and watch
the batch's progress bar reach 100% → open a conversation, edit a turn, regenerate from a later turn and wait for
it. Reviewer (a second browser context): approve every pending conversation from the review queue with the ``A``
shortcut. Expert: select the approved conversations → training file → wait for the version → download the chat
JSONL → import it as a dataset → read its validation report → configure a job on the tiny test model (preset card,
live estimate) → watch the loss chart grow while it runs → download the adapter files → costs → notifications.

Background work really runs: a Celery worker (thread pool, all four queues) runs in this process for the length
of the test, so it shares the test's settings overrides (Claude URL, storage, models folder) and the test
database. Its broker is kombu's in-memory transport, so no other test run on this machine (Redis, filesystem
broker) can take or purge its messages. Screenshots of every main page go to ``var/screenshots/NN-*.png``.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection, connections
from playwright.sync_api import Page, expect

from conversations.models import Conversation
from tests.factories import PASSWORD, UserFactory
from tests.training.conftest import tiny_model_path  # noqa: F401 - session fixture: the tiny test model
from training.models import BaseModel, TrainingJob
from training.services import catalogue_seed
from training.services.catalogue import TINY_TEST_MODEL_HF_ID

pytestmark = [pytest.mark.browser, pytest.mark.worker]

PERSONA = "Marcus Chen - The Overwhelmed Avoider"
ARC = "Confusion → Clarity"
TOPICS = ("Optimizing Neglected 401k", "Student Loan Repayment Strategy", "Financial Document Organization")
EDITED = "I'm honestly lost. I have an old 401(k) from two jobs ago and no idea what is in it or what to do first."
# The tiny model trains a step in milliseconds. Each metric report (every step and each epoch's evaluation) is held
# this long, so the monitor (polling every 2 s) sees the loss chart grow while the job runs: 2 epochs of 2-3
# training examples at batch 1 are 4-6 steps, about 9 s in all.
STEP_PACE_SECONDS = 1.5
LONG = 60_000  # ms, for background work: generation, builds, validation, training

# JavaScript: the number of points of the monitor's training-loss line, and whether the job is still running.
CHART_STATE = """() => {
    const line = document.querySelector('#job-live svg polyline.series-train');
    const status = document.querySelector('#job-live [role=status]');
    return {
        points: line ? line.getAttribute('points').trim().split(/\\s+/).length : 0,
        running: !!status && /running/i.test(status.textContent),
    };
}"""


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def in_process_worker(transactional_db, settings, monkeypatch):
    """A real Celery worker in this process (threads, every queue) on the in-memory broker."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker threads need a database server (PostgreSQL); make test provides one")
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    from brightrun.celery import app

    saved = {key: app.conf[key] for key in ("broker_url", "broker_transport_options")}
    root = logging.getLogger()
    saved_logging = (root.level, list(root.handlers))

    def use_broker(url: str, options: dict) -> None:
        app.conf.broker_url = url
        app.conf.broker_transport_options = options
        app._pool = None  # the connection and producer pools belong to the previous broker
        app.amqp._producer_pool = None

    def close_db(**_: object) -> None:  # the worker's threads keep no connection to the test database
        connections.close_all()

    monkeypatch.setenv("CELERY_SKIP_CHECKS", "1")  # Celery's Django fixup would run the system checks again
    use_broker("memory://", {})
    task_postrun.connect(close_db, weak=False)
    try:
        with start_worker(
            app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            queues=list(settings.CELERY_QUEUES),
            loglevel="WARNING",
            shutdown_timeout=60,
        ) as worker:
            yield worker
    finally:
        task_postrun.disconnect(close_db)
        use_broker(saved["broker_url"], saved["broker_transport_options"])
        root.setLevel(saved_logging[0])
        root.handlers[:] = saved_logging[1]


@pytest.fixture
def journey(in_process_worker, claude_server, local_storage, settings, live_server, tiny_model_path, tmp_path):  # noqa: F811
    """Scaffolding, catalogue and settings for the journey; returns the expert."""
    settings.SITE_URL = live_server.url  # local signed download URLs point at the live server
    settings.TRAINING_MODELS_DIR = tiny_model_path.parent
    settings.TRAINING_WORK_DIR = tmp_path / "training"
    # The training file holds the 3 generated conversations; the production minimum of 10 would mean generating
    # and reviewing 10 without exercising anything more.
    settings.DATASET_MIN_EXAMPLES = 3
    call_command("seed_scaffolding", verbosity=0, stdout=io.StringIO())
    catalogue_seed()
    return UserFactory(username="expert")


def _log_in(page: Page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def _nav(page: Page, label: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=label, exact=True).click()


def _job_state() -> str:
    return repr(list(TrainingJob.objects.values("status", "stage", "current_step", "error_code", "error_message")))


def test_expert_and_reviewer_journey(
    journey, reviewer, claude_server, browser, live_server, page, screenshot, monkeypatch
):
    expert = journey
    started = time.monotonic()
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() before regenerating

    # --- expert: log in, bulk-generate, watch the batch --------------------------------------------------------
    _log_in(page, expert.username)
    screenshot(page, "01-dashboard")

    _nav(page, "Generate")
    page.get_by_role("link", name=re.compile("Bulk generator")).click()
    expect(page.get_by_role("heading", name="Bulk generator")).to_be_visible()
    page.get_by_label("Name").fill("Journey batch")
    page.get_by_label(PERSONA).check()
    page.get_by_label(ARC).check()
    for topic in TOPICS:
        page.get_by_label(topic).check()
    expect(page.locator("#estimate")).to_contain_text("1 × 1 × 3 = 3 conversations")  # the live estimate
    screenshot(page, "02-generate")
    claude_server.latency = 2.0  # each Claude call takes 2 s: the batch page shows the batch before it ends
    page.get_by_role("button", name="Start batch").click()

    expect(page.get_by_role("heading", name="Journey batch")).to_be_visible()
    progress = page.get_by_role("progressbar", name="progress")
    assert float(progress.get_attribute("value")) < 100
    expect(progress).to_have_attribute("value", re.compile(r"^100(\.0*)?$"), timeout=LONG)  # polled every 2 s
    expect(page.locator("#batch-progress")).to_contain_text("3 succeeded")
    claude_server.latency = 0.0
    page.reload()  # the items table is not live: reload for the conversation links
    screenshot(page, "03-batch-progress")

    # --- expert: open a conversation, edit a turn, regenerate from a later one ---------------------------------
    page.get_by_role("main").get_by_role("table").locator("a[href*='/conversations/']").first.click()
    expect(page.get_by_role("heading", name="Turns")).to_be_visible()
    turn_1 = page.locator("#turn-1")
    turn_1.get_by_text("Edit", exact=True).click()
    turn_1.get_by_label("Turn 1 text").fill(EDITED)
    turn_1.get_by_role("button", name="Save edit").click()
    expect(page.get_by_text("Turn 1 saved.")).to_be_visible()
    expect(page.locator("#turn-1")).to_contain_text(EDITED)
    expect(page.locator("#turn-1")).to_contain_text("edited by expert")

    old_turn_4 = page.locator("#turn-4 > p").first.inner_text()
    claude_server.latency = 3.0  # the regeneration's Claude call takes a while: the page shows it running
    page.locator("#turn-4").get_by_role("button", name="Regenerate from here").click()
    expect(page.get_by_text("Regeneration from turn 4 started")).to_be_visible()
    expect(page.get_by_text("A regeneration is running")).to_be_visible()
    history = page.get_by_role("region", name="Review history")
    expect(history).to_contain_text("Regenerate", timeout=LONG)  # the note polls; the page reloads when done
    expect(page.get_by_text("A regeneration is running")).to_have_count(0)
    claude_server.latency = 0.0
    expect(page.locator("#turn-1")).to_contain_text(EDITED)  # turns before 4 are kept, with the edit
    assert page.locator("#turn-4 > p").first.inner_text() != old_turn_4
    screenshot(page, "04-conversation")

    # Training files take enriched conversations only; the worker enriches after every generation/regeneration.
    _wait_for(
        lambda: Conversation.objects.filter(owner=expert, enrichment_status="completed").count() == 3,
        60,
        "the enrichment of the three conversations",
    )

    # --- reviewer: approve everything pending from the queue, with the keyboard ---------------------------------
    reviewer_context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    try:
        review = reviewer_context.new_page()
        review.set_default_timeout(15_000)
        _log_in(review, reviewer.username)
        _nav(review, "Review")
        expect(review.get_by_role("heading", name="Review queue")).to_be_visible()
        expect(review.get_by_text("3 pending")).to_be_visible()
        screenshot(review, "05-review-queue")
        for remaining in (2, 1, 0):
            review.wait_for_load_state("load")  # static/js/review.js (deferred) handles the shortcuts
            with review.expect_navigation():
                review.keyboard.press("a")  # approve the current entry; the queue comes back
            expect(review.get_by_text("approve recorded")).to_be_visible()
            expect(review.get_by_text(f"{remaining} pending")).to_be_visible()
        expect(review.get_by_text("Nothing is waiting for review.")).to_be_visible()
    finally:
        reviewer_context.close()
    assert Conversation.objects.filter(owner=expert, status="approved").count() == 3

    # --- expert: the approved conversations → a training file → its chat JSONL ---------------------------------
    _nav(page, "Conversations")
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()
    page.get_by_label("Select all on this page").check()
    page.get_by_label("New training file").fill("Journey file")
    page.get_by_role("button", name="Create training file").click()
    expect(page.get_by_role("heading", name="Created “Journey file”")).to_be_visible()
    expect(page.get_by_role("heading", name="Added (3)")).to_be_visible()
    page.get_by_role("link", name="Open the training file").click()
    chat_jsonl = page.get_by_role("link", name="chat-jsonl")
    expect(chat_jsonl).to_be_visible(timeout=LONG)  # the versions block polls, then reloads the page
    screenshot(page, "06-training-file")
    with page.expect_download() as download_info:
        chat_jsonl.click()
    lines = Path(download_info.value.path()).read_text(encoding="utf-8").splitlines()
    examples = [json.loads(line) for line in lines if line.strip()]
    assert len(examples) == 3
    for example in examples:
        roles = [message["role"] for message in example["messages"]]
        assert roles[-1] == "assistant" and "user" in roles, roles
    assert any(EDITED in message["content"] for example in examples for message in example["messages"])

    # --- expert: import it as a dataset, read the validation report --------------------------------------------
    page.get_by_role("button", name="Import as dataset").click()
    expect(page.get_by_text("validation has started")).to_be_visible()
    expect(page.get_by_role("heading", name="Statistics")).to_be_visible(timeout=LONG)  # reloads when checked
    status_block = page.locator("#dataset-status")
    expect(status_block).to_contain_text("Ready")
    expect(status_block).to_contain_text("3 examples")
    expect(page.get_by_role("heading", name="Issues")).to_be_visible()
    screenshot(page, "07-dataset-report")

    # --- expert: configure a job on the tiny model -------------------------------------------------------------
    page.get_by_role("link", name="Start training").click()
    expect(page.get_by_role("heading", name="Configure training")).to_be_visible()
    page.get_by_label("Name").fill("Journey adapter")
    page.get_by_label("Base model").select_option(str(BaseModel.objects.get(hf_id=TINY_TEST_MODEL_HF_ID).pk))
    estimate = page.locator("#estimate")
    page.get_by_role("radio", name=re.compile(r"^Balanced")).check()  # a preset card
    expect(estimate).to_contain_text("3 epochs")  # the preset's values, synchronised into the fields
    page.get_by_text("Advanced hyperparameters").click()
    before = estimate.inner_text()
    page.get_by_role("spinbutton", name="Epochs", exact=True).fill("2")
    expect(estimate).to_contain_text("2 epochs")  # the live estimate follows the field
    assert estimate.inner_text() != before
    page.get_by_role("spinbutton", name="Batch size", exact=True).fill("1")
    page.get_by_role("spinbutton", name="Gradient accumulation", exact=True).fill("1")
    page.get_by_role("spinbutton", name="Learning rate", exact=True).fill("0.001")
    # Long enough for whole conversations: the tiny model's tokenizer spends about a token per character.
    page.get_by_role("spinbutton", name="Max sequence length", exact=True).fill("2048")
    expect(estimate).to_contain_text("batch 1 × 1")
    expect(estimate).to_contain_text("2,048 tokens")
    expect(page.get_by_role("checkbox", name=re.compile("Customise"))).to_be_checked()  # editing ticks it
    screenshot(page, "08-training-configure")

    from training.services.local import DatabaseReporter

    report_metric = DatabaseReporter.metric

    def paced_metric(self, step, epoch, **values):
        report_metric(self, step, epoch, **values)
        time.sleep(STEP_PACE_SECONDS)

    monkeypatch.setattr(DatabaseReporter, "metric", paced_metric)
    page.get_by_role("button", name="Start training").click()

    # --- expert: watch the monitor: the loss chart gains points while the job runs, then completes -------------
    expect(page.get_by_role("heading", name="Journey adapter")).to_be_visible()
    live = page.locator("#job-live")
    try:
        expect(live.get_by_role("status")).to_contain_text("Running", timeout=LONG)
        first = page.wait_for_function(f"() => {{ const s = ({CHART_STATE})(); return s.points && s; }}", timeout=LONG)
        first = first.json_value()
        later = page.wait_for_function(
            f"(n) => {{ const s = ({CHART_STATE})(); return (s.points > n || !s.running) && s; }}",
            arg=first["points"],
            timeout=LONG,
        ).json_value()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\njob: {_job_state()}") from exc
    assert first["running"] and later["running"] and later["points"] > first["points"], (first, later, _job_state())
    expect(page.get_by_role("link", name="View the model")).to_be_visible(timeout=LONG)  # reloads when terminal
    expect(live.get_by_role("status")).to_contain_text("Completed")
    expect(live).to_contain_text("100%")
    final = page.evaluate(CHART_STATE)["points"]
    assert final >= later["points"], (later, final)
    screenshot(page, "09-training-monitor")

    # --- expert: the model and its files -----------------------------------------------------------------------
    page.get_by_role("link", name="View the model").click()
    expect(page.get_by_role("heading", name="Files")).to_be_visible()
    screenshot(page, "10-model")
    files = page.get_by_role("row").filter(has=page.get_by_role("link", name="Download"))
    downloaded: dict[str, Path] = {}
    for i in range(files.count()):
        with page.expect_download() as download_info:
            files.nth(i).get_by_role("link", name="Download").click()
        download = download_info.value
        downloaded[download.suggested_filename] = Path(download.path())
    assert {"adapter_model.safetensors", "adapter_config.json"} <= set(downloaded), sorted(downloaded)
    assert downloaded["adapter_model.safetensors"].stat().st_size > 1000
    assert json.loads(downloaded["adapter_config.json"].read_text())["r"] == 16

    # --- expert: costs and notifications -----------------------------------------------------------------------
    _nav(page, "Costs")
    expect(page.get_by_role("heading", name="Costs", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Spend per day")).to_be_visible()
    screenshot(page, "11-costs")

    _nav(page, "Notifications")
    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    for title in (
        "Batch “Journey batch” completed",
        "Dataset “Journey file v1” is ready",
        "Training “Journey adapter” completed",
        "Adapter “Journey adapter” is ready",
    ):
        expect(page.get_by_text(title)).to_be_visible()
    screenshot(page, "12-notifications")

    print(
        f"journey: {time.monotonic() - started:.1f} s; loss chart {first['points']} → {later['points']} points "
        f"while running, {final} at the end"
    )
