"""Every kind of page in a real Chromium under the site's Content-Security-Policy.

The ``page`` fixture (conftest) fails a test whose pages broke the policy or threw a
JavaScript error; these tests walk the portal, the API docs and the staff admin, and
check that the behaviour moved out of inline scripts still works.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.views import LoginView
from playwright.sync_api import Page, expect

from accounts import services
from accounts.models import Membership, User
from tests.browser.conftest import BrowserLog, login, screenshot

TEAM = "own-team"
# path, the h1 it shows, screenshot name (or None)
ADMIN_PAGES = [
    (f"/teams/{TEAM}/", "Own Team", "csp-team-home.png"),
    (f"/teams/{TEAM}/users/", "User Management", "csp-member-list.png"),
    (f"/teams/{TEAM}/users/invite/", "Invite a user", None),
    (f"/teams/{TEAM}/users/import/", None, None),
    (f"/teams/{TEAM}/settings/", "Settings", "csp-settings.png"),
    (f"/teams/{TEAM}/settings/activity/", "Settings", None),
    (f"/teams/{TEAM}/settings/api-keys/", "Settings", "csp-api-keys.png"),
    (f"/teams/{TEAM}/settings/alerts/", "Settings", None),
    ("/notifications/", None, "csp-notifications.png"),
    ("/account/", None, None),
    ("/account/password/", None, None),
    ("/no-such-page/", "Page not found", None),
]


def assert_csp_header(page: Page, path: str) -> str:
    response = page.goto(path)
    assert response is not None
    policy = response.headers.get("content-security-policy")
    assert policy, f"{path} answered without a Content-Security-Policy"
    return policy


def test_sign_in_page_is_clean(page: Page, live_server, browser_log: BrowserLog):
    assert_csp_header(page, "/auth/login/")
    expect(page.get_by_label("E-mail address")).to_be_focused()
    screenshot(page, "csp-sign-in.png")
    assert browser_log.problems() == []


def test_the_fixture_hears_a_violation(page: Page, live_server, browser_log: BrowserLog):
    """The check the ``page`` fixture makes at teardown sees what the policy blocks."""
    page.goto("/auth/login/")
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.inlineRan = true";
            document.body.append(script);
            document.body.setAttribute("style", "background: red");
        }"""
    )
    for _ in range(50):
        if len(browser_log.csp_violations) >= 2:
            break
        page.wait_for_timeout(100)
    assert page.evaluate("window.inlineRan") is None
    violations = "\n".join(browser_log.csp_violations)
    assert "script-src" in violations and "style-src" in violations, violations
    browser_log.console.clear()  # blocked on purpose: the fixture must not fail this test


def test_every_admin_page_is_clean(page: Page, live_server, personas, browser_log: BrowserLog):
    member = Membership.objects.get(team=personas.team, user=personas.member)
    services.notify(users=[personas.primary_admin], team=personas.team, kind="low_balance", title="Low", body="…")
    login(page, live_server, personas.primary_admin.email, personas.password)
    for path, heading, shot in [*ADMIN_PAGES, (f"/teams/{TEAM}/users/{member.pk}/", None, "csp-member-detail.png")]:
        assert_csp_header(page, path)
        if heading:
            expect(page.locator("h1")).to_have_text(heading)
        if shot:
            screenshot(page, shot)
        assert browser_log.problems() == [], path


def test_sales_rep_customer_pages_are_clean(page: Page, live_server, personas, browser_log: BrowserLog):
    login(page, live_server, personas.sales_rep.email, personas.password)
    assert_csp_header(page, "/customers/")
    expect(page.locator("h1")).to_have_text("Customers")
    screenshot(page, "csp-customers.png")
    assert_csp_header(page, f"/customers/{TEAM}/")
    expect(page.locator("h1")).to_contain_text("Own Team")
    assert browser_log.problems() == []


def test_new_api_key_is_copied_with_the_button(page: Page, live_server, personas):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    login(page, live_server, personas.primary_admin.email, personas.password)
    page.goto(f"/teams/{TEAM}/settings/api-keys/")
    page.get_by_label("Name").fill("Build server")
    page.get_by_role("button", name="Create key").click()

    key = page.get_by_role("textbox", name="API key")
    secret = key.input_value()
    assert secret
    button = page.get_by_role("button", name="Copy key")
    expect(button).to_be_visible()  # shown by portal.js: the clipboard API is there
    button.click()
    expect(page.locator("#copy-api-key-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    screenshot(page, "csp-api-key-created.png")

    # Focusing the field selects the whole key, for copying by hand.
    page.locator("h1").click()
    key.focus()
    assert key.evaluate("input => [input.selectionStart, input.selectionEnd]") == [0, len(secret)]

    # Revoking asks first: the disclosure's summary is a button, without a list marker.
    revoke = page.locator("details.confirm-revoke").first
    summary = revoke.locator("summary")
    assert summary.evaluate("el => getComputedStyle(el).listStyleType") == "none"
    summary.click()
    expect(revoke.get_by_role("button", name=re.compile(r"^Revoke “Build server”"))).to_be_visible()
    screenshot(page, "csp-api-key-revoke-open.png")


def test_narrow_screen_menu_toggle_opens_and_closes_the_navigation(page: Page, live_server, personas):
    page.set_viewport_size({"width": 390, "height": 800})
    login(page, live_server, personas.primary_admin.email, personas.password)
    toggle = page.locator("button.nav-toggle")
    nav = page.locator("nav#sidenav")
    expect(toggle).to_be_visible()
    expect(nav).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")

    toggle.click()
    expect(nav).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(nav.get_by_role("link", name="User Management")).to_be_visible()
    page.wait_for_timeout(300)  # the slide-in transition
    screenshot(page, "csp-narrow-menu-open.png")

    toggle.click()
    expect(nav).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")


def test_api_docs_render_under_the_policy(page: Page, live_server, browser_log: BrowserLog):
    policy = assert_csp_header(page, "/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("FlexAdmin API")
    # An operation opens and shows its parameters (Swagger UI's own scripts run).
    page.locator(".opblock-summary").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()
    screenshot(page, "csp-api-docs.png", full_page=False)
    assert "'unsafe-inline'" not in policy
    assert browser_log.problems() == []


def test_server_error_page_is_styled_from_the_stylesheet(page: Page, live_server, monkeypatch, browser_log: BrowserLog):
    def fail(*args, **kwargs):
        raise RuntimeError("a bug, on purpose")

    monkeypatch.setattr(LoginView, "get_context_data", fail)
    response = page.goto("/auth/login/")
    assert response is not None and response.status == 500
    assert response.headers.get("content-security-policy")
    expect(page.locator("h1")).to_have_text("Something went wrong on our side")
    # portal.css applies (it replaced the page's inline <style>): the public card's white box.
    card = page.locator(".public-card")
    assert card.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(255, 255, 255)"
    screenshot(page, "csp-server-error.png")
    assert browser_log.problems() == []


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_superuser("staff@flexadmin.example", "staff-password-0451", first_name="Stef")


def test_staff_admin_is_clean(page: Page, live_server, personas, staff, browser_log: BrowserLog):
    assert_csp_header(page, "/admin/login/")
    screenshot(page, "csp-admin-login.png")
    page.locator("#id_username").fill(staff.email)
    page.locator("#id_password").fill("staff-password-0451")
    page.locator("input[type=submit]").click()
    expect(page.locator("#site-name")).to_contain_text("FlexAdmin staff")

    for path in [
        "/admin/",
        "/admin/accounts/user/",
        f"/admin/accounts/user/{personas.member.pk}/change/",
        "/admin/accounts/team/",
        "/admin/billing/rate/",
        "/admin/billing/rate/add/",
        "/admin/billing/ledgerentry/",
        "/admin/accounts/apikey/",
    ]:
        assert_csp_header(page, path)
        assert browser_log.problems() == [], path
    services.create_api_key(team=personas.team, name="CI", actor=None)
    page.goto("/admin/accounts/apikey/")
    # The admin's own scripts run: the select-all box ticks every row and counts them.
    page.locator("#action-toggle").check()
    expect(page.locator("#result_list tbody input.action-select").first).to_be_checked()
    expect(page.locator(".action-counter")).to_contain_text("1 of 1 selected")
    screenshot(page, "csp-admin-changelist.png")
    page.goto(f"/admin/accounts/user/{personas.member.pk}/change/")
    screenshot(page, "csp-admin-change.png")
