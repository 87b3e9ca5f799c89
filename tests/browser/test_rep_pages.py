"""The sales rep's pages in Chromium, as the demo's rep (Sam Rivera of Alder) uses them:
Customers filtered by low balance, recording a purchase (its confirmation and expiry), the
same order again, a purchase outside the contract, moving a pack between two of Alder's
customers, and the purchase planner pre-filling a purchase; then the customer's admin sees
the new pack and the notice. At 1280 px and at a phone's width (390 px)."""

from __future__ import annotations

import re
from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.demo import DEMO_PASSWORD
from accounts.models import Team
from billing import services
from billing.demo import seed_usage
from billing.management.commands.seed_demo import Command
from billing.models import EntryKind, LedgerEntry, Rate, TokenPack
from tests.browser.conftest import login, screenshot

PHONE = {"width": 390, "height": 844}
REP = "sam.rivera@alder.example"
INITECH_ADMIN = "nina.park@initech.example"


@pytest.fixture
def demo(live_server):
    """The demo's people and teams, and the history of Alder's two small customers (Initech
    runs low, Northwind is healthy): what ``seed_demo`` makes for them, in a few seconds."""
    if not Rate.objects.exists():  # the transactional database lost the data migration's rows
        import_module("billing.migrations.0002_rate_sheet").install(apps, None)
    Command()._seed()
    seed_usage(slugs={"initech-architects", "northwind-survey"})
    # Acme's long history is left out (it takes a while); a pack expiring soon stands for it.
    at = timezone.now() - timedelta(days=300)
    services.record_purchase(
        team=Team.objects.get(slug="acme-engineering"),
        reference="ACME-ENGINEERING-SOON",
        tokens=3000,
        purchased_at=at,
        now=at,
        notify_admins=False,
    )


def fits_the_phone(page: Page) -> None:
    """Nothing but a table or a chart scrolls sideways at a phone's width."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_the_rep_filters_customers_by_low_balance(page: Page, live_server, demo):
    login(page, live_server, REP, DEMO_PASSWORD)
    expect(page.locator("h1")).to_have_text("Customers")
    table = page.locator("table.table-customers")
    for name in ("Acme Engineering", "Initech Architects", "Northwind Survey"):
        expect(table).to_contain_text(name)
    expect(table).not_to_contain_text("Globex")  # another reseller's customer
    acme = table.locator("tr", has_text="Acme Engineering")
    expect(acme.locator(".badge-soon")).to_have_text("3,000")  # expiring within 90 days
    screenshot(page, "rep-customers.png")

    page.get_by_label("Low balance only").check()
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"low=on"))
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Initech Architects")
    expect(rows.first).to_contain_text("Low")
    screenshot(page, "rep-customers-low.png")

    page.set_viewport_size(PHONE)
    page.reload()
    fits_the_phone(page)
    screenshot(page, "rep-customers-low-phone.png")


def test_the_rep_records_a_purchase_then_the_same_order_again_and_one_outside_the_contract(
    page: Page, live_server, demo
):
    login(page, live_server, REP, DEMO_PASSWORD)
    page.get_by_role("link", name="Initech Architects").click()
    expect(page.locator("h1")).to_have_text("Initech Architects")
    expect(page.get_by_role("link", name="Usage reports")).to_be_visible()
    page.get_by_role("link", name="Record a purchase").click()

    page.get_by_label("Tokens").fill("2000")
    page.get_by_label("Order reference").fill("ALDER-2026-114")
    page.get_by_label("Price").fill("1800")
    page.get_by_label("Currency").fill("USD")
    page.get_by_role("button", name="Continue").click()
    confirm = page.locator("main")
    expect(confirm).to_contain_text("Check the purchase")
    expect(confirm.locator("dd").filter(has_text=re.compile(r"\d{4} \d\d:\d\d E[SD]T"))).not_to_have_count(0)
    expires = confirm.locator("dt:text('Expires') + dd")
    expect(expires).to_contain_text(re.compile(r"[A-Z][a-z]{2} \d{1,2}, \d{4}"))
    assert TokenPack.objects.filter(reference="ALDER-2026-114").count() == 0  # nothing yet
    screenshot(page, "rep-purchase-confirm.png")
    page.set_viewport_size(PHONE)
    fits_the_phone(page)
    screenshot(page, "rep-purchase-confirm-phone.png")
    page.set_viewport_size({"width": 1280, "height": 800})

    page.get_by_role("button", name="Record the purchase").click()
    expect(page.locator(".message-success")).to_contain_text("Pack ALDER-2026-114 of 2,000 tokens recorded")
    expect(page.locator("#packs")).to_contain_text("ALDER-2026-114")
    screenshot(page, "rep-purchase-recorded.png")

    # The same order again: told it exists, with a link to the pack; no second pack.
    page.goto(f"{live_server.url}/customers/initech-architects/purchase/")
    page.get_by_label("Tokens").fill("2000")
    page.get_by_label("Order reference").fill("ALDER-2026-114")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("h2#confirm-h")).to_have_text("Already recorded")
    expect(page.locator("main")).to_contain_text("Order ALDER-2026-114 was already recorded")
    link = page.get_by_role("link", name="pack ALDER-2026-114")
    expect(link).to_have_attribute("href", re.compile(r"#pack-\d+$"))
    screenshot(page, "rep-purchase-already-recorded.png")
    assert TokenPack.objects.filter(reference="ALDER-2026-114").count() == 1
    link.click()
    expect(page.locator("tr:target")).to_contain_text("ALDER-2026-114")

    # Before the contract (Jan 1, 2025): refused with the reason, nothing written.
    page.goto(f"{live_server.url}/customers/initech-architects/purchase/")
    page.get_by_label("Tokens").fill("500")
    page.get_by_label("Order reference").fill("ALDER-2024-001")
    page.get_by_label("Purchased at").fill("2024-12-31T10:00")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("main")).to_contain_text(
        "The purchase date 2024-12-31 lies outside the contract (2025-01-01 to 2028-06-30)."
    )
    expect(page.locator("main")).not_to_contain_text("Check the purchase")
    screenshot(page, "rep-purchase-outside-contract.png")
    assert not TokenPack.objects.filter(reference="ALDER-2024-001").exists()

    # The customer's admin sees the new pack and the notice.
    page.context.clear_cookies()
    login(page, live_server, INITECH_ADMIN, DEMO_PASSWORD)
    page.goto(f"{live_server.url}/teams/initech-architects/billing/")
    expect(page.locator("main")).to_contain_text("ALDER-2026-114")
    screenshot(page, "rep-admin-sees-the-pack.png")
    page.goto(f"{live_server.url}/notifications/")
    expect(page.locator("main")).to_contain_text("New pack: 2,000 tokens for Initech Architects")
    expect(page.locator("main")).to_contain_text("Alder Software Partners recorded pack ALDER-2026-114")
    screenshot(page, "rep-admin-notice.png")


def test_the_rep_moves_a_pack_between_two_customers_of_alder(page: Page, live_server, demo):
    pack = TokenPack.objects.filter(team__slug="northwind-survey", remaining__gt=0).order_by("-purchased_at").first()
    login(page, live_server, REP, DEMO_PASSWORD)
    page.goto(f"{live_server.url}/customers/northwind-survey/")
    page.get_by_role("link", name="Move tokens").click()
    page.get_by_label("Pack").select_option(str(pack.pk))
    page.get_by_label("Move to").select_option(label="Initech Architects")
    page.get_by_role("button", name="Continue").click()
    confirm = page.locator("main")
    expect(confirm).to_contain_text("Check the move")
    expect(confirm.locator("dt:text-is('From') + dd")).to_have_text("Northwind Survey")
    expect(confirm.locator("dt:text-is('To') + dd")).to_have_text("Initech Architects")
    expect(confirm.locator("dt:text('Expiry they keep') + dd")).to_contain_text(f"{pack.expires_at.year}")
    screenshot(page, "rep-move-confirm.png")
    page.get_by_role("button", name=re.compile(r"^Move .* tokens to Initech Architects$")).click()
    expect(page.locator(".message-success")).to_contain_text(f"of pack {pack.reference} moved from Northwind Survey")
    # Both sides of the ledger show the move.
    expect(page.locator("#events")).to_contain_text(pack.reference)
    screenshot(page, "rep-move-done-from.png")
    page.goto(f"{live_server.url}/customers/initech-architects/#events")
    expect(page.locator("#events")).to_contain_text(pack.reference)
    expect(page.locator("#packs")).to_contain_text(pack.reference)
    screenshot(page, "rep-move-done-to.png")
    kinds = set(
        LedgerEntry.objects.filter(pack=pack, kind__in=[EntryKind.MOVE_OUT, EntryKind.MOVE_IN]).values_list(
            "kind", "team__slug"
        )
    )
    assert kinds == {(EntryKind.MOVE_OUT, "northwind-survey"), (EntryKind.MOVE_IN, "initech-architects")}


def test_the_rep_opens_the_planner_and_prefills_a_purchase(page: Page, live_server, demo):
    login(page, live_server, REP, DEMO_PASSWORD)
    page.goto(f"{live_server.url}/customers/initech-architects/")
    page.get_by_role("link", name="Purchase planner").click()
    expect(page.locator("h1")).to_have_text("Purchase planner for Initech Architects")
    main = page.locator("main")
    expect(main.locator("svg.line-chart polyline.line-with")).to_have_count(1)
    expect(main.locator("table.table-projection tbody tr").first).to_be_visible()
    expect(main.locator("#assumptions")).to_contain_text("Usage goes on at")
    screenshot(page, "rep-planner.png")
    page.set_viewport_size(PHONE)
    page.reload()
    fits_the_phone(page)
    screenshot(page, "rep-planner-phone.png")
    page.locator("#proposals").scroll_into_view_if_needed()
    screenshot(page, "rep-planner-phone-proposals.png", full_page=False)
    page.locator("#projection").scroll_into_view_if_needed()
    screenshot(page, "rep-planner-phone-chart.png", full_page=False)
    page.set_viewport_size({"width": 1280, "height": 800})

    first = main.locator("table.table-proposals tbody tr").first
    tokens = re.sub(r"\D", "", first.locator("td.num").first.inner_text())
    first.get_by_role("link", name=re.compile("this purchase")).click()
    expect(page.locator("h1")).to_have_text("Record a purchase for Initech Architects")
    expect(page.get_by_label("Tokens")).to_have_value(tokens)
    expect(page.get_by_label("Note")).to_have_value(re.compile("Proposed by the purchase planner"))
    screenshot(page, "rep-planner-prefilled-purchase.png")
