"""Late events through the HTTP API (issue 13, docs/charging.md "Re-pricing"): charges
depend on what happened, not on when it arrived. The three cases of the issue, with the
ledger entries each writes, and the one place where order still decides."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.utils import timezone

from billing import services
from billing.models import Charge, CloudCreditBalance, LedgerEntry, TokenPack, UsageEvent, UsageRollup, UsageWindow
from billing.selectors import ledger_check
from tests.api.test_usage import EVENTS, daily, job

H = timedelta(hours=1)


def entries(**filters) -> list[tuple]:
    rows = LedgerEntry.objects.filter(**filters).exclude(kind__in=["purchase", "grant"]).order_by("id")
    return [(e.kind, e.amount, e.event.event_id if e.event else None) for e in rows]


def post(api, keys, *events) -> list[dict]:
    response = api.post(EVENTS, {"events": list(events)}, key=keys.team)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_an_earlier_launch_logged_late_re_prices_the_window_it_now_covers(api, keys, assigned, pack):
    eight = timezone.now().replace(minute=0, second=0, microsecond=0) - 30 * H
    ten = eight + 2 * H
    [later] = post(api, keys, daily("at-10", ten, hours=1))
    [late] = post(api, keys, daily("at-8", eight, hours=1))

    assert (later["status"], later["tokens"]) == ("charged", "7.00")
    assert (late["status"], late["tokens"]) == ("charged", "7.00")
    # The late event's result says what it re-priced, and how.
    [repriced] = late["repriced"]
    assert (repriced["id"], repriced["after"]) == ("at-10", "at-8")
    assert (repriced["before"]["status"], repriced["before"]["tokens"]) == ("charged", "7.00")
    assert repriced["now"] == {
        "status": "no_charge",
        "reason": "inside_window",
        "tokens": "0.00",
        "cloud_credits": "0.00",
        "charges": [],
    }
    # The team pays 7, as for the two sessions in one batch; the ledger says why.
    pack.refresh_from_db()
    assert pack.remaining == Decimal("993.00")
    assert entries(pack=pack) == [
        ("usage", Decimal("-7.00"), "at-10"),
        ("reprice", Decimal("7.00"), "at-10"),
        ("usage", Decimal("-7.00"), "at-8"),
    ]
    given_back = LedgerEntry.objects.get(kind="reprice")
    assert given_back.charge.superseded_at is not None and given_back.at == ten
    assert "at-8" in given_back.note
    # The stored outcome is re-priced too, with its history; the window is the 08:00 one.
    stored = UsageEvent.objects.get(event_id="at-10")
    assert (stored.status, stored.reason, stored.tokens) == ("no_charge", "inside_window", 0)
    assert stored.adjustments == [repriced]
    assert list(UsageWindow.objects.values_list("opened_at", flat=True)) == [eight]
    assert Charge.objects.filter(superseded_at__isnull=True, status="charged").count() == 1
    assert sum(UsageRollup.objects.values_list("tokens", flat=True)) == 7
    # A replay is stable: the outcome first returned (the stored event has the re-pricing).
    [again] = post(api, keys, daily("at-10", ten, hours=1))
    assert again == {**later, "replayed": True}
    assert post(api, keys, daily("at-10", ten, hours=1)) == [again]
    assert ledger_check().ok


def test_a_late_job_from_before_a_pack_expired_is_paid_by_that_pack(api, keys, assigned, pack, personas):
    expires = timezone.now().replace(microsecond=0) - 2 * H
    old = services.record_purchase(
        team=personas.team, reference="PO-OLD", tokens=30, purchased_at=expires - relativedelta(months=12)
    )[0]
    assert old.expires_at == expires
    assert services.expire_packs() == 1  # the job ran: 30 tokens written off

    [result] = post(api, keys, job("j-3h", expires - H))  # 3 hours ago: the pack was valid then

    assert (result["status"], result["charges"][0]["draws"]) == ("charged", [{"pack": "PO-OLD", "tokens": "10.00"}])
    old.refresh_from_db()
    pack.refresh_from_db()
    assert (old.remaining, pack.remaining) == (0, 1000)
    # The part of the expiry the job needed is reversed; the pack still holds nothing.
    assert entries(pack=old) == [
        ("expiry", Decimal("-30.00"), None),
        ("usage", Decimal("-10.00"), "j-3h"),
        ("expiry_reversal", Decimal("10.00"), None),
    ]
    assert LedgerEntry.objects.get(kind="expiry_reversal").at == expires
    # After its expiry the pack never pays, whether or not the job has run.
    [after] = post(api, keys, job("j-1h", expires + H))
    assert after["charges"][0]["draws"] == [{"pack": "PO-1", "tokens": "10.00"}]
    assert ledger_check().ok


def test_a_late_cloud_credit_job_from_before_the_cutoff_is_paid_in_credits(
    api, keys, assigned, pack, personas, settings
):
    cutoff = timezone.now().replace(microsecond=0) - 2 * H
    settings.FLEX_CLOUD_CREDITS_EXPIRE_AT = cutoff
    balance = services.grant_cloud_credits(team=personas.team, credits=Decimal("50"), granted_at=cutoff - 30 * H)
    assert services.expire_cloud_credits() == 1

    [result] = post(api, keys, job("c-3h", cutoff - H))

    assert (result["status"], result["tokens"], result["cloud_credits"]) == ("charged", "0.00", "10.00")
    balance.refresh_from_db()
    pack.refresh_from_db()
    assert (balance.remaining, pack.remaining) == (0, 1000)
    assert entries(credit_balance=balance) == [
        ("expiry", Decimal("-50.00"), None),
        ("usage", Decimal("-10.00"), "c-3h"),
        ("expiry_reversal", Decimal("10.00"), None),
    ]
    [after] = post(api, keys, job("c-1h", cutoff + H))
    assert (after["tokens"], after["cloud_credits"]) == ("10.00", "0.00")
    assert CloudCreditBalance.objects.get(pk=balance.pk).remaining == 0
    assert ledger_check().ok


def test_a_charge_already_taken_is_never_taken_back_for_a_late_event(api, keys, assigned, personas):
    """In time order the late job would be paid and the later one denied; the later one was
    paid first, so the late job is denied instead."""
    services.record_purchase(team=personas.team, reference="PO-10", tokens=10, purchased_at=timezone.now() - 10 * H)
    [first] = post(api, keys, job("paid", timezone.now() - H))
    [late] = post(api, keys, job("late", timezone.now() - 3 * H))

    assert first["status"] == "charged"
    assert (late["status"], late["reason"], "repriced" in late) == ("denied", "insufficient_balance", False)
    assert TokenPack.objects.get(reference="PO-10").remaining == 0
    assert entries() == [("usage", Decimal("-10.00"), "paid")]
    assert UsageEvent.objects.get(event_id="paid").adjustments == []
    assert ledger_check().ok
