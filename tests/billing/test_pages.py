"""Billing & Orders > Flex tokens, the home page's balance card and My usage, through the
client: what each persona sees. Who may open which page is in
tests/accounts/test_authorization_matrix.py."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import override_settings
from django.urls import reverse

from accounts import services as account_services
from billing import services
from tests.accounts.test_security_headers import inline_markup
from tests.factories import MembershipFactory, UserFactory

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
D = timedelta(days=1)
H = timedelta(hours=1)
TOKENS = reverse("billing:tokens", args=["own-team"])
MY_USAGE = reverse("billing:my-usage", args=["own-team"])
HOME = reverse("accounts:team-home", args=["own-team"])


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def text(response) -> str:
    """The page's visible text, whitespace collapsed."""
    body = re.sub(r"<(script|title)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def rows(response, table_id: str) -> list[str]:
    """The text of each body row of the table in the section ``table_id``."""
    section = response.content.decode().split(f'id="{table_id}"', 1)[1].split("</section>", 1)[0]
    body = section.split("<tbody", 1)[1].split(">", 1)[1].split("</tbody>", 1)[0] if "<tbody" in section else ""
    return [
        re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", row))).strip() for row in body.split("</tr>")[:-1]
    ]


@pytest.fixture
def history(team, buy, log, personas):
    """Packs in every state and a month of usage: the forecast has enough to go on."""
    buy(100, at=NOW - 400 * D, reference="PO-EXPIRED")  # expired unused on Apr 27
    buy(12_500, at=NOW - 300 * D, reference="PO-SOON")  # expires in 65 days
    buy(2_000, at=NOW - 20 * D, reference="PO-NEW")
    services.expire_packs(now=NOW - 30 * D)
    for back in range(1, 21):
        start = NOW - back * D - timedelta(minutes=back)
        log("revit", start, start + H)
    log("cfd-simulation", NOW - 2 * D, variant="moderate", event_id="job-7")
    services.refund_usage(team=team, event_id="job-7", now=NOW - 2 * D + H)
    return team


# --- Flex tokens ----------------------------------------------------------------------------------


def test_admin_sees_the_balance_forecast_packs_and_token_events(admin_client, history):
    response = admin_client.get(TOKENS)

    assert response.status_code == 200
    page = text(response)
    # Tokens with thousands separators; 200 used of the active packs (20 Revit days).
    assert "Available 14,300" in page and "Used 200" in page and "Purchased 14,500" in page
    assert "Expired 100" in page
    assert "Next expiry: 12,300 tokens on Aug 5, 2026" in page
    # The forecast says how it is computed: 200 tokens over 30 days = 6.67 a day.
    assert "Run-out forecast" in page and "6.67 tokens a day" in page and "How this is computed" in page
    assert "expiring unused" in page.lower()
    # Cloud credits: the cutoff (2023-03-29) has passed.
    assert "Every cloud credit expired on Mar 29, 2023" in page
    # "Data as of" in the team's time zone (Berlin, summer time).
    assert "Data as of Jun 1, 2026 12:00 CEST" in page
    assert inline_markup(response.content.decode()) == []


def test_the_packs_table_highlights_packs_that_expire_within_90_days(admin_client, history):
    response = admin_client.get(TOKENS)
    content = response.content.decode()

    packs = rows(response, "packs")
    assert [row.split()[0] for row in packs] == ["PO-SOON", "PO-NEW", "PO-EXPIRED"]  # active first, in pay order
    assert packs[0] == "PO-SOON 12,500 12,300 Aug 5, 2025 Aug 5, 2026 65 days: expiring soon Active"
    assert packs[2].endswith("Expired")
    assert len(re.findall(r'<tr class="row-expiring', content)) == 1
    assert re.search(r'<tr class="row-expiring[^"]*"[^>]*>\s*<td[^>]*>PO-SOON</td>', content)


def test_packs_are_filtered_by_status_and_sorted(admin_client, history):
    assert [r.split()[0] for r in rows(admin_client.get(TOKENS + "?status=expired"), "packs")] == ["PO-EXPIRED"]
    assert [r.split()[0] for r in rows(admin_client.get(TOKENS + "?status=active"), "packs")] == ["PO-SOON", "PO-NEW"]
    assert rows(admin_client.get(TOKENS + "?status=depleted"), "packs") == ["No packs match this filter."]
    by_size = rows(admin_client.get(TOKENS + "?packs-sort=-tokens"), "packs")
    assert [r.split()[0] for r in by_size] == ["PO-SOON", "PO-NEW", "PO-EXPIRED"]
    by_reference = rows(admin_client.get(TOKENS + "?packs-sort=reference"), "packs")
    assert [r.split()[0] for r in by_reference] == ["PO-EXPIRED", "PO-NEW", "PO-SOON"]


def test_token_events_leave_usage_out_and_are_filtered_by_kind(admin_client, history):
    events = rows(admin_client.get(TOKENS), "events")
    assert [e.split(" CEST ")[1].split()[0] for e in events] == ["Refunded", "Purchased", "Expired"]
    assert events[0] == "May 30, 2026 13:00 CEST Refunded PO-SOON +10 Job job-7 refunded"
    assert events[2].startswith("Apr 27, 2026 12:00 CEST Expired PO-EXPIRED \u2212100")  # a true minus sign
    only = rows(admin_client.get(TOKENS + "?kind=purchase"), "events")
    assert len(only) == 1 and "PO-NEW +2,000" in only[0]


def test_token_events_are_paginated(admin_client, team, buy):
    for n in range(30):
        buy(10 + n, at=NOW - (n + 1) * H, reference=f"PO-{n:02}")

    first = admin_client.get(TOKENS)
    assert len(rows(first, "events")) == 25
    assert "1–25 of 30" in text(first)
    second = admin_client.get(TOKENS + "?events-page=2")
    assert len(rows(second, "events")) == 5
    # The packs' table keeps its own page (its own prefix).
    assert len(rows(second, "packs")) == 25


def test_filtering_one_table_keeps_the_other_as_it_was(admin_client, history):
    content = admin_client.get(TOKENS + "?kind=refund&events-sort=at").content.decode()
    packs_form = content.split('aria-label="Filter packs"', 1)[1].split("</form>", 1)[0]
    assert '<input type="hidden" name="kind" value="refund">' in packs_form
    assert '<input type="hidden" name="events-sort" value="at">' in packs_form


def test_a_report_viewer_sees_the_page_with_no_control_that_writes(client, personas, history):
    client.force_login(personas.report_viewer)
    response = client.get(TOKENS)
    assert response.status_code == 200
    content = response.content.decode()
    # The only POST form is the shell's sign-out.
    assert re.findall(r'<form[^>]*method="post"[^>]*>', content) == [
        f'<form method="post" action="{reverse("logout")}">'
    ]
    assert "Available 14,300" in text(response)


def test_empty_states_say_what_to_do(admin_client, personas):
    page = text(admin_client.get(TOKENS))
    assert "No packs yet. Ask your reseller, Alder Partners, for a pack of Flex tokens." in page
    assert "No token events in the last 90 days." in page
    assert "The team holds no tokens, so there is nothing to run out." in page


def test_too_little_usage_is_said_plainly(admin_client, team, buy, log):
    buy(500, at=NOW - 10 * D)
    log("autocad", NOW - 2 * D, NOW - 2 * D + H)
    page = text(admin_client.get(TOKENS))
    assert "Too little usage to forecast" in page
    assert "Tokens were used on 1 of the last 30 days; a forecast needs usage on at least 7." in page


def test_the_donut_turns_red_below_the_low_balance_threshold(admin_client, team, buy, log, personas):
    buy(100, at=NOW - 10 * D)
    assert "donut-is-low" not in admin_client.get(TOKENS).content.decode()
    for back in range(1, 10):
        log("revit", NOW - back * D - timedelta(minutes=back), NOW - back * D + H)  # 90 of 100 used
    response = admin_client.get(TOKENS)
    assert "donut-is-low" in response.content.decode()
    assert "Below the low-balance threshold of 20 tokens." in text(response)
    # A threshold in tokens (Settings > Alerts) moves the line.
    account_services.update_alert_settings(
        team=team,
        actor=personas.primary_admin,
        expiry_reminders=True,
        low_balance=True,
        low_balance_unit="tokens",
        low_balance_value=5,
        expiry_recipients=[],
        low_balance_recipients=[],
    )
    assert "donut-is-low" not in admin_client.get(TOKENS).content.decode()


@override_settings(FLEX_CLOUD_CREDITS_EXPIRE_AT=datetime(2026, 9, 1, tzinfo=UTC))
def test_cloud_credits_before_the_cutoff(admin_client, team):
    services.grant_cloud_credits(team=team, credits=1250, granted_at=NOW - D)
    page = text(admin_client.get(TOKENS))
    assert "1,250 credits" in page and "until Sep 1, 2026 02:00 CEST" in page


def test_the_pages_write_nothing(admin_client, history):
    response = admin_client.post(TOKENS, {"status": "active"})
    assert response.status_code == 405


# --- The home page's balance card -------------------------------------------------------------


@pytest.mark.parametrize("role", ["primary_admin", "secondary_admin", "report_viewer"])
def test_home_shows_the_balance_card_to_those_who_may_see_billing(client, personas, history, role):
    client.force_login(personas.by_role(role))
    response = client.get(HOME)
    page = text(response)
    card = page.split("Flex tokens", 1)[1]
    assert card.startswith(" 99% 14,300 available of 14,500 in active packs")
    assert "Next expiry: 12,300 tokens on Aug 5, 2026" in page
    assert f'href="{TOKENS}"' in response.content.decode()
    assert inline_markup(response.content.decode()) == []


def test_home_shows_no_balance_card_to_a_member(client, personas, history):
    client.force_login(personas.member)
    response = client.get(HOME)
    assert "available" not in text(response)
    assert TOKENS not in response.content.decode()


def test_home_card_without_packs_asks_the_reseller(admin_client, personas):
    assert "No active packs. Ask Alder Partners for a pack." in text(admin_client.get(HOME))


# --- My usage -------------------------------------------------------------------------------------


def test_a_member_sees_only_their_own_usage(client, team, personas, buy, log):
    colleague = UserFactory(email="colleague@own.example", first_name="Cole")
    MembershipFactory(user=colleague, team=team)
    services.assign_flex(team=team, user=colleague, products="all", actor=None, at=NOW - 100 * D)
    buy(1000, at=NOW - 50 * D)
    log("autocad", NOW - 3 * D, NOW - 3 * D + H)
    log("revit", NOW - 40 * D, NOW - 40 * D + H)
    log("cfd-simulation", NOW - 2 * D, variant="complex", user=colleague)  # not Mia's

    client.force_login(personas.member)
    response = client.get(MY_USAGE)

    assert response.status_code == 200
    page = text(response)
    assert "This month 0 tokens" in page  # June has just begun
    assert "Last 12 months 17 tokens" in page
    assert "AutoCAD 0 7" in page and "Revit 0 10" in page
    assert "CFD" not in page
    assert "April 2026 10 May 2026 7 June 2026 0" in page
    assert "All products" in page
    assert inline_markup(response.content.decode()) == []


def test_my_usage_names_a_list_assignment(client, personas, team):
    services.assign_flex(team=team, user=personas.member, products=["revit", "cfd-simulation"], actor=None)
    client.force_login(personas.member)
    page = text(client.get(MY_USAGE))
    assert "2 products CFD cloud simulation Revit" in page
    assert "You have not used any Flex product in the last 12 months." in page


def test_my_usage_without_an_assignment_tells_whom_to_ask(client, personas):
    client.force_login(personas.report_viewer)
    page = text(client.get(MY_USAGE))
    assert "None You can't use Flex products in Own Team yet. Ask an admin of the team to assign Flex to you." in page
