"""A sales rep reads a customer's Summary and By Product (and a product's days), with the
same numbers as the team's own reports, and never anything per person: no By User, no
Denials, no user filter or column, no name or e-mail on a page or in an export."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse

from tests.reporting.test_exports import read_csv, read_xlsx

PAGES = [
    ("reporting:customer-summary", ()),
    ("reporting:customer-by-product", ()),
    ("reporting:customer-product-detail", ("autocad",)),
]


def _people(personas) -> list[str]:
    people = (personas.member, personas.report_viewer, personas.secondary_admin, personas.primary_admin)
    return [u.email for u in people] + [f"{u.first_name} {u.last_name}" for u in people]


@pytest.fixture
def rep_client(client, personas):
    client.force_login(personas.sales_rep)
    return client


@pytest.mark.parametrize("name,args", PAGES)
def test_a_rep_sees_a_premium_customers_totals_and_no_person(rep_client, personas, premium_usage, name, args):
    # ?user= is By User's filter on Premium: a rep's pages ignore it rather than narrow by a person.
    query = f"?range=all&user={personas.member.pk}"
    response = rep_client.get(reverse(name, args=[personas.team.slug, *args]) + query)
    assert response.status_code == 200
    body = html.unescape(response.content.decode())
    for shown in _people(personas):
        assert shown not in body, f"{shown} on {name}"
    assert f"User {personas.member.pk}" not in body
    assert 'name="user"' not in body  # no user filter
    # Only the two tabs a rep may read, and they stay under the customer's pages.
    tabs = body.split('aria-label="Reports">', 1)[1].split("</nav>", 1)[0]
    assert re.findall(r">([^<>]+)</a>", tabs) == ["Summary", "By Product"]
    assert reverse("reporting:by-user", args=[personas.team.slug]) not in body
    assert reverse("reporting:summary", args=[personas.team.slug]) not in body
    assert "Customers" in body  # the breadcrumb back to the rep's customers


def test_a_reps_numbers_are_the_teams_own(rep_client, personas, premium_usage):
    """The products table a rep exports equals the one the team's admin exports."""
    admin_client = Client()
    admin_client.force_login(personas.primary_admin)
    rep = read_csv(rep_client.get(reverse("reporting:customer-export", args=[personas.team.slug, "products", "csv"])))
    own = read_csv(admin_client.get(reverse("reporting:export", args=[personas.team.slug, "products", "csv"])))
    assert rep == own
    assert rep[-1][0] == "Total" and len(rep) > 2


@pytest.mark.parametrize("report", ["summary", "products"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_reps_exports_name_nobody(rep_client, personas, premium_usage, report, fmt):
    url = reverse("reporting:customer-export", args=[personas.team.slug, report, fmt]) + "?range=all"
    response = rep_client.get(url)
    assert response.status_code == 200
    rows = read_csv(response) if fmt == "csv" else read_xlsx(response)
    text = "\n".join(",".join(row) for row in rows)
    for shown in _people(personas):
        assert shown not in text
    assert rows[-1][0] == "Total"


@pytest.mark.parametrize("report", ["users", "denials", "weeks"])
def test_a_rep_cannot_export_anything_per_person(rep_client, personas, premium_usage, report):
    url = reverse("reporting:customer-export", args=[personas.team.slug, report, "csv"])
    assert rep_client.get(url + f"?user={personas.member.pk}").status_code == 404


def test_there_is_no_per_person_page_for_reps():
    for name in ("reporting:customer-by-user", "reporting:customer-user-detail", "reporting:customer-denials"):
        with pytest.raises(NoReverseMatch):
            reverse(name, args=["own-team"])


def test_a_rep_opens_the_reports_from_the_customer_page(rep_client, personas):
    response = rep_client.get(reverse("billing:customer-detail", args=[personas.team.slug]))
    assert reverse("reporting:customer-summary", args=[personas.team.slug]) in response.content.decode()


def test_a_reps_product_page_links_back_to_the_reps_by_product(rep_client, personas, premium_usage):
    response = rep_client.get(
        reverse("reporting:customer-product-detail", args=[personas.team.slug, "autocad"]) + "?range=all"
    )
    body = response.content.decode()
    assert reverse("reporting:customer-by-product", args=[personas.team.slug]) + "?range=all" in body
    assert reverse("reporting:customer-export", args=[personas.team.slug, "summary", "csv"]) in body
    assert "shown to the team's admins only" in html.unescape(body)


def test_a_reps_customer_pages_are_in_the_customers_time_zone_and_navigation(rep_client, personas, premium_usage):
    response = rep_client.get(reverse("reporting:customer-summary", args=[personas.team.slug]))
    body = response.content.decode()
    assert "Days are Europe/Berlin days" in body
    # The Customers entry of the left navigation is the current one.
    assert f'href="{reverse("billing:customer-list")}" aria-current="page"' in body
