"""Each persona signs in through the real form and sees only the navigation its role may use."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import login, nav_labels, screenshot

ADMIN_NAV = ["Home", "User Management", "Billing & Orders", "Reporting", "My usage", "Settings"]

# persona -> (left navigation, h1 of the page the sign-in lands on, path it lands on)
EXPECTED = {
    "primary_admin": (ADMIN_NAV, "Own Team", "/teams/own-team/"),
    "secondary_admin": (ADMIN_NAV, "Own Team", "/teams/own-team/"),
    "report_viewer": (["Home", "Billing & Orders", "Reporting", "My usage"], "Own Team", "/teams/own-team/"),
    "member": (["Home", "My usage"], "Own Team", "/teams/own-team/"),
    "sales_rep": (["Customers", "Orders"], "Customers", "/customers/"),
}


@pytest.mark.parametrize("persona", list(EXPECTED))
def test_persona_signs_in_and_sees_only_their_navigation(page: Page, live_server, personas, persona: str):
    nav, heading, landing = EXPECTED[persona]
    user = personas.by_role(persona)

    login(page, live_server, user.email, personas.password)

    assert page.url == f"{live_server.url}{landing}"
    expect(page.locator("h1")).to_have_count(1)
    expect(page.locator("h1")).to_have_text(heading)
    assert nav_labels(page) == nav
    # The landing page is the current one in the navigation.
    expect(page.locator("nav#sidenav a[aria-current='page']")).to_have_text(nav[0])
    # The top bar names who is signed in.
    expect(page.locator(".user-menu summary")).to_contain_text(user.get_full_name())
    screenshot(page, f"{persona}-home.png")


def test_sales_rep_sees_their_customers_but_not_other_resellers(page: Page, live_server, personas):
    login(page, live_server, personas.sales_rep.email, personas.password)

    table = page.locator("table")
    expect(table.get_by_role("link", name="Own Team")).to_be_visible()
    expect(table).not_to_contain_text("Other Team")


@pytest.mark.parametrize("persona", ["primary_admin", "secondary_admin"])
def test_admin_opens_user_management_from_the_navigation(page: Page, live_server, personas, persona: str):
    login(page, live_server, personas.by_role(persona).email, personas.password)

    page.locator("nav#sidenav").get_by_role("link", name="User Management").click()

    expect(page).to_have_url(re.compile(r"/teams/own-team/users/$"))
    expect(page.locator("h1")).to_have_text("User Management")
    expect(page.locator("nav#sidenav a[aria-current='page']")).to_have_text("User Management")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(4)
    for email in ["primary@own.example", "secondary@own.example", "viewer@own.example", "member@own.example"]:
        expect(page.locator("table tbody")).to_contain_text(email)
    expect(page.locator("table tbody")).not_to_contain_text("other.example")
    screenshot(page, f"{persona}-user-management.png")


@pytest.mark.parametrize("persona", ["report_viewer", "member"])
def test_non_admin_opening_user_management_gets_an_explaining_403(page: Page, live_server, personas, persona: str):
    login(page, live_server, personas.by_role(persona).email, personas.password)

    response = page.goto(f"{live_server.url}/teams/own-team/users/")

    assert response is not None and response.status == 403
    expect(page.locator("body")).to_contain_text("can't manage the team's users")
