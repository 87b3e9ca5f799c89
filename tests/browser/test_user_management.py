"""The primary admin invites people one by one and from a CSV file."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from accounts.models import Membership, User
from tests.browser.conftest import login, screenshot


@pytest.fixture
def admin_page(page: Page, live_server, personas) -> Page:
    """Signed in as the primary admin, on User Management."""
    login(page, live_server, personas.primary_admin.email, personas.password)
    page.goto(f"{live_server.url}/teams/{personas.team.slug}/users/")
    expect(page.locator("h1")).to_have_text("User Management")
    return page


def member_row(page: Page, email: str):
    return page.locator("table tbody tr").filter(has_text=email)


def upload_csv(page: Page, live_server, personas, content: str) -> None:
    page.goto(f"{live_server.url}/teams/{personas.team.slug}/users/import/")
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": content.encode()}]
    )
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_role("heading", name="Preview")).to_be_visible()


def test_admin_invites_a_user_and_sees_them_as_invited(admin_page: Page, personas):
    page = admin_page
    page.get_by_role("link", name="Invite user").click()
    expect(page.locator("h1")).to_have_text("Invite a user")

    page.get_by_label("E-mail address").fill("newcomer@own.example")
    page.get_by_label("First name").fill("Nia")
    page.get_by_label("Last name").fill("Newcomer")
    page.get_by_label("Role").select_option(label="Report viewer")
    page.get_by_role("button", name="Send invitation").click()

    expect(page).to_have_url(re.compile(r"/teams/own-team/users/$"))
    expect(page.locator(".messages")).to_contain_text("Invitation sent to newcomer@own.example.")
    row = member_row(page, "newcomer@own.example")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Nia Newcomer")
    expect(row).to_contain_text("Report viewer")
    expect(row.locator(".badge")).to_have_text("Invited")
    expect(page.locator("table tbody tr")).to_have_count(5)


def test_inviting_an_existing_member_shows_the_error_on_the_form(admin_page: Page, personas):
    page = admin_page
    page.get_by_role("link", name="Invite user").click()

    page.get_by_label("E-mail address").fill("Member@Own.example")
    page.get_by_role("button", name="Send invitation").click()

    expect(page.locator("h1")).to_have_text("Invite a user")
    field = page.locator(".field").filter(has=page.get_by_label("E-mail address"))
    expect(field).to_have_class(re.compile(r"\bfield-invalid\b"))
    expect(field.locator(".field-error")).to_have_text("member@own.example is already a member of Own Team.")
    expect(page.get_by_label("E-mail address")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "invite-existing-member-error.png")
    assert Membership.objects.filter(team=personas.team).count() == 4

    page.get_by_role("link", name="Cancel").click()
    expect(page.locator("table tbody tr")).to_have_count(4)
    expect(member_row(page, "member@own.example")).to_have_count(1)


def test_csv_with_a_bad_row_is_marked_and_cannot_be_confirmed(admin_page: Page, live_server, personas):
    upload_csv(
        admin_page,
        live_server,
        personas,
        "First name,Last name,Email,Role\nAda,Lovelace,ada@example.com,Member\nBad,Row,not-an-email,Member\n",
    )
    page = admin_page

    expect(page.locator("[role=alert]")).to_contain_text("1 of 2 rows needs fixing")
    good = page.locator("tbody tr").filter(has_text="ada@example.com")
    bad = page.locator("tbody tr").filter(has_text="not-an-email")
    expect(good).to_have_class(re.compile(r"\brow-ok\b"))
    expect(good.locator(".badge")).to_have_text("OK")
    expect(bad).to_have_class(re.compile(r"\brow-bad\b"))
    expect(bad.locator(".badge")).to_have_text("Error")
    expect(bad).to_contain_text("“not-an-email” is not a valid e-mail address")
    expect(page.get_by_role("button", name=re.compile(r"^Invite"))).to_have_count(0)
    screenshot(page, "csv-preview-errors.png")

    assert Membership.objects.filter(team=personas.team).count() == 4
    assert not User.objects.filter(email__in=["ada@example.com", "not-an-email"]).exists()


def test_good_csv_is_confirmed_and_everybody_is_invited(admin_page: Page, live_server, personas):
    upload_csv(
        admin_page,
        live_server,
        personas,
        "First name,Last name,Email,Role\n"
        "Ada,Lovelace,ada@example.com,Member\n"
        "Grace,Hopper,grace@example.com,Report viewer\n",
    )
    page = admin_page
    expect(page.get_by_role("status").filter(has_text="can be imported")).to_have_text("All 2 rows can be imported.")
    # Nothing is written before the confirmation.
    assert not User.objects.filter(email__in=["ada@example.com", "grace@example.com"]).exists()

    page.get_by_role("button", name="Invite 2 people").click()

    expect(page).to_have_url(re.compile(r"/teams/own-team/users/$"))
    expect(page.locator(".messages")).to_contain_text("Invited 2 people.")
    expect(page.locator("table tbody tr")).to_have_count(6)
    ada = member_row(page, "ada@example.com")
    grace = member_row(page, "grace@example.com")
    expect(ada).to_contain_text("Ada Lovelace")
    expect(ada).to_contain_text("Member")
    expect(ada.locator(".badge")).to_have_text("Invited")
    expect(grace).to_contain_text("Grace Hopper")
    expect(grace).to_contain_text("Report viewer")
    expect(grace.locator(".badge")).to_have_text("Invited")
    screenshot(page, "csv-imported.png")
