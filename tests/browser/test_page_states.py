"""Page states in real Chromium: request errors, loading, live lists, confirmations and the narrow-screen menu.

HTMX failures are made at the edge of the browser (Playwright answers the request instead of the server); the
pages, the server and static/js/app.js are the real ones.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from brightrun import services as brightrun_services
from brightrun.models import ApiToken
from tests.factories import PASSWORD, DatasetFactory, GenerationBatchFactory, UserFactory
from training_files.models import Export

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(page, username: str = "expert") -> None:
    page.goto(reverse("login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Dashboard", exact=True).wait_for()


def test_a_failing_refresh_shows_a_dismissible_banner_that_clears_itself(page):
    user = UserFactory(username="expert")
    batch = GenerationBatchFactory(owner=user, status="running", total_items=3)
    _login(page)
    page.goto(reverse("conversations:batch_detail", args=[batch.pk]))
    progress = f"**{reverse('conversations:batch_progress', args=[batch.pk])}"
    banner = page.locator("#request-errors .request-error")

    page.route(progress, lambda route: route.fulfill(status=500, body="boom"))
    banner.wait_for()
    assert "500" in banner.inner_text() and page.locator("#request-errors").get_attribute("aria-live") == "assertive"
    page.unroute(progress)
    banner.wait_for(state="detached")  # the next poll answered: the message goes away by itself

    page.route(progress, lambda route: route.abort())
    banner.wait_for()
    assert "Could not reach the server" in banner.inner_text()
    banner.get_by_role("button", name="Dismiss").click()
    page.wait_for_timeout(2500)  # still failing, but a dismissed message is not shown again on every poll
    assert banner.count() == 0
    page.unroute(progress)


def test_an_ended_session_is_reported_instead_of_swapping_the_login_form_in(page):
    user = UserFactory(username="expert")
    batch = GenerationBatchFactory(owner=user, status="running", total_items=3)
    _login(page)
    page.goto(reverse("conversations:batch_detail", args=[batch.pk]))
    page.context.clear_cookies()  # the session ends (logged out elsewhere, expired)
    banner = page.locator("#request-errors .request-error")
    banner.wait_for()
    assert "Your session has ended" in banner.inner_text()
    assert banner.get_by_role("link", name="Log in again").get_attribute("href").startswith(reverse("login"))
    assert page.locator("#batch-progress").count() == 1 and page.locator("main #id_username").count() == 0


def test_filtering_shows_a_loading_state_until_the_results_arrive(page):
    user = UserFactory(username="expert")
    DatasetFactory(owner=user, name="Ready set")
    DatasetFactory(owner=user, name="Broken set", status="invalid")
    _login(page)
    page.goto(reverse("datasets:list"))
    held = []
    page.route("**/datasets/?*", lambda route: held.append(route))
    page.get_by_label("Status").select_option("invalid")
    page.wait_for_function("() => document.querySelector('form.filters').classList.contains('htmx-request')")
    indicator = page.locator("form.filters .htmx-indicator")
    assert indicator.is_visible() and indicator.inner_text() == "Loading…"
    # The results fade over a 0.2 s transition: wait for it rather than reading the first frame.
    page.wait_for_function("() => parseFloat(getComputedStyle(document.querySelector('#results')).opacity) < 1")
    held[0].continue_()
    page.locator("#results", has_text="Broken set").wait_for()
    indicator.wait_for(state="hidden")
    assert page.locator("#results", has_text="Ready set").count() == 0


def test_a_running_export_updates_without_a_reload(page):
    user = UserFactory(username="expert")
    export = Export.objects.create(owner=user, scope="all_approved", format="csv", status="running")
    _login(page)
    page.goto(reverse("training_files:exports"))
    row = page.locator(f"#export-{export.pk}")
    assert "Running" in row.inner_text() and row.locator("progress").count() == 1
    page.evaluate("window.__sameDocument = true")
    Export.objects.filter(pk=export.pk).update(status="completed", size=120, storage_key="k", filename="x.csv")
    row.get_by_role("link", name="Download").wait_for(timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True  # refreshed in place, not reloaded
    assert row.locator("progress").count() == 0


def test_revoking_a_token_asks_first(page):
    user = UserFactory(username="expert")
    brightrun_services.api_token_create(owner=user, name="laptop")
    _login(page)
    page.goto(reverse("accounts:tokens"))
    questions = []

    def answer(dialog, accept: bool) -> None:
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    page.get_by_role("button", name="Revoke").click()
    assert "Revoke this token?" in questions[0]
    assert ApiToken.objects.get().revoked_at is None  # cancelled: nothing was posted
    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    page.get_by_role("button", name="Revoke").click()
    page.get_by_text("Token 'laptop' revoked.").wait_for()
    assert ApiToken.objects.get().revoked_at is not None


def test_the_menu_folds_on_a_phone_and_works_from_the_keyboard(page):
    UserFactory(username="expert")
    _login(page)
    page.set_viewport_size({"width": 390, "height": 844})
    menu = page.get_by_role("button", name="Menu")
    nav = page.get_by_role("navigation", name="Main")
    assert menu.is_visible() and not nav.is_visible() and menu.get_attribute("aria-expanded") == "false"
    menu.focus()
    page.keyboard.press("Enter")
    assert nav.is_visible() and menu.get_attribute("aria-expanded") == "true"
    assert nav.get_by_role("link", name="Datasets").is_visible()
    page.keyboard.press("Escape")
    assert not nav.is_visible() and menu.get_attribute("aria-expanded") == "false"
    page.set_viewport_size({"width": 1280, "height": 900})
    assert nav.is_visible() and not menu.is_visible()
    # on a fresh page the skip link is the first stop and moves focus to the content
    page.reload()
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    assert skip.evaluate("el => el === document.activeElement") and skip.is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
