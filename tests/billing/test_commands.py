"""The ledger check, the CSV usage import and the balance selector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import services
from billing.models import Charge, LedgerEntry, TokenPack, UsageEvent, UsageRollup
from billing.selectors import ledger_check, ledger_violations, team_balance
from tests.billing.conftest import T0
from tests.factories import TeamFactory

H = timedelta(hours=1)
HEADER = "id,user,product,variant,started_at,ended_at,quantity\n"
MEMBER = "member@own.example"


def check_ledger() -> tuple[int, str]:
    """Run check_ledger; return (exit code, stdout)."""
    out = StringIO()
    try:
        call_command("check_ledger", stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


def import_usage(tmp_path, text: str, *args: str, team: str = "own-team") -> tuple[int, str, str]:
    """Write ``text`` to a CSV file and import it; return (exit code, stdout, stderr)."""
    path = tmp_path / "usage.csv"
    path.write_text(text, encoding="utf-8")
    out, err = StringIO(), StringIO()
    try:
        call_command("import_usage", str(path), "--team", team, *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def iso(moment: datetime) -> str:
    return moment.isoformat()


@pytest.fixture
def sister(team):
    """Another team of the same reseller: packs can move to it."""
    return TeamFactory(name="Sister Team", slug="sister", reseller=team.reseller)


# --- check_ledger ---------------------------------------------------------------------------------


@pytest.fixture
def busy_ledger(team, buy, log, sister):
    """A ledger with every kind of entry: purchases, credits, usage, a refund, an expiry, a move."""
    services.grant_cloud_credits(team=team, credits=Decimal("50"), granted_at=datetime(2022, 6, 1, tzinfo=UTC))
    old = buy(100, at=datetime(2022, 6, 1, tzinfo=UTC))
    job = datetime(2022, 7, 1, tzinfo=UTC)
    log("cfd-simulation", job, variant="moderate", now=job)  # 10 cloud credits
    log("cfd-simulation", job + H, variant="complex", now=job + H)  # 35 of the 40 credits left
    log("autocad", job, job + 2 * H, now=job + 2 * H)  # daily: always tokens
    services.expire_packs(now=datetime(2023, 6, 2, tzinfo=UTC))  # 93 tokens expire,
    services.expire_cloud_credits(now=datetime(2023, 6, 2, tzinfo=UTC))  # and 5 credits
    pack = buy(200)
    log("cfd-simulation", T0, variant="complex", now=T0, event_id="job-1")
    services.refund_usage(team=team, event_id="job-1", now=T0 + H)
    log("revit", T0, T0 + 3 * H, now=T0 + 3 * H)
    moved = buy(50, at=datetime(2026, 2, 1, tzinfo=UTC))
    services.move_pack(pack=moved, to_team=sister, now=datetime(2026, 2, 2, tzinfo=UTC))
    return {"old": old, "pack": pack, "moved": moved}


def test_check_ledger_passes_on_a_consistent_ledger(busy_ledger):
    code, out = check_ledger()
    assert code == 0
    assert out.startswith("Ledger OK: checked 3 packs, 1 cloud credit balances")
    assert len(out.strip().splitlines()) == 1


def test_check_ledger_names_a_pack_whose_remaining_was_tampered_with(busy_ledger):
    TokenPack.objects.filter(pk=busy_ledger["pack"].pk).update(remaining=Decimal("150.00"))
    code, out = check_ledger()
    assert code == 1
    assert "Pack ORDER-2 (team own-team): remaining is 150.00 but its 4 ledger entries sum to 190.00." in out
    assert "1 ledger violation" in out


def test_check_ledger_names_a_tampered_rollup(busy_ledger):
    UsageRollup.objects.filter(team__slug="own-team", product="revit").update(tokens=Decimal("3"))
    code, out = check_ledger()
    assert code == 1
    assert "Team own-team: usage rollups total 10.00 tokens, but the ledger's usage minus refunds is 17.00" in out


def test_check_ledger_names_an_expired_pack_that_still_holds_tokens(team, buy):
    buy(100, at=datetime(2024, 6, 1, tzinfo=UTC))  # expired 2025-06-01; the job never ran
    closed = buy(40, at=datetime(2024, 7, 1, tzinfo=UTC))
    TokenPack.objects.filter(pk=closed.pk).update(expired_at=datetime(2025, 7, 1, 1, tzinfo=UTC))
    code, out = check_ledger()
    assert code == 1
    assert (
        "Pack ORDER-1 (team own-team): expired at 2025-06-01T00:00:00+00:00 but the expiry job has not closed it"
        " (it still holds 100.00)." in out
    )
    assert "Pack ORDER-2 (team own-team): closed as expired at 2025-07-01T01:00:00+00:00 but still holds 40.00." in out
    assert "2 ledger violations" in out


def test_a_pack_only_just_past_its_expiry_is_not_yet_a_violation(team, buy):
    pack = buy(100, at=datetime(2025, 1, 1, tzinfo=UTC))
    assert ledger_violations(now=pack.expires_at + 30 * timedelta(minutes=1)) == []
    assert len(ledger_violations(now=pack.expires_at + 2 * H)) == 1


def test_a_charged_event_without_its_usage_entries_is_a_violation(busy_ledger):
    UsageEvent.objects.filter(product="revit").update(tokens=Decimal("12.00"))
    violations = ledger_violations()
    assert any(
        "charged 12.00 tokens and 0.00 cloud credits, but its usage entries take 10.00 tokens" in v for v in violations
    )


def test_the_ledger_check_takes_the_same_few_queries_for_any_ledger_size(team, buy, log, django_assert_max_num_queries):
    for n in range(20):
        buy(10)
        log("cfd-simulation", T0 + n * H, variant="simple", now=T0 + n * H)
    # Seven for the ledger, two for each of the four rollups sized to a question.
    with django_assert_max_num_queries(15):
        result = ledger_check()
    assert (result.ok, result.packs, result.events) == (True, 20, 20)


# --- import_usage ---------------------------------------------------------------------------------


@pytest.fixture
def recent_pack(team, buy):
    return buy(100, at=timezone.now() - timedelta(days=30))


def test_a_good_file_is_imported_and_charged(recent_pack, tmp_path):
    start = timezone.now() - 5 * H
    text = HEADER + (
        f"a-1,{MEMBER},autocad,,{iso(start)},{iso(start + 2 * H)},\n"
        f"a-2,{MEMBER},cfd-simulation,complex,{iso(start + H)},,\n"
        f"a-3,{MEMBER.upper()},design-automation,,{iso(start + 2 * H)},,1.5\n"
    )
    code, out, err = import_usage(tmp_path, text)
    assert code == 0, out
    assert "3 charged, 0 no charge, 0 denied, 0 replayed, 0 errors; 45.00 tokens" in out
    assert UsageEvent.objects.filter(status="charged").count() == 3
    assert TokenPack.objects.get(pk=recent_pack.pk).remaining == Decimal("55.00")
    assert "3/3 events (100%)" in err


@pytest.mark.parametrize("check_rows", [2_000, 2], ids=["one-check", "checked-in-pieces"])
def test_every_bad_row_is_reported_with_its_line_and_nothing_is_imported(
    recent_pack, tmp_path, monkeypatch, check_rows
):
    monkeypatch.setattr("billing.management.commands.import_usage.CHECK_ROWS", check_rows)
    start = timezone.now() - 5 * H
    text = HEADER + (
        f"ok-1,{MEMBER},autocad,,{iso(start)},{iso(start + H)},\n"  # line 2: fine
        f"bad-time,{MEMBER},autocad,,yesterday,{iso(start + H)},\n"  # line 3
        f"who,nobody@example.com,autocad,,{iso(start)},{iso(start + H)},\n"  # line 4
        f"what,{MEMBER},photoshop,,{iso(start)},{iso(start + H)},\n"  # line 5
        f"naive,{MEMBER},autocad,,2026-03-02T08:00:00,,\n"  # line 6
        f"qty,{MEMBER},cfd-simulation,huge,{iso(start)},,-2\n"  # line 7
        f"outsider,admin@other.example,autocad,,{iso(start)},{iso(start + H)},\n"  # line 8: another team's
    )
    code, out, _ = import_usage(tmp_path, text)
    assert code == 1
    lines = {line.split(":")[0]: line for line in out.splitlines() if line.startswith("line ")}
    assert set(lines) == {"line 3", "line 4", "line 5", "line 6", "line 7", "line 8"}
    assert "started_at “yesterday” is not an ISO 8601 time" in lines["line 3"]
    assert "user nobody@example.com is not a member of team own-team" in lines["line 4"]
    assert "product “photoshop” is not on the rate sheet" in lines["line 5"]
    assert "started_at “2026-03-02T08:00:00” has no time zone offset" in lines["line 6"]
    assert "quantity “-2” is not a number greater than 0" in lines["line 7"]
    assert "variant “huge” is not one of simple, moderate, complex for cfd-simulation" in lines["line 7"]
    assert "user admin@other.example is not a member" in lines["line 8"]
    assert "6 of 7 rows in usage.csv are invalid; nothing was imported" in out
    assert UsageEvent.objects.count() == 0
    assert TokenPack.objects.get(pk=recent_pack.pk).remaining == 100


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("id,user,product,variant,ended_at,quantity\n", "missing column started_at."),
        ("id,product,started_at\n", "missing column user."),
        ("id,user,product,started,ended_at\n", "missing column started_at. unknown column started."),
        ("id,user,product,started_at,started_at\n", "repeated column started_at."),
    ],
)
def test_a_bad_header_stops_the_import(recent_pack, tmp_path, header, problem):
    start = timezone.now() - 5 * H
    code, out, _ = import_usage(tmp_path, header + f"a-1,{MEMBER},autocad,{iso(start)},{iso(start + H)}\n")
    assert code == 1
    assert problem in out
    assert UsageEvent.objects.count() == 0


def test_an_empty_file_is_refused(team, tmp_path):
    code, out, _ = import_usage(tmp_path, "")
    assert code == 1
    assert "usage.csv is empty; a header row is required: id,user,product,variant,started_at,ended_at,quantity" in out


def test_the_optional_columns_may_be_left_out_and_spreadsheet_quirks_are_fine(recent_pack, tmp_path):
    start = timezone.now() - 5 * H
    text = f"\ufeffID, User ,Product,Started_At\n\njob-1,{MEMBER},generative-design,{iso(start)}\n"
    code, out, _ = import_usage(tmp_path, text)
    assert code == 0, out
    assert "1 charged" in out and "11.00 tokens" in out


def test_skip_invalid_imports_the_good_rows_and_lists_the_skipped(recent_pack, tmp_path):
    start = timezone.now() - 5 * H
    text = HEADER + (
        f"ok-1,{MEMBER},autocad,,{iso(start)},{iso(start + H)},\n"
        f"bad-time,{MEMBER},autocad,,2026-13-45T08:00:00Z,,\n"
        f"ok-2,{MEMBER},revit,,{iso(start)},{iso(start + H)},\n"
        f"who,nobody@example.com,autocad,,{iso(start)},{iso(start + H)},\n"
    )
    code, out, _ = import_usage(tmp_path, text, "--skip-invalid")
    assert code == 0, out
    assert "Skipped line 3: started_at “2026-13-45T08:00:00Z” is not an ISO 8601 time" in out
    assert "Skipped line 5: user nobody@example.com is not a member" in out
    assert "2 invalid rows skipped" in out and "2 charged" in out and "17.00 tokens" in out
    assert set(UsageEvent.objects.values_list("event_id", flat=True)) == {"ok-1", "ok-2"}


def test_the_live_import_reports_events_too_old_for_it_with_their_line(recent_pack, tmp_path):
    start = timezone.now() - 5 * H
    old = timezone.now() - timedelta(days=5)
    text = HEADER + (
        f"new,{MEMBER},autocad,,{iso(start)},{iso(start + H)},\nold,{MEMBER},revit,,{iso(old)},{iso(old + H)},\n"
    )
    code, out, _ = import_usage(tmp_path, text)
    assert code == 1
    assert "line 3: event old: The event ended more than 48 hours ago" in out
    assert "1 charged, 0 no charge, 0 denied, 0 replayed, 1 errors; 7.00 tokens" in out
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["new"]


@pytest.mark.parametrize("run_rows", [50_000, 1], ids=["in-memory", "spilled-runs-merged"])
def test_historical_import_replays_old_events_in_time_order(team, buy, tmp_path, monkeypatch, run_rows):
    # run_rows=1: every row is sorted in a run of its own on disk, and the runs are merged.
    monkeypatch.setattr("billing.management.commands.import_usage.RUN_ROWS", run_rows)
    monkeypatch.setattr("billing.management.commands.import_usage.CHECK_ROWS", 2)
    first = buy(100, at=datetime(2022, 4, 1, tzinfo=UTC))  # expires 2023-04-01
    second = buy(100, at=datetime(2023, 3, 1, tzinfo=UTC))
    monday = datetime(2022, 5, 2, 8, tzinfo=UTC)
    # Listed newest first: the import must sort them (windows depend on time order).
    text = HEADER + (
        f"late-job,{MEMBER},cfd-simulation,complex,2023-05-02T10:00:00+02:00,,\n"
        f"tuesday,{MEMBER},autocad,,{iso(monday + 23 * H)},{iso(monday + 28 * H)},\n"
        f"monday,{MEMBER},autocad,,{iso(monday)},{iso(monday + 2 * H)},\n"
    )
    code, out, err = import_usage(tmp_path, text, "--historical", "--batch-size", "1")
    assert code == 0, out
    assert "3 charged" in out and "49.00 tokens" in out
    # Monday 08:00 opens a window; Tuesday's session (07:00-12:00) is charged again at 08:00.
    assert list(Charge.objects.filter(event__product="autocad").values_list("at", flat=True)) == [
        monday,
        monday + 24 * H,
    ]
    # The first pack expired on time between batches, holding what the 2022 usage left.
    first.refresh_from_db()
    assert first.expired_at is not None
    expiry = LedgerEntry.objects.get(pack=first, kind="expiry")
    assert (expiry.amount, expiry.at) == (Decimal("-86.00"), first.expires_at)
    assert TokenPack.objects.get(pk=second.pk).remaining == Decimal("65.00")
    assert "1/3 events" in err and "3/3 events (100%)" in err


def test_a_historical_import_is_paid_by_packs_the_expiry_job_already_closed(team, buy, tmp_path):
    """The import follows the live rules: the pack was valid then, so that part of its expiry is reversed."""
    pack = buy(100, at=datetime(2022, 4, 1, tzinfo=UTC))
    services.expire_packs()
    text = HEADER + f"j-1,{MEMBER},cfd-simulation,simple,2022-05-02T10:00:00+00:00,,\n"
    code, out, _ = import_usage(tmp_path, text, "--historical")
    assert code == 0
    assert "1 charged, 0 no charge, 0 denied" in out
    kinds = list(LedgerEntry.objects.filter(pack=pack).order_by("id").values_list("kind", "amount"))
    assert kinds == [
        ("purchase", Decimal("100.00")),
        ("expiry", Decimal("-100.00")),
        ("usage", Decimal("-5.00")),
        ("expiry_reversal", Decimal("5.00")),
    ]
    pack.refresh_from_db()
    assert pack.remaining == 0


def test_without_historical_old_events_are_refused(team, buy, tmp_path):
    buy(100, at=datetime(2022, 4, 1, tzinfo=UTC))
    text = HEADER + f"old,{MEMBER},cfd-simulation,simple,2022-05-02T10:00:00+00:00,,\n"
    code, out, _ = import_usage(tmp_path, text)
    assert code == 1
    assert "line 2: event old: The event ended more than 48 hours ago" in out


def test_reimporting_the_same_file_charges_nothing(team, buy, tmp_path):
    pack = buy(100, at=datetime(2022, 4, 1, tzinfo=UTC))
    text = HEADER + (
        f"j-1,{MEMBER},cfd-simulation,moderate,2022-05-02T10:00:00+00:00,,\n"
        f"j-2,{MEMBER},autocad,,2022-05-02T10:00:00+00:00,2022-05-02T11:00:00+00:00,\n"
    )
    assert import_usage(tmp_path, text, "--historical")[0] == 0
    code, out, _ = import_usage(tmp_path, text, "--historical")
    assert code == 0
    assert "0 charged, 0 no charge, 0 denied, 2 replayed, 0 errors; 0.00 tokens" in out
    assert TokenPack.objects.get(pk=pack.pk).remaining == Decimal("83.00")
    assert UsageEvent.objects.count() == 2


def test_an_unknown_team_is_a_clear_error(team, tmp_path):
    code, out, _ = import_usage(tmp_path, HEADER, team="no-such-team")
    assert code == 1
    assert "There is no team with the slug “no-such-team”." in out


def test_a_future_event_is_refused_before_anything_is_charged(recent_pack, tmp_path):
    future = timezone.now() + timedelta(days=400)
    text = HEADER + f"f-1,{MEMBER},cfd-simulation,simple,{iso(future)},,\n"
    code, out, _ = import_usage(tmp_path, text, "--historical")
    assert code == 1
    assert "line 2: started_at" in out and "lies in the future" in out
    assert TokenPack.objects.filter(expired_at__isnull=False).count() == 0


# --- team_balance ---------------------------------------------------------------------------------


def tokens_of(balance: dict) -> dict:
    return {key: str(value) for key, value in balance["tokens"].items()}


def test_balance_after_a_purchase(team, buy):
    pack = buy(100)
    balance = team_balance(team=team)
    assert balance["team"] == "own-team"
    assert tokens_of(balance) == {"available": "100.00", "purchased": "100.00", "used": "0.00", "expired": "0.00"}
    assert balance["packs"] == [
        {
            "reference": pack.reference,
            "tokens": 100,
            "remaining": Decimal("100.00"),
            "purchased_at": pack.purchased_at,
            "expires_at": pack.expires_at,
            "status": "active",
        }
    ]


def test_balance_after_usage_and_a_refund(team, buy, log):
    buy(100)
    log("cfd-simulation", T0, variant="complex", now=T0, event_id="job")
    log("autocad", T0, T0 + H, now=T0 + H)
    assert tokens_of(team_balance(team=team)) == {
        "available": "58.00",
        "purchased": "100.00",
        "used": "42.00",
        "expired": "0.00",
    }
    services.refund_usage(team=team, event_id="job", now=T0 + 2 * H)
    assert tokens_of(team_balance(team=team))["used"] == "7.00"
    assert tokens_of(team_balance(team=team))["available"] == "93.00"


def test_balance_after_expiry(team, buy, log):
    old = buy(100, at=datetime(2024, 6, 1, tzinfo=UTC))
    log("autocad", datetime(2024, 7, 1, 8, tzinfo=UTC), datetime(2024, 7, 1, 9, tzinfo=UTC))
    buy(50)
    # Past its expiry, not yet closed: already lost, never available.
    assert tokens_of(team_balance(team=team)) == {
        "available": "50.00",
        "purchased": "50.00",
        "used": "0.00",
        "expired": "93.00",
    }
    services.expire_packs()
    balance = team_balance(team=team)
    assert tokens_of(balance)["expired"] == "93.00"
    assert [(p["reference"], p["status"], p["remaining"]) for p in balance["packs"]] == [
        (old.reference, "expired", Decimal("0.00")),
        ("ORDER-2", "active", Decimal("50.00")),
    ]


def test_a_depleted_pack_leaves_the_donut(team, buy, log):
    buy(7, at=datetime(2025, 12, 15, tzinfo=UTC))
    buy(100)
    log("autocad", T0, T0 + H)  # 7 tokens: the small pack (earliest expiry) pays
    balance = team_balance(team=team)
    assert tokens_of(balance) == {"available": "100.00", "purchased": "100.00", "used": "0.00", "expired": "0.00"}
    assert [p["status"] for p in balance["packs"]] == ["depleted", "active"]


def test_balance_after_a_move_keeps_past_usage_with_the_team_that_spent_it(team, buy, log, sister):
    pack = buy(100)
    log("cfd-simulation", T0, variant="complex", now=T0)
    services.move_pack(pack=pack, to_team=sister, now=T0 + H)
    assert tokens_of(team_balance(team=team)) == {
        "available": "0.00",
        "purchased": "0.00",
        "used": "0.00",
        "expired": "0.00",
    }
    assert team_balance(team=team)["packs"] == []
    received = team_balance(team=sister)
    assert tokens_of(received) == {"available": "65.00", "purchased": "65.00", "used": "0.00", "expired": "0.00"}
    assert received["packs"][0]["reference"] == pack.reference


def test_balance_at_a_past_time(team, buy, log, sister):
    services.grant_cloud_credits(team=team, credits=Decimal("50"), granted_at=datetime(2022, 6, 1, tzinfo=UTC))
    old = buy(100, at=datetime(2022, 6, 1, tzinfo=UTC))
    log("autocad", datetime(2022, 7, 1, 8, tzinfo=UTC), datetime(2022, 7, 1, 9, tzinfo=UTC))
    log("cfd-simulation", datetime(2022, 7, 2, tzinfo=UTC), variant="moderate")  # paid in credits
    services.expire_packs(now=datetime(2024, 1, 1, tzinfo=UTC))
    services.expire_cloud_credits(now=datetime(2024, 1, 1, tzinfo=UTC))
    pack = buy(100)
    log("cfd-simulation", T0, variant="complex", now=T0)
    services.move_pack(pack=pack, to_team=sister, now=T0 + H)

    in_2022 = team_balance(team=team, at=datetime(2022, 8, 1, tzinfo=UTC))
    assert tokens_of(in_2022) == {"available": "93.00", "purchased": "100.00", "used": "7.00", "expired": "0.00"}
    assert in_2022["cloud_credits"] == {
        "available": Decimal("40.00"),
        "expires_at": datetime(2023, 3, 29, tzinfo=UTC),
    }
    assert [(p["reference"], p["remaining"], p["status"]) for p in in_2022["packs"]] == [
        (old.reference, Decimal("93.00"), "active")
    ]
    after_expiry = team_balance(team=team, at=datetime(2023, 7, 1, tzinfo=UTC))
    assert tokens_of(after_expiry)["expired"] == "93.00"
    assert after_expiry["cloud_credits"]["available"] == 0
    before_move = team_balance(team=team, at=T0 + 30 * timedelta(minutes=1))
    assert tokens_of(before_move) == {"available": "65.00", "purchased": "100.00", "used": "35.00", "expired": "93.00"}
    assert team_balance(team=sister, at=T0 + 30 * timedelta(minutes=1))["packs"] == []
    after_move = team_balance(team=team, at=T0 + 2 * H)
    assert tokens_of(after_move)["available"] == "0.00"
    assert [p["reference"] for p in after_move["packs"]] == [old.reference]
    assert tokens_of(team_balance(team=sister, at=T0 + 2 * H))["available"] == "65.00"
    # Today, from current rows, agrees with the ledger rebuilt up to now.
    assert team_balance(team=sister) == team_balance(team=sister, at=timezone.now())
    assert team_balance(team=team) == team_balance(team=team, at=timezone.now())


def test_balance_takes_the_same_few_queries_for_any_number_of_packs(team, buy, log, django_assert_max_num_queries):
    for n in range(15):
        buy(10 + n)
    log("cfd-simulation", T0, variant="complex", now=T0)
    with django_assert_max_num_queries(3):
        assert len(team_balance(team=team)["packs"]) == 15
    with django_assert_max_num_queries(3):
        assert len(team_balance(team=team, at=T0 + H)["packs"]) == 15


def test_the_balance_reads_no_usage_entry_and_still_counts_what_the_team_used(team, buy, log, sister):
    """Its cost must not grow with the history: "used" comes from the packs' purchase and
    move-in entries, never from summing usage. It must still equal the team's own usage net
    of refunds on its active packs, after a refund and for a pack moved to another team."""
    buy(100)  # expires before `moved`, so it pays first
    moved = buy(80, at=datetime(2026, 2, 1, tzinfo=UTC))
    log("cfd-simulation", T0, variant="complex", now=T0, event_id="job-1")  # 35
    log("revit", T0 + H, T0 + 2 * H, now=T0 + 2 * H)  # 10
    services.refund_usage(team=team, event_id="job-1", now=T0 + 3 * H)
    services.move_pack(pack=moved, to_team=sister, now=T0 + 4 * H)
    for holder in (team, sister):
        active = TokenPack.objects.filter(team=holder, expired_at__isnull=True, remaining__gt=0)
        spent = -sum(
            LedgerEntry.objects.filter(team=holder, pack__in=active, kind__in=["usage", "refund"]).values_list(
                "amount", flat=True
            ),
            Decimal(0),
        )
        with CaptureQueriesContext(connection) as queries:
            balance = team_balance(team=holder)
        assert Decimal(balance["tokens"]["used"]) == spent
        assert not [query for query in queries.captured_queries if "'usage'" in query["sql"]]
    # The team used 10 tokens (the job was refunded); the sister got `moved` whole.
    assert tokens_of(team_balance(team=team)) == {
        "available": "90.00",
        "purchased": "100.00",
        "used": "10.00",
        "expired": "0.00",
    }
    assert tokens_of(team_balance(team=sister)) == {
        "available": "80.00",
        "purchased": "80.00",
        "used": "0.00",
        "expired": "0.00",
    }
