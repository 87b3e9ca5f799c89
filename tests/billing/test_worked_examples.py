"""The worked examples of domain.md, end to end through log_usage."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from billing.models import LedgerEntry, TokenPack
from tests.billing.conftest import T0, tokens

H = timedelta(hours=1)


def test_autocad_monday_then_tuesday_morning_costs_seven_plus_seven(buy, log):
    buy(100)
    monday = log("autocad", T0, T0 + 2 * H)  # 08:00-10:00 Monday
    tuesday = log("autocad", T0 + 23 * H, T0 + 28 * H)  # 07:00-12:00 Tuesday
    assert tokens(monday) == 7
    assert tokens(tuesday) == 7
    assert [c["at"] for c in tuesday["charges"]] == [(T0 + 24 * H).isoformat()]


def test_autocad_and_revit_on_one_day_cost_seventeen(buy, log):
    buy(100)
    total = tokens(log("autocad", T0, T0 + H)) + tokens(log("revit", T0 + H, T0 + 2 * H))
    assert total == 17


def test_a_three_minute_launch_costs_nothing_and_opens_no_window(buy, log):
    buy(100)
    short = log("autocad", T0, T0 + timedelta(minutes=3))
    assert (short["status"], short["reason"], tokens(short)) == ("no_charge", "grace_period", 0)
    later = log("autocad", T0 + H, T0 + 2 * H)
    assert tokens(later) == 7  # no window was open


def test_a_35_token_cfd_job_with_20_credits_left_is_paid_wholly_in_tokens(team, buy, log, personas):
    from billing import services

    pack = buy(100, at=datetime(2022, 6, 1, tzinfo=UTC))  # before the cloud-credit cutoff
    services.grant_cloud_credits(team=team, credits=Decimal("20"), granted_at=pack.purchased_at)
    job_time = pack.purchased_at + timedelta(days=10)
    result = log("cfd-simulation", job_time, variant="complex", now=job_time)
    assert (result["tokens"], result["cloud_credits"]) == ("35.00", "0.00")
    assert TokenPack.objects.get(pk=pack.pk).remaining == 65
    assert LedgerEntry.objects.filter(kind="usage", credit_balance__isnull=False).count() == 0
