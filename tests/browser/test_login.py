"""Log in through the real login page in Chromium and land on the dashboard."""

from __future__ import annotations

import pytest

from tests.factories import PASSWORD, NotificationFactory, UserFactory

pytestmark = pytest.mark.browser


def test_log_in_and_see_dashboard(page, screenshot, transactional_db):
    user = UserFactory(username="expert")
    NotificationFactory.create_batch(2, owner=user)

    page.goto("/")
    assert page.url.endswith("/login/?next=/")
    page.get_by_label("Username").fill("expert")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.get_by_role("heading", name="Dashboard").wait_for()
    assert page.title() == "Dashboard · Bright Run"
    assert page.locator("#bell .badge").inner_text() == "2"
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="API tokens").is_visible()
    path = screenshot(page, "dashboard")
    assert path.stat().st_size > 5_000

    page.get_by_role("navigation", name="Main").get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    assert page.locator("#new-token").inner_text().startswith("br_")
    screenshot(page, "api-tokens")
