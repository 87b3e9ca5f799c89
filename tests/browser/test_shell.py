"""The portal shell: team switcher, user menu, and keyboard access."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from accounts.models import Role
from tests.browser.conftest import login, nav_labels, screenshot
from tests.factories import MembershipFactory


def focused(page: Page) -> str:
    """A short description of the focused element: tag#id.class "text"."""
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            if (!el || el === document.body) return "body";
            const cls = el.className ? "." + String(el.className).trim().split(/\\s+/).join(".") : "";
            const id = el.id ? "#" + el.id : "";
            return `${el.tagName.toLowerCase()}${id}${cls} "${(el.textContent || "").trim()}"`;
        }"""
    )


def test_team_switcher_moves_between_the_teams_of_a_person(page: Page, live_server, personas):
    # Mia is a member of Own Team and a secondary admin of Other Team.
    MembershipFactory(user=personas.member, team=personas.other_team, role=Role.SECONDARY_ADMIN)
    login(page, live_server, personas.member.email, personas.password)

    # With no team used yet, sign-in lands on the first team by name.
    switcher = page.locator("details.team-switcher")
    expect(page.locator("h1")).to_have_text("Other Team")
    expect(switcher.locator("summary")).to_have_attribute("aria-label", "Switch team, current: Other Team")
    assert nav_labels(page) == ["Home", "User Management", "Billing & Orders", "Reporting", "My usage", "Settings"]

    switcher.locator("summary").click()
    expect(switcher.get_by_role("link")).to_have_count(2)
    expect(switcher.get_by_role("link", name=re.compile(r"^Other Team"))).to_have_attribute("aria-current", "true")
    screenshot(page, "team-switcher-open.png")
    switcher.get_by_role("link", name=re.compile(r"^Own Team")).click()

    expect(page).to_have_url(re.compile(r"/teams/own-team/$"))
    expect(page.locator("h1")).to_have_text("Own Team")
    expect(switcher.locator("summary")).to_have_attribute("aria-label", "Switch team, current: Own Team")
    expect(switcher.locator(".menu-value")).to_have_text("Own Team")
    # The navigation follows the role in the team now shown: a member of Own Team.
    assert nav_labels(page) == ["Home", "My usage"]

    # The team used last is where "/" (and the next sign-in) lands.
    page.goto(f"{live_server.url}/")
    expect(page.locator("h1")).to_have_text("Own Team")


def test_escape_closes_an_open_menu_and_returns_focus_to_it(page: Page, live_server, personas):
    login(page, live_server, personas.primary_admin.email, personas.password)
    menu = page.locator("details.user-menu")

    menu.locator("summary").click()
    expect(menu).to_have_attribute("open", "")
    page.keyboard.press("Escape")

    expect(menu).not_to_have_attribute("open", re.compile(".*"))
    expect(menu.locator("summary")).to_be_focused()


def test_sign_out_from_the_user_menu(page: Page, live_server, personas):
    login(page, live_server, personas.primary_admin.email, personas.password)
    menu = page.locator("details.user-menu")

    menu.get_by_label("Account menu for Pat Primary").click()
    expect(menu.locator(".menu-note")).to_have_text("primary@own.example")
    menu.get_by_role("button", name="Sign out").click()

    expect(page).to_have_url(re.compile(r"/auth/logout/$"))
    expect(page.locator("h1")).to_have_text("You are signed out")
    expect(page.locator("nav#sidenav")).to_have_count(0)
    # The session is gone: a team page asks to sign in again.
    page.goto(f"{live_server.url}/teams/own-team/")
    expect(page).to_have_url(re.compile(r"/auth/login/\?next=/teams/own-team/$"))


def test_tab_from_the_top_of_a_portal_page_focuses_skip_to_content_first(page: Page, live_server, personas):
    login(page, live_server, personas.primary_admin.email, personas.password)
    page.goto(f"{live_server.url}/teams/own-team/users/")
    skip = page.get_by_role("link", name="Skip to content")

    page.keyboard.press("Tab")

    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0, "the focused skip link should be on screen"
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    # The next Tab goes into the page's content, past the top bar and the navigation.
    page.keyboard.press("Tab")
    assert page.evaluate("document.querySelector('main#main').contains(document.activeElement)"), focused(page)


def test_sign_in_page_puts_the_cursor_in_the_email_field(page: Page, live_server):
    # A one-form page has nothing to skip: the e-mail field takes focus so one can type at once.
    page.goto(f"{live_server.url}/auth/login/")
    expect(page.get_by_label("E-mail address")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
