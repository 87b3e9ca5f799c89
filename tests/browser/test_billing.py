"""Billing & Orders > Flex tokens and My usage in Chromium: a report viewer reads the balance
page and finds nothing that writes; a member sees only My usage, and only their own; the
pages work from the keyboard, at 1280 px and at a phone's width."""

from __future__ import annotations

import re
from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps
from django.utils import timezone
from playwright.sync_api import Page, expect

from billing import services
from billing.models import Rate
from tests.browser.conftest import login, nav_labels, screenshot
from tests.factories import MembershipFactory, UserFactory

PHONE = {"width": 390, "height": 844}
D = timedelta(days=1)
H = timedelta(hours=1)


@pytest.fixture
def rate_sheet(live_server):
    """The published rate sheet. Browser tests run on a transactional database, which is
    emptied after each test, data migrations' rows included: put it back when it is gone."""
    if not Rate.objects.exists():
        import_module("billing.migrations.0002_rate_sheet").install(apps, None)


@pytest.fixture
def history(personas, rate_sheet):
    """Packs in every state and a month of usage, relative to now (the live server's clock)."""
    team, now = personas.team, timezone.now()
    colleague = UserFactory(email="colleague@own.example", first_name="Cole", last_name="League")
    MembershipFactory(user=colleague, team=team)
    for user in (personas.member, colleague):
        services.assign_flex(team=team, user=user, products="all", actor=personas.primary_admin, at=now - 500 * D)

    def buy(tokens: int, at, reference: str) -> None:
        services.record_purchase(team=team, reference=reference, tokens=tokens, purchased_at=at, now=at)

    buy(1_000, now - 400 * D, "PO-2025-OLD")
    buy(3_000, now - 300 * D, "PO-2025-SOON")  # expires within 90 days
    buy(5_000, now - 20 * D, "PO-2026-NEW")
    services.expire_packs(now=now)
    for back in range(1, 25):
        start = now - back * D - timedelta(minutes=back)
        who = personas.member if back % 3 else colleague
        event = {"id": f"day-{back}", "user": who.email, "product": "revit"}
        [result] = services.log_usage(
            team=team,
            events=[{**event, "started_at": start.isoformat(), "ended_at": (start + 2 * H).isoformat()}],
            now=start + 2 * H,
        )
        assert result["status"] == "charged", result
    job = {"id": "job-1", "user": colleague.email, "product": "cfd-simulation", "variant": "complex"}
    [result] = services.log_usage(team=team, events=[{**job, "started_at": (now - 2 * D).isoformat()}], now=now - 2 * D)
    assert result["status"] == "charged", result
    services.refund_usage(team=team, event_id="job-1", now=now - 2 * D + H)
    return team


def test_report_viewer_reads_the_balance_page_and_finds_no_control_that_writes(
    page: Page, live_server, personas, history
):
    login(page, live_server, personas.report_viewer.email, personas.password)
    assert nav_labels(page) == ["Home", "Billing & Orders", "Reporting", "My usage"]

    # The home page's balance card leads to Billing & Orders.
    card = page.locator(".balance-card")
    expect(card).to_contain_text("available")
    expect(card).to_contain_text(re.compile(r"Next expiry: [\d,]+ tokens on \w{3} \d+, \d{4}"))
    card.get_by_role("link", name="Balance, packs and forecast").click()

    expect(page).to_have_url(re.compile(r"/teams/own-team/billing/$"))
    expect(page.locator("h1")).to_have_text("Flex tokens")
    expect(page.locator("nav#sidenav a[aria-current='page']")).to_have_text("Billing & Orders")
    main = page.locator("main")
    expect(main.get_by_role("img", name=re.compile(r"tokens available"))).to_be_visible()
    expect(main.locator("dl.figures")).to_contain_text("Available")
    expect(main.get_by_role("heading", name="Run-out forecast")).to_be_visible()
    expect(main).to_contain_text("tokens a day")
    expect(main.locator("#packs tbody tr")).to_have_count(3)
    expect(main.locator("#packs tr.row-expiring")).to_have_count(1)
    expect(main.locator("#packs tr.row-expiring")).to_contain_text("PO-2025-SOON")
    expect(main.locator("#events tbody")).to_contain_text("Refunded")
    expect(main.locator("#events tbody")).not_to_contain_text("Usage")

    # Nothing on the page writes: no POST form, and the only buttons apply GET filters.
    assert main.locator("form[method='post']").count() == 0
    assert {f.get_attribute("method") for f in main.locator("form").all()} == {"get"}
    assert main.get_by_role("button").all_inner_texts() == ["Apply", "Apply"]
    assert main.locator("input:not([type='hidden']), textarea").count() == 0
    main.get_by_text("How this is computed").click()
    expect(main).to_contain_text("earliest expiry first")
    screenshot(page, "billing-tokens-report-viewer.png")

    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.locator("h1")).to_have_text("Flex tokens")
    # At a phone's width nothing but the tables scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "billing-tokens-phone.png")


def test_the_filters_work_from_the_keyboard(page: Page, live_server, personas, history):
    login(page, live_server, personas.primary_admin.email, personas.password)
    page.goto(f"{live_server.url}/teams/own-team/billing/")

    status = page.get_by_label("Status", exact=True)
    status.focus()
    # The focused control shows it (a focus ring).
    assert page.evaluate("getComputedStyle(document.activeElement).boxShadow") != "none"
    status.select_option("expired")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Apply").first).to_be_focused()
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"\?status=expired#packs$"))
    expect(page.locator("#packs tbody tr")).to_have_count(1)
    expect(page.locator("#packs tbody")).to_contain_text("PO-2025-OLD")
    # The other table is as it was; then filter it too, keeping the first filter.
    page.get_by_label("Event", exact=True).select_option("refund")
    page.locator("#events").get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"status=expired&kind=refund#events$"))
    expect(page.locator("#packs tbody tr")).to_have_count(1)
    expect(page.locator("#events tbody tr")).to_have_count(1)
    screenshot(page, "billing-tokens-filtered.png", full_page=False)

    page.goto(f"{live_server.url}/teams/own-team/")
    screenshot(page, "billing-home-card-admin.png")


def test_a_member_sees_my_usage_only_and_only_their_own(page: Page, live_server, personas, history):
    login(page, live_server, personas.member.email, personas.password)
    assert nav_labels(page) == ["Home", "My usage"]
    expect(page.locator(".balance-card")).to_have_count(0)

    page.locator("nav#sidenav").get_by_role("link", name="My usage").click()

    expect(page).to_have_url(re.compile(r"/teams/own-team/my-usage/$"))
    expect(page.locator("h1")).to_have_text("My usage")
    expect(page.locator("nav#sidenav a[aria-current='page']")).to_have_text("My usage")
    main = page.locator("main")
    # 16 of the 24 Revit days were Mia's (every third day was her colleague's): 160 tokens.
    expect(main.locator("#year-h + .big")).to_have_text("160 tokens")
    products = main.locator("table").first
    expect(products.locator("tbody tr")).to_have_count(1)
    expect(products).to_contain_text("Revit")
    expect(main).not_to_contain_text("CFD")  # the colleague's job
    expect(main).not_to_contain_text("Cole")
    expect(main.get_by_role("img", name=re.compile("Bar chart"))).to_be_visible()
    expect(main).to_contain_text("All products")
    screenshot(page, "billing-my-usage-member.png")

    # Billing & Orders is not for members: an explaining 403.
    response = page.goto(f"{live_server.url}/teams/own-team/billing/")
    assert response is not None and response.status == 403
    expect(page.locator("body")).to_contain_text("can't see the team's token balance")

    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/teams/own-team/my-usage/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "billing-my-usage-phone.png")
