"""The sales rep's pages through the client: Customers (filters, sort, CSV), a customer's
page, recording a purchase (confirmation, idempotent reference, refusals, the admins'
notice), moving a pack, and Orders (filters, CSV, XLSX). Who may open which page is in
tests/accounts/test_authorization_matrix.py; queries in tests/billing/test_rep_page_queries.py."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from accounts.models import AuditEvent, Notification, Role
from billing import services
from billing.models import EntryKind, LedgerEntry, TokenPack
from tests.factories import MembershipFactory, SalesRepFactory, TeamFactory, UserFactory
from tests.reporting.test_exports import read_csv, read_xlsx

NOW = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)  # 12:00 in Berlin (Own Team's time zone)
D = timedelta(days=1)
H = timedelta(hours=1)
CUSTOMERS = reverse("billing:customer-list")
ORDERS = reverse("billing:orders")


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def text(response) -> str:
    body = re.sub(r"<(script|title)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def buy(team, tokens: int, at: datetime, reference: str, **extra) -> TokenPack:
    pack, _ = services.record_purchase(
        team=team, reference=reference, tokens=tokens, purchased_at=at, now=at, notify_admins=False, **extra
    )
    return pack


@pytest.fixture
def customers(personas):
    """Own Team (healthy, one pack expiring soon), Sister Works (low: 30 of 1,000 left) and
    Quiet Co (no pack), all served by Alder; Other Team is another reseller's."""
    team = personas.team
    reseller = team.reseller
    sister = TeamFactory(
        name="Sister Works", slug="sister-works", reseller=reseller, plan="premium", contract_end=date(2026, 7, 15)
    )
    quiet = TeamFactory(name="Quiet Co", slug="quiet-co", reseller=reseller)
    sister_admin = UserFactory(email="admin@sister.example", first_name="Sal", last_name="Sister")
    MembershipFactory(user=sister_admin, team=sister, role=Role.PRIMARY_ADMIN)
    buy(team, 3_000, NOW - 300 * D, "PO-SOON")  # expires in 65 days
    buy(team, 5_000, NOW - 20 * D, "PO-NEW", price=Decimal("4500.00"), currency="EUR", note="Spring order")
    pack = buy(sister, 1_000, NOW - 40 * D, "PO-SIS")
    # 970 of Sister's tokens go (a legitimate ledger path is not needed for the list: the
    # selector reads what the balance reads); spend through usage for a faithful balance.
    services.assign_flex(team=sister, user=sister_admin, products="all", actor=None, at=NOW - 50 * D)
    event = {"id": "job-1", "user": sister_admin.email, "product": "design-automation", "quantity": "485"}
    [result] = services.log_usage(team=sister, events=[{**event, "started_at": (NOW - D).isoformat()}], now=NOW - D)
    assert result["status"] == "charged", result
    buy(personas.other_team, 100, NOW - 10 * D, "PO-OTHER")
    pack.refresh_from_db()
    assert pack.remaining == Decimal(30)
    return {"team": team, "sister": sister, "quiet": quiet, "sister_admin": sister_admin}


@pytest.fixture
def rep(client, personas):
    client.force_login(personas.sales_rep)
    return client


# --- Customers ------------------------------------------------------------------------------------


def customer_names(response) -> list[str]:
    return [row.record.name for row in response.context["table"].paginated_rows]


def test_customers_shows_each_customers_balance_expiring_tokens_last_purchase_and_flag(rep, customers):
    response = rep.get(CUSTOMERS)
    assert response.status_code == 200
    assert customer_names(response) == ["Own Team", "Quiet Co", "Sister Works"]  # not Other Team
    page = text(response)
    # Own Team: 8,000 available, of which 3,000 expire within 90 days; last bought May 12.
    assert "Own Team Standard Dec 31, 2030 8,000 3,000 May 12, 2026 OK" in page
    assert "Quiet Co Standard Dec 31, 2030 0 0 — No tokens" in page
    assert "Sister Works Premium Jul 15, 2026 30 0 Apr 22, 2026 Low" in page
    assert "Other Team" not in page


@pytest.mark.parametrize(
    "query,names",
    [
        ("low=on", ["Quiet Co", "Sister Works"]),
        ("expiring=on", ["Own Team"]),
        ("plan=premium", ["Sister Works"]),
        ("contract_days=60", ["Sister Works"]),
        ("q=sister", ["Sister Works"]),
        ("low=on&plan=standard", ["Quiet Co"]),
        ("sort=-available", ["Own Team", "Sister Works", "Quiet Co"]),
        ("sort=last_purchase_at", ["Quiet Co", "Sister Works", "Own Team"]),
    ],
)
def test_customers_filter_and_sort(rep, customers, query, names):
    assert customer_names(rep.get(f"{CUSTOMERS}?{query}")) == names


def test_a_bad_filter_value_is_explained_not_an_error(rep, customers):
    response = rep.get(f"{CUSTOMERS}?contract_days=-3&plan=gold")
    assert response.status_code == 200
    page = text(response)
    assert "Ensure this value is greater than or equal to 0." in page
    assert "Select a valid choice." in page


def test_customers_csv_is_the_filtered_list_with_the_pages_columns(rep, customers):
    response = rep.get(reverse("billing:customer-export") + "?low=on&sort=name")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="customers_2026-06-01.csv"'
    rows = read_csv(response)
    assert rows[0] == [
        "Customer",
        "Plan",
        "Contract ends",
        "Available",
        "Expiring within 90 days",
        "Last purchase",
        "Balance",
    ]
    assert rows[1:] == [
        ["Quiet Co", "Standard", "2030-12-31", "0.00", "0.00", "", "no tokens"],
        ["Sister Works", "Premium", "2026-07-15", "30.00", "0.00", "2026-04-22", "low"],
    ]


def test_a_rep_of_two_resellers_sees_both_and_the_reseller_column(client, customers, personas):
    both = UserFactory(email="both@reps.example")
    SalesRepFactory(user=both, reseller=personas.team.reseller)
    SalesRepFactory(user=both, reseller=personas.other_team.reseller)
    client.force_login(both)
    response = client.get(CUSTOMERS)
    assert customer_names(response) == ["Other Team", "Own Team", "Quiet Co", "Sister Works"]
    assert "Other Partners" in text(response)


# --- A customer -----------------------------------------------------------------------------------


def test_the_customer_page_shows_balance_packs_contract_admins_and_purchases(rep, customers, personas):
    response = rep.get(reverse("billing:customer-detail", args=["own-team"]))
    assert response.status_code == 200
    page = text(response)
    assert "Available 8,000" in page and "Purchased 8,000" in page  # the admins' balance card
    assert "Run-out forecast" in page and "Legacy cloud credits" in page
    assert "Jan 1, 2022 – Dec 31, 2030" in page
    assert "primary@own.example" in page and "secondary@own.example" in page
    assert "PO-SOON" in page and "PO-NEW" in page and "Spring order" in page and "4500.00 EUR" in page
    assert 'id="pack-' in response.content.decode()
    # Nothing per user: no member, no viewer, nobody's usage.
    assert "member@own.example" not in page and "viewer@own.example" not in page
    assert "Mia" not in page and "Val Viewer" not in page


def test_the_customer_page_of_another_resellers_team_is_not_found(rep, customers, personas):
    assert rep.get(reverse("billing:customer-detail", args=["other-team"])).status_code == 404


def test_the_customer_page_has_no_per_user_usage(rep, customers):
    page = text(rep.get(reverse("billing:customer-detail", args=["sister-works"])))
    assert "Low" in page or "Below the low-balance threshold" in page
    assert "admin@sister.example" in page  # the admin to contact...
    assert "job-1" not in page  # ...but not what anybody ran


# --- Record a purchase ----------------------------------------------------------------------------

PURCHASE = reverse("billing:customer-purchase", args=["own-team"])
FORM = {"tokens": "2500", "reference": "PO-2026-7", "purchased_at": "2026-06-01T09:30", "price": "", "currency": ""}


def test_the_purchase_form_prefills_from_the_query(rep, customers):
    response = rep.get(PURCHASE + "?tokens=1200&purchased_at=2026-05-30T09:00")
    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="tokens" value="1200"' in content
    assert 'value="2026-05-30T09:00"' in content
    assert "Leave “Purchased at” empty for now (Jun 1, 2026 12:00 CEST)" in text(response)


def test_the_confirmation_shows_the_expiry_and_warns_when_it_falls_after_the_contract(rep, customers):
    response = rep.get(PURCHASE, {**FORM, "review": "1", "note": "Renewal"})
    page = text(response)
    assert "Check the purchase" in page
    assert "Expires Jun 1, 2027 09:30 CEST" in page  # 12 months, in Berlin time
    assert "after the contract ends" not in page  # Own Team's runs to 2030
    assert not TokenPack.objects.filter(reference="PO-2026-7").exists()  # nothing written yet
    sister = reverse("billing:customer-purchase", args=["sister-works"])
    page = text(rep.get(sister, {**FORM, "review": "1"}))
    assert "expires on Jun 1, 2027, after the contract ends on Jul 15, 2026" in page


def test_recording_a_purchase_audits_it_and_tells_the_admins(
    rep, customers, personas, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = rep.post(PURCHASE, {**FORM, "price": "1990.00", "currency": "eur", "note": "Renewal"})
    pack = TokenPack.objects.get(reference="PO-2026-7")
    assert response.status_code == 302 and response.url.endswith(f"/customers/own-team/#pack-{pack.pk}")
    assert (pack.tokens, pack.price, pack.currency, pack.note, pack.recorded_by) == (
        2500,
        Decimal("1990.00"),
        "EUR",
        "Renewal",
        personas.sales_rep,
    )
    assert pack.purchased_at == datetime(2026, 6, 1, 7, 30, tzinfo=UTC)  # 09:30 in Berlin
    audit = AuditEvent.objects.filter(action="pack.recorded").latest("id")
    assert (audit.actor, audit.team) == (personas.sales_rep, personas.team)
    notices = Notification.objects.filter(kind="pack_recorded").order_by("user__email")
    assert [n.user.email for n in notices] == ["primary@own.example", "secondary@own.example"]
    assert notices[0].title == "New pack: 2,500 tokens for Own Team"
    assert notices[0].link == reverse("billing:tokens", args=["own-team"])
    assert sorted(m.to[0] for m in mail.outbox) == ["primary@own.example", "secondary@own.example"]
    assert "2,500 Flex tokens" in mail.outbox[0].body and "Jun 1, 2027" in mail.outbox[0].body
    page = text(rep.get(response.url))
    assert "Pack PO-2026-7 of 2,500 tokens recorded for Own Team. It expires on Jun 1, 2027" in page


def test_the_same_reference_with_the_same_data_is_already_recorded_and_writes_nothing(rep, customers):
    rep.post(PURCHASE, FORM)
    before = (TokenPack.objects.count(), LedgerEntry.objects.count(), Notification.objects.count())
    review = text(rep.get(PURCHASE, {**FORM, "review": "1"}))
    assert "Already recorded" in review and "Order PO-2026-7 was already recorded: pack PO-2026-7" in review
    response = rep.post(PURCHASE, FORM)
    pack = TokenPack.objects.get(reference="PO-2026-7")
    assert response.url.endswith(f"#pack-{pack.pk}")
    assert "Nothing new was written." in text(rep.get(response.url))
    assert (TokenPack.objects.count(), LedgerEntry.objects.count(), Notification.objects.count()) == before
    assert AuditEvent.objects.filter(action="pack.recorded", details__reference="PO-2026-7").count() == 1


@pytest.mark.parametrize("slug", ["own-team", "sister-works"])
def test_the_same_reference_with_other_data_names_the_existing_pack(rep, customers, slug):
    before = TokenPack.objects.count()
    url = reverse("billing:customer-purchase", args=[slug])
    for response in (
        rep.get(url, {**FORM, "reference": "PO-NEW", "review": "1"}),
        rep.post(url, {**FORM, "reference": "PO-NEW"}),
    ):
        assert response.status_code == 200
        page = text(response)
        assert "The order reference “PO-NEW”" in page
        assert "pack PO-NEW of 5,000 tokens, bought on 2026-05-12" in page
        pack = TokenPack.objects.get(reference="PO-NEW")
        assert f'href="/customers/own-team/#pack-{pack.pk}"' in response.content.decode()
    assert TokenPack.objects.count() == before


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"tokens": "0"}, "Tokens must be a whole number greater than 0."),
        ({"tokens": "1.5"}, "Tokens must be a whole number greater than 0."),
        ({"tokens": ""}, "This field is required."),
        ({"reference": ""}, "This field is required."),
        ({"purchased_at": "2026-06-02T09:00"}, "A purchase can't lie in the future."),
        (
            {"purchased_at": "2021-12-31T23:00"},
            "The purchase date 2021-12-31 lies outside the contract (2022-01-01 to 2030-12-31).",
        ),
        ({"purchased_at": "yesterday"}, "Enter a date and time"),
        ({"price": "-5"}, "Ensure this value is greater than or equal to 0."),
        ({"currency": "E1"}, "The currency is a three-letter code such as EUR."),
    ],
)
def test_bad_input_gets_a_clear_message_and_writes_nothing(rep, customers, changes, message):
    before = (TokenPack.objects.count(), LedgerEntry.objects.count(), AuditEvent.objects.count())
    for response in (rep.get(PURCHASE, {**FORM, **changes, "review": "1"}), rep.post(PURCHASE, {**FORM, **changes})):
        assert response.status_code == 200
        assert message in text(response)
        assert "Check the purchase" not in text(response)
    assert (TokenPack.objects.count(), LedgerEntry.objects.count(), AuditEvent.objects.count()) == before


def test_a_purchase_for_another_resellers_team_is_not_found_and_writes_nothing(rep, customers):
    before = (TokenPack.objects.count(), LedgerEntry.objects.count(), AuditEvent.objects.count())
    for response in (
        rep.get(reverse("billing:customer-purchase", args=["other-team"]), {**FORM, "review": "1"}),
        rep.post(reverse("billing:customer-purchase", args=["other-team"]), FORM),
    ):
        assert response.status_code == 404
    assert (TokenPack.objects.count(), LedgerEntry.objects.count(), AuditEvent.objects.count()) == before


def test_another_resellers_reference_is_this_resellers_own_order_and_reveals_nothing(rep, customers):
    """References are unique per reseller (domain.md "Token pack"): PO-OTHER, recorded by
    another reseller, is a different order here. Refusing it would tell the rep that another
    reseller has such an order, so it is recorded, and nothing of the other pack shows."""
    review = text(rep.get(PURCHASE, {**FORM, "reference": "PO-OTHER", "review": "1"}))
    assert "Check the purchase" in review and "Other Team" not in review
    response = rep.post(PURCHASE, {**FORM, "reference": "PO-OTHER"})
    assert response.status_code == 302
    assert TokenPack.objects.filter(reference="PO-OTHER").count() == 2
    assert TokenPack.objects.get(reference="PO-OTHER", team=customers["team"]).tokens == 2500


def test_a_purchase_after_the_contract_ended_is_refused_with_the_reason(rep, customers):
    ended = TeamFactory(
        name="Ended Ltd", slug="ended", reseller=customers["team"].reseller, contract_end=date(2025, 12, 31)
    )
    response = rep.post(reverse("billing:customer-purchase", args=[ended.slug]), {**FORM, "purchased_at": ""})
    assert "The purchase date 2026-06-01 lies outside the contract (2022-01-01 to 2025-12-31)." in text(response)
    assert not TokenPack.objects.filter(team=ended).exists()


def test_purchased_at_left_empty_is_now(rep, customers):
    rep.post(PURCHASE, {**FORM, "purchased_at": ""})
    assert TokenPack.objects.get(reference="PO-2026-7").purchased_at == NOW
    # Again without a time: the same order, not other data.
    response = rep.post(PURCHASE, {**FORM, "purchased_at": ""})
    assert response.status_code == 302 and TokenPack.objects.filter(reference="PO-2026-7").count() == 1


# --- Move tokens ----------------------------------------------------------------------------------

MOVE = reverse("billing:customer-move", args=["own-team"])


def test_moving_a_pack_confirms_both_teams_the_tokens_and_the_expiry_then_moves_it(rep, customers, personas):
    pack = TokenPack.objects.get(reference="PO-NEW")
    sister = customers["sister"]
    form = text(rep.get(MOVE))
    assert "PO-NEW: 5,000 tokens left, expires May 12, 2027" in form
    assert "Sister Works" in form and "Quiet Co" in form and "Other Team" not in form
    review = text(rep.get(MOVE, {"pack": pack.pk, "to_team": sister.pk, "review": "1"}))
    assert "From Own Team To Sister Works Pack PO-NEW Tokens that move 5,000" in review
    assert "Expiry they keep May 12, 2027" in review
    assert TokenPack.objects.get(pk=pack.pk).team_id == personas.team.pk  # nothing yet
    response = rep.post(MOVE, {"pack": pack.pk, "to_team": sister.pk})
    assert response.status_code == 302
    pack.refresh_from_db()
    assert pack.team_id == sister.pk and pack.expires_at == NOW - 20 * D + timedelta(days=365)
    assert AuditEvent.objects.filter(action="pack.moved", actor=personas.sales_rep).count() == 1
    assert "5,000 tokens of pack PO-NEW moved from Own Team to Sister Works" in text(rep.get(response.url))
    # The ledger shows the move on both sides.
    own = text(rep.get(reverse("billing:customer-detail", args=["own-team"])))
    theirs = text(rep.get(reverse("billing:customer-detail", args=["sister-works"])))
    assert "Moved out PO-NEW \u22125,000" in own  # a true minus sign
    assert "Moved in PO-NEW +5,000" in theirs
    assert "Moved to Sister Works" in own  # the purchase stays Own Team's order


def test_a_tampered_team_in_the_move_form_is_refused_and_nothing_moves(rep, customers, personas):
    pack = TokenPack.objects.get(reference="PO-NEW")
    for target in (personas.other_team.pk, personas.team.pk, 999_999):
        response = rep.post(MOVE, {"pack": pack.pk, "to_team": target})
        assert response.status_code == 200
        assert "Choose another customer of Alder Partners" in text(response)
    foreign = TokenPack.objects.get(reference="PO-OTHER")
    response = rep.post(MOVE, {"pack": foreign.pk, "to_team": customers["sister"].pk})
    assert "Choose one of this customer's active packs" in text(response)
    assert not LedgerEntry.objects.filter(kind__in=[EntryKind.MOVE_IN, EntryKind.MOVE_OUT]).exists()


def test_a_customer_without_active_packs_has_nothing_to_move(rep, customers):
    page = text(rep.get(reverse("billing:customer-move", args=["quiet-co"])))
    assert "Quiet Co has no active pack with tokens left, so there is nothing to move." in page


# --- Orders ---------------------------------------------------------------------------------------


def order_refs(response) -> list[str]:
    return [row.record.pack.reference for row in response.context["table"].paginated_rows]


def test_orders_lists_every_purchase_of_the_reps_customers_newest_first(rep, customers, personas):
    rep.post(PURCHASE, FORM)
    response = rep.get(ORDERS)
    assert response.status_code == 200
    assert order_refs(response) == ["PO-2026-7", "PO-NEW", "PO-SIS", "PO-SOON"]
    page = text(response)
    assert "Jun 1, 2026 09:30 CEST Own Team PO-2026-7 2,500" in page
    assert "Rhea Rep" in page and "Through the API" in page


@pytest.mark.parametrize(
    "query,refs",
    [
        ("customer=sister-works", ["PO-SIS"]),
        ("start=2026-05-01", ["PO-2026-7", "PO-NEW"]),
        ("start=2026-04-01&end=2026-05-11", ["PO-SIS"]),
        ("end=2026-05-12", ["PO-NEW", "PO-SIS", "PO-SOON"]),
        ("recorded_by=api", ["PO-NEW", "PO-SIS", "PO-SOON"]),
        ("sort=at", ["PO-SOON", "PO-SIS", "PO-NEW", "PO-2026-7"]),
        ("customer=other-team", ["PO-2026-7", "PO-NEW", "PO-SIS", "PO-SOON"]),  # not a choice: ignored
    ],
)
def test_orders_filter_by_customer_days_and_recorder(rep, customers, personas, query, refs):
    rep.post(PURCHASE, FORM)
    assert order_refs(rep.get(f"{ORDERS}?{query}")) == refs
    rep_id = personas.sales_rep.pk
    assert order_refs(rep.get(f"{ORDERS}?recorded_by={rep_id}")) == ["PO-2026-7"]


def test_an_order_date_is_the_customers_day(rep, customers, personas):
    # 23:30 UTC on May 31 is already June 1 in Berlin: a June order there.
    buy(personas.team, 10, datetime(2026, 5, 31, 23, 30, tzinfo=UTC), "PO-MIDNIGHT")
    assert "PO-MIDNIGHT" in order_refs(rep.get(f"{ORDERS}?start=2026-06-01"))
    assert "PO-MIDNIGHT" not in order_refs(rep.get(f"{ORDERS}?end=2026-05-31"))


def test_orders_export_csv_and_xlsx_with_the_filter(rep, customers):
    response = rep.get(reverse("billing:orders-export-csv") + "?customer=own-team")
    assert response["Content-Disposition"] == 'attachment; filename="orders_2026-06-01.csv"'
    rows = read_csv(response)
    assert rows[0] == [
        "Purchased",
        "Customer",
        "Order reference",
        "Tokens",
        "Price",
        "Expires",
        "Held by",
        "Recorded by",
        "Note",
    ]
    assert rows[1] == [
        "2026-05-12T12:00:00+02:00",
        "Own Team",
        "PO-NEW",
        "5000",
        "4500.00 EUR",
        "2027-05-12",
        "Own Team",
        "Through the API",
        "Spring order",
    ]
    assert [r[2] for r in rows[1:]] == ["PO-NEW", "PO-SOON"]
    response = rep.get(reverse("billing:orders-export-xlsx") + "?customer=own-team")
    assert response["Content-Disposition"] == 'attachment; filename="orders_2026-06-01.xlsx"'
    sheet = read_xlsx(response)
    assert sheet[0][0] == "Purchased" and [r[2] for r in sheet[1:]] == ["PO-NEW", "PO-SOON"]
    assert sheet[1][3] == "5000"


def test_the_navigation_marks_customers_and_orders(rep, customers):
    for url, active in ((CUSTOMERS, "Customers"), (MOVE, "Customers"), (PURCHASE, "Customers"), (ORDERS, "Orders")):
        nav = rep.get(url).context["nav"]
        assert [entry.label for entry in nav] == ["Customers", "Orders"]
        assert [entry.label for entry in nav if entry.active] == [active], url


def test_the_low_balance_flag_follows_the_teams_own_threshold(rep, customers, personas):
    from accounts import services as account_services

    admin = customers["sister_admin"]
    account_services.update_alert_settings(
        team=customers["sister"],
        actor=admin,
        expiry_reminders=True,
        low_balance=True,
        low_balance_unit="tokens",
        low_balance_value=10,
        expiry_recipients=[],
        low_balance_recipients=[],
    )
    assert customer_names(rep.get(f"{CUSTOMERS}?low=on")) == ["Quiet Co"]


# --- The purchase planner -------------------------------------------------------------------------


def plan_url(slug: str) -> str:
    return reverse("billing:customer-plan", args=[slug])


def test_the_planner_proposes_a_purchase_with_its_chart_table_and_a_prefilled_form(rep, customers):
    # Sister Works: 30 tokens left, 970 used in the last 90 days (10.78 a day), contract to Jul 15.
    response = rep.get(plan_url("sister-works"))
    assert response.status_code == 200
    plan = response.context["plan"]
    assert plan.daily_burn == Decimal("10.78")
    assert plan.runs_out_on == date(2026, 6, 3)  # 30 tokens: Jun 1 and 2 paid, Jun 3 not
    [proposal] = plan.proposals
    assert proposal.buy_on == date(2026, 6, 1)  # a week ahead would be before today
    # Jun 1 to Jul 15 is 45 days x 10.78 = 485.10, minus the 30 held: 455.10, rounded up.
    assert proposal.tokens == 500
    page = text(response)
    assert "Buy 500 tokens in 1 purchase" in page
    assert "Usage goes on at 10.78 tokens a day" in page  # the assumptions in words
    content = response.content.decode()
    assert 'class="line-without"' in content and 'class="line-with"' in content
    # The chart's numbers are in the table: a row per point.
    assert len(response.context["projection"].rows) == len(plan.points)
    assert "Runs out without the plan" in page
    # The button opens Record a purchase with the tokens filled in.
    link = re.search(r'href="([^"]*/customers/sister-works/purchase/\?[^"]*)"', content).group(1)
    form = rep.get(html.unescape(link))
    assert 'name="tokens" value="500"' in form.content.decode()
    assert "Proposed by the purchase planner on Jun 1, 2026." in text(form)
    assert not TokenPack.objects.filter(team=customers["sister"], tokens=500).exists()  # nothing written


def test_the_planner_is_honest_without_usage_and_about_packs_expiring_unused(rep, customers):
    response = rep.get(plan_url("own-team"))
    plan = response.context["plan"]
    assert plan.proposals == []
    page = text(response)
    assert "No usage in the last 90 days: there is no burn to project, so nothing is proposed." in page
    # PO-SOON's 3,000 tokens expire in 65 days whatever is bought (and PO-NEW's, with no usage).
    assert (
        "Pack PO-SOON will expire on 5 August 2026 with 3,000 tokens unused whatever is bought: "
        "without usage nothing is spent, and new packs pay after it."
    ) in page
    assert "3,000 tokens of pack PO-SOON expire unused" in page  # the projection's row of that day


def test_the_planner_warns_when_the_contract_ends_soon(rep, customers):
    ending = TeamFactory(
        name="Ending Ltd", slug="ending-ltd", reseller=customers["team"].reseller, contract_end=date(2026, 6, 20)
    )
    page = text(rep.get(plan_url(ending.slug)))
    assert "The contract ends on 20 June 2026, 20 days from today" in page


@pytest.mark.parametrize(
    "query,message",
    [
        ("lead_days=abc", "Enter a whole number."),
        ("lead_days=91", "Ensure this value is less than or equal to 90."),
        ("step=0", "Ensure this value is greater than or equal to 1."),
        ("min_pack=-5&step=1.5", "Ensure this value is greater than or equal to 1."),
    ],
)
def test_bad_planner_options_are_explained_and_the_defaults_used(rep, customers, query, message):
    response = rep.get(plan_url("sister-works") + "?" + query)
    assert response.status_code == 200
    assert f"{message} The default is used." in text(response)
    assert response.context["plan"].proposals[0].tokens == 500


def test_planner_options_change_the_plan(rep, customers):
    plan = rep.get(plan_url("sister-works") + "?step=50&min_pack=50").context["plan"]
    assert [p.tokens for p in plan.proposals] == [500]  # 455.10 rounded up to 50s
    plan = rep.get(plan_url("sister-works") + "?step=10&min_pack=10").context["plan"]
    assert [p.tokens for p in plan.proposals] == [460]
