"""An admin gives people Flex in the browser: one person from their page (and a usage event
sent through the API is then charged), three at once from By User (and one removed), from a
CSV file with a flex column; By Product counts them. Screenshots of every page, at 1280 px
and at a phone's 390 px, land in test-output/screenshots/."""

from __future__ import annotations

import re
from datetime import timedelta
from importlib import import_module

import pytest
import requests
from django.apps import apps as django_apps
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts import services as account_services
from accounts.models import Membership
from billing import services as billing_services
from billing.models import FlexAssignment, Rate, TokenPack
from tests.browser.conftest import login, screenshot
from tests.factories import MembershipFactory, UserFactory

TEAM = "own-team"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def shoot(page: Page, name: str) -> None:
    """The page at 1280 px and at a phone's width."""
    screenshot(page, f"{name}.png")
    page.set_viewport_size(PHONE)
    screenshot(page, f"{name}-phone.png")
    page.set_viewport_size(DESKTOP)


def current(user) -> FlexAssignment | None:
    return FlexAssignment.objects.filter(user=user, removed_at__isnull=True).first()


def row(page: Page, email: str):
    return page.locator("table tbody tr").filter(has_text=email)


@pytest.fixture(autouse=True)
def rate_sheet(live_server):
    """The live server's database is flushed after every test, the rate sheet (a data
    migration) with it: put the published rates back, as the migration wrote them."""
    if not Rate.objects.exists():
        import_module("billing.migrations.0002_rate_sheet").install(django_apps, None)


@pytest.fixture
def admin_page(page: Page, live_server, personas, rate_sheet) -> Page:
    login(page, live_server, personas.primary_admin.email, personas.password)
    page.goto(f"/teams/{TEAM}/users/")
    expect(page.locator("h1")).to_have_text("User Management")
    return page


@pytest.fixture
def crew(personas) -> list[Membership]:
    return [
        MembershipFactory(
            team=personas.team,
            user=UserFactory(email=f"crew{n}@own.example", first_name=f"Crew{n}", last_name="Member"),
        )
        for n in range(3)
    ]


def send_usage(live_server, key: str, event: dict) -> dict:
    """One usage event through the HTTP API of the running server, as a product would send it."""
    response = requests.post(
        f"{live_server.url}/api/v1/teams/{TEAM}/usage-events",
        json={"events": [event]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    return result


def test_admin_assigns_flex_to_a_member_and_their_usage_is_then_charged(admin_page: Page, live_server, personas):
    page = admin_page
    _, key = account_services.create_api_key(team=personas.team, name="Product telemetry", actor=None)
    pack, _ = billing_services.record_purchase(
        team=personas.team, reference="PO-FLEX", tokens=100, purchased_at=timezone.now() - timedelta(days=1)
    )
    job = {"user": personas.member.email, "product": "cfd-simulation", "variant": "simple", "quantity": 1}

    # Without Flex, Mia's job is refused.
    before = send_usage(live_server, key, {**job, "id": "job-1", "started_at": timezone.now().isoformat()})
    assert (before["status"], before["reason"]) == ("denied", "not_assigned")

    expect(row(page, "member@own.example")).to_contain_text("None")
    row(page, "member@own.example").get_by_role("link", name="Mia Member").click()
    expect(page.locator("h1")).to_have_text("Mia Member")
    expect(page.locator(".flex-current")).to_contain_text("No Flex")
    page.get_by_label("Only the products ticked below").check()
    page.get_by_label("AutoCAD").check()
    page.get_by_label("CFD cloud simulation").check()
    page.get_by_role("button", name="Assign Flex").click()

    expect(page.locator(".messages")).to_contain_text(
        "Mia Member may now spend tokens on: AutoCAD; CFD cloud simulation."
    )
    expect(page.locator(".flex-current")).to_contain_text("AutoCAD; CFD cloud simulation")
    history = page.get_by_role("region", name="Flex history")
    expect(history.locator("tbody tr")).to_have_count(1)
    expect(history.locator("tbody tr")).to_contain_text("Pat Primary")
    expect(history.locator("tbody tr")).to_contain_text("In force")
    shoot(page, "flex-member")

    # The same job, sent through the API once the assignment is in force, is charged.
    assigned_at = current(personas.member).assigned_at
    after = send_usage(live_server, key, {**job, "id": "job-2", "started_at": assigned_at.isoformat()})
    assert (after["status"], after["tokens"]) == ("charged", "5.00"), after
    assert TokenPack.objects.get(pk=pack.pk).remaining == 95

    # A product outside the list is still refused.
    other = send_usage(
        live_server,
        key,
        {**job, "id": "job-3", "product": "generative-design", "variant": None, "started_at": assigned_at.isoformat()},
    )
    assert (other["status"], other["reason"]) == ("denied", "not_assigned")


def test_admin_assigns_three_members_at_once_then_removes_one(admin_page: Page, personas, crew):
    page = admin_page
    page.reload()  # the crew joined after the list was opened
    for n in range(3):
        page.get_by_label(f"Select Crew{n} Member").check()
    page.get_by_role("button", name="Assign Flex…").click()

    expect(page.locator("h1")).to_have_text("Assign Flex to several users")
    page.get_by_label("Revit").check()  # ticking a product chooses "only the products ticked" (portal.js)
    expect(page.get_by_label("Only the products ticked below")).to_be_checked()
    page.get_by_label("AutoCAD").check()
    page.get_by_role("button", name="Show the changes").click()

    changes = page.get_by_role("region", name="Check who changes")
    expect(changes.locator("tbody tr")).to_have_count(3)
    for n in range(3):
        line = changes.locator("tbody tr").filter(has_text=f"crew{n}@own.example")
        expect(line).to_contain_text("None")
        expect(line).to_contain_text("AutoCAD; Revit")
        expect(line).to_contain_text("Changes")
    shoot(page, "flex-bulk-confirm")
    assert not FlexAssignment.objects.exists()  # nothing before the confirmation
    page.get_by_role("button", name="Assign Flex to 3 people").click()

    expect(page.locator("h1")).to_have_text("User Management")
    expect(page.locator(".messages")).to_contain_text("Flex (AutoCAD; Revit) assigned to 3 people.")
    for n in range(3):
        expect(row(page, f"crew{n}@own.example")).to_contain_text("AutoCAD; Revit")
        assert current(crew[n].user).products == ["autocad", "revit"]

    page.get_by_label("Select Crew1 Member").check()
    page.get_by_role("button", name="Remove Flex…").click()
    expect(page.locator("h1")).to_have_text("Remove Flex from several users")
    line = page.get_by_role("region", name="Check who changes").locator("tbody tr")
    expect(line).to_have_count(1)
    expect(line).to_contain_text("crew1@own.example")
    shoot(page, "flex-bulk-remove-confirm")
    page.get_by_role("button", name="Remove Flex from 1 person").click()

    expect(page.locator(".messages")).to_contain_text("Flex removed from 1 person.")
    expect(row(page, "crew1@own.example")).to_contain_text("None")
    expect(row(page, "crew0@own.example")).to_contain_text("AutoCAD; Revit")
    assert current(crew[1].user) is None
    assert current(crew[0].user) is not None and current(crew[2].user) is not None


def test_the_list_filters_selects_a_page_and_all_matching(admin_page: Page, personas, crew):
    page = admin_page
    billing_services.assign_flex(team=personas.team, user=personas.member, products="all", actor=None)
    page.reload()
    # The header box (shown by portal.js) ticks every row of the page.
    page.get_by_label("Select every user on this page").check()
    for n in range(3):
        expect(page.get_by_label(f"Select Crew{n} Member")).to_be_checked()
    page.get_by_label("Select every user on this page").uncheck()

    page.get_by_label("Flex", exact=True).select_option(label="Not assigned")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table tbody tr")).to_have_count(6)
    expect(page.locator("table tbody")).not_to_contain_text("member@own.example")
    shoot(page, "flex-by-user")

    page.get_by_label("Select all 6 users matching the filter").check()
    page.get_by_role("button", name="Assign Flex…").click()
    expect(page.get_by_role("region", name="Check who changes").locator("tbody tr")).to_have_count(6)
    page.get_by_role("button", name="Assign Flex to 6 people").click()
    expect(page.locator(".messages")).to_contain_text("Flex (All products) assigned to 6 people.")
    # Back on the filtered list, which now matches nobody.
    expect(page.locator("table tbody")).to_contain_text("No users match these filters")


def test_csv_import_with_a_flex_column(admin_page: Page, personas):
    page = admin_page
    page.get_by_role("link", name="Import from CSV").click()
    expect(page.locator("h1")).to_have_text("Import users from a CSV file")

    def upload(content: str) -> None:
        page.get_by_label("CSV file").set_input_files(
            files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": content.encode()}]
        )
        page.get_by_role("button", name="Check the file").click()
        expect(page.get_by_role("heading", name="Preview")).to_be_visible()

    upload("First name,Last name,Email,Flex\nAda,Lovelace,ada@example.com,all\nBo,Bad,bo@example.com,autocad;maya\n")
    bad = page.locator("tbody tr").filter(has_text="bo@example.com")
    expect(bad).to_have_class(re.compile(r"\brow-bad\b"))
    expect(bad).to_contain_text("unknown product code “maya” in the Flex column")
    expect(page.get_by_role("button", name=re.compile(r"^Invite"))).to_have_count(0)
    shoot(page, "flex-import-errors")

    upload(
        "First name,Last name,Email,Role,Flex\n"
        "Ada,Lovelace,ada@example.com,Member,all\n"
        "Alan,Turing,alan@example.com,Member,autocad;revit\n"
        "Grace,Hopper,grace@example.com,Report viewer,\n"
    )
    expect(page.get_by_role("status").filter(has_text="can be imported")).to_have_text(
        "All 3 rows can be imported. 2 of them get Flex."
    )
    expect(page.locator("tbody tr").filter(has_text="alan@example.com")).to_contain_text("AutoCAD; Revit")
    shoot(page, "flex-import-preview")
    page.get_by_role("button", name="Invite 3 people").click()

    expect(page.locator(".messages")).to_contain_text("Invited 3 people.")
    expect(row(page, "ada@example.com")).to_contain_text("All products")
    expect(row(page, "alan@example.com")).to_contain_text("AutoCAD; Revit")
    expect(row(page, "grace@example.com")).to_contain_text("None")


def test_by_product_counts_users_and_opens_a_products_list(admin_page: Page, personas, crew):
    page = admin_page
    billing_services.assign_flex(team=personas.team, user=personas.member, products="all", actor=None)
    billing_services.bulk_assign_flex(
        team=personas.team, users=[m.user for m in crew[:2]], products=["autocad"], actor=None
    )
    page.get_by_role("navigation", name="User Management views").get_by_role("link", name="By Product").click()
    expect(page.locator("h1")).to_have_text("User Management")
    expect(page.locator(".summary-line")).to_contain_text("3 of 7 users have Flex; 1 of them for all products")
    autocad = page.locator("table tbody tr").filter(has_text="AutoCAD")
    expect(autocad.locator("td").nth(2)).to_have_text("3")
    shoot(page, "flex-by-product")

    autocad.get_by_role("link", name="AutoCAD").click()
    expect(page.locator("h1")).to_have_text("AutoCAD")
    expect(page.locator("table tbody tr")).to_have_count(3)
    expect(row(page, "member@own.example")).to_contain_text("All products")
    expect(row(page, "crew0@own.example")).to_contain_text("Their list of products")
    shoot(page, "flex-product-users")

    page.get_by_role("link", name="Change them in By User").click()
    expect(page.locator("table tbody tr")).to_have_count(3)
    expect(page.get_by_label("May use")).to_have_value("autocad")
