"""Reporting > Flex token usage in Chromium: switching the range keeps it across the tabs,
a product drills down, By User on Standard is the illustrated upsell, and on Premium a
person opens the days-used grid. At 1280 px and at a phone's width, with screenshots."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal, InvalidOperation
from importlib import import_module
from pathlib import Path

import pytest
from django.apps import apps
from playwright.sync_api import Page, expect

from billing.models import Rate
from tests.browser.conftest import login, screenshot
from tests.reporting.conftest import charge_known_events
from tests.reporting.test_exports import read_xlsx_file

PHONE = {"width": 390, "height": 844}


def _values(rows: list[list[str]]) -> list[list[object]]:
    """Cells compared as values: "27.00" in a CSV is the number 27 in a sheet."""
    out = []
    for row in rows:
        cells = []
        for cell in row:
            try:
                cells.append(Decimal(cell))
            except InvalidOperation:
                cells.append(cell)
        out.append(cells)
    return out


@pytest.fixture
def rate_sheet(live_server):
    """The rate sheet, put back when the transactional database emptied it."""
    if not Rate.objects.exists():
        import_module("billing.migrations.0002_rate_sheet").install(apps, None)


def test_report_viewer_switches_range_drills_down_and_meets_the_upsell(page: Page, live_server, personas, rate_sheet):
    charge_known_events(personas, premium=False)
    page.set_viewport_size({"width": 1280, "height": 900})
    login(page, live_server, personas.report_viewer.email, personas.password)
    page.locator("nav#sidenav").get_by_role("link", name="Reporting").click()
    expect(page.get_by_role("heading", name="Flex token usage")).to_be_visible()
    expect(page.locator(".report-figure[data-figure='tokens'] .big")).to_have_text("27")
    expect(page.locator(".stacked-chart rect")).to_have_count(3)
    screenshot(page, "reports-summary-1280.png")

    page.get_by_label("Range", exact=True).select_option("all")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"range=all"))
    page.get_by_role("navigation", name="Reports").get_by_role("link", name="By Product").click()
    expect(page).to_have_url(re.compile(r"/reports/products/\?range=all"))
    expect(page.get_by_label("Range", exact=True)).to_have_value("all")
    screenshot(page, "reports-by-product-1280.png")

    # The export is the table shown: the same rows in the same order, and a totals row.
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    assert download.value.suggested_filename == "own-team_products_all-dates.csv"
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert [r[0] for r in rows] == ["Product", "CFD cloud simulation", "Revit", "AutoCAD", "Total"]
    assert rows[-1][1] == "27.00"
    with page.expect_download() as download:
        page.get_by_role("link", name="Excel").click()
    assert download.value.suggested_filename == "own-team_products_all-dates.xlsx"
    sheet = read_xlsx_file(Path(download.value.path()).read_bytes())
    # The same cells as the CSV (the sheet holds numbers as numbers): header, the rows in the
    # page's order, the totals row.
    assert _values(sheet) == _values(rows)
    assert sheet[-1][:2] == ["Total", "27"]

    # Sorting by a column flips the order; the export follows what the page shows.
    table = page.locator("table.table-billing")
    table.get_by_role("link", name="Tokens", exact=True).click()
    expect(page).to_have_url(re.compile(r"sort=tokens"))
    expect(table.locator("tbody tr").first).to_contain_text("AutoCAD")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    shown = table.locator("tbody tr td:first-child").all_inner_texts()
    assert shown[0] == "AutoCAD" and sorted(shown) == ["AutoCAD", "CFD cloud simulation", "Revit"]
    assert [r[0] for r in rows] == ["Product", *shown, "Total"]
    screenshot(page, "reports-by-product-sorted-1280.png")
    table.get_by_role("link", name="Tokens", exact=True).click()
    expect(page).to_have_url(re.compile(r"sort=-tokens"))
    expect(table.locator("tbody tr").first).to_contain_text("CFD cloud simulation")

    page.get_by_role("table").get_by_role("link", name="Revit").click()
    expect(page.get_by_role("heading", name="Revit", exact=True)).to_be_visible()
    expect(page.locator(".report-figure[data-figure='tokens'] .big")).to_have_text("10")
    expect(page).to_have_url(re.compile(r"/reports/products/revit/\?range=all"))
    screenshot(page, "reports-product-drill-down-1280.png")

    page.go_back()
    expect(page).to_have_url(re.compile(r"/reports/products/\?range=all"))
    page.get_by_role("navigation", name="Reports").get_by_role("link", name=re.compile("By User")).click()
    expect(page.get_by_role("heading", name="By User is part of the Premium plan")).to_be_visible()
    expect(page.get_by_text("Illustrative", exact=True)).to_be_visible()
    screenshot(page, "reports-by-user-standard-upsell-1280.png")

    page.get_by_role("navigation", name="Reports").get_by_role("link", name="Denials").click()
    expect(page.get_by_role("heading", name="By product and reason")).to_be_visible()
    expect(page.get_by_role("cell", name="Not assigned Flex for the product")).to_be_visible()
    screenshot(page, "reports-denials-1280.png")

    page.set_viewport_size(PHONE)
    page.get_by_role("navigation", name="Reports").get_by_role("link", name="Summary").click()
    expect(page.locator(".report-figure[data-figure='tokens'] .big")).to_have_text("27")
    screenshot(page, "reports-summary-390.png")

    # The product filter narrows every figure and rides along to the other tabs.
    page.get_by_label("Product", exact=True).select_option("revit")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"product=revit"))
    expect(page.locator(".report-figure[data-figure='tokens'] .big")).to_have_text("10")
    page.get_by_role("navigation", name="Reports").get_by_role("link", name="By Product").click()
    expect(page.locator("table.table-billing tbody tr")).to_have_count(1)
    expect(page.locator("table.table-billing tbody tr").first).to_contain_text("Revit")
    screenshot(page, "reports-by-product-filtered-390.png")


def test_premium_admin_opens_a_persons_days_used_grid(page: Page, live_server, personas, rate_sheet):
    charge_known_events(personas, premium=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    login(page, live_server, personas.primary_admin.email, personas.password)
    page.goto(f"{live_server.url}/teams/{personas.team.slug}/reports/users/?range=all")
    table = page.get_by_role("table")
    expect(table.get_by_role("link", name="Mia Member")).to_be_visible()
    expect(table.get_by_role("link", name="Val Viewer")).to_be_visible()
    screenshot(page, "reports-by-user-premium-1280.png")

    table.get_by_role("link", name="Mia Member").click()
    expect(page.get_by_role("heading", name="Days used per week")).to_be_visible()
    grid = page.locator("table.table-grid")
    expect(grid.locator("thead")).to_contain_text("AutoCAD")
    expect(grid.locator("thead")).to_contain_text("CFD cloud simulation")
    screenshot(page, "reports-user-drill-down-1280.png")

    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.get_by_role("heading", name="Days used per week")).to_be_visible()
    screenshot(page, "reports-user-drill-down-390.png")


def test_sales_rep_reads_a_customers_totals_without_a_person(page: Page, live_server, personas, rate_sheet):
    charge_known_events(personas, premium=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    login(page, live_server, personas.sales_rep.email, personas.password)
    page.goto(f"{live_server.url}/customers/{personas.team.slug}/")
    page.get_by_role("link", name="Usage reports").click()
    expect(page.get_by_role("heading", name="Flex token usage")).to_be_visible()
    tabs = page.get_by_role("navigation", name="Reports").get_by_role("link")
    expect(tabs).to_have_text(["Summary", "By Product"])
    page.get_by_label("Range", exact=True).select_option("all")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".report-figure[data-figure='tokens'] .big")).to_have_text("27")
    screenshot(page, "reports-rep-summary-1280.png")
    tabs.get_by_text("By Product").click()
    expect(page).to_have_url(re.compile(r"/customers/own-team/reports/products/\?range=all"))
    page.get_by_role("table").get_by_role("link", name="AutoCAD").click()
    expect(page.get_by_role("heading", name="AutoCAD", exact=True)).to_be_visible()
    expect(page.get_by_text("shown to the team's admins only")).to_be_visible()
    body = page.content()
    for person in (personas.member, personas.report_viewer, personas.secondary_admin):
        assert person.email not in body and person.last_name not in body
    screenshot(page, "reports-rep-product-1280.png")
