"""The scheduled jobs (domain.md "Jobs"), run as beat runs them: the tasks, with a clock
the tests move (time-machine). Tasks run in-process here; tests/services/ runs them through
Redis, a real worker and beat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core import mail

from accounts import services as account_services
from accounts.models import Notification, NotificationKind, Role
from billing import alerts, services
from billing.models import EntryKind, ExpiryReminder, LedgerCheckRun, LedgerEntry, LowBalanceState, TokenPack
from billing.selectors import ledger_violations
from billing.tasks import (
    check_ledger_task,
    check_low_balances_task,
    expire_cloud_credits_task,
    expire_packs_task,
    send_expiry_reminders_task,
)
from tests.factories import MembershipFactory, TeamFactory, UserFactory

BOUGHT = datetime(2026, 1, 10, 9, 30, tzinfo=UTC)
TERM_END = datetime(2027, 1, 10, 9, 30, tzinfo=UTC)  # 12 months later
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


@pytest.fixture
def clock():
    with time_machine.travel(BOUGHT, tick=False) as traveller:
        yield traveller


@pytest.fixture
def job(django_capture_on_commit_callbacks):
    """job(task) runs a task as the worker would: its e-mails go out after its commits."""

    def run(task, *args):
        with django_capture_on_commit_callbacks(execute=True):
            result = task.delay(*args)
        return result.get()

    return run


def expiry_entries(pack: TokenPack) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(pack=pack, kind=EntryKind.EXPIRY))


def spend(log, tokens: int, at: datetime) -> None:
    """Spend whole tokens at ``at``: design automation costs 2 tokens per processing hour."""
    result = log("design-automation", at, quantity=str(Decimal(tokens) / 2))
    assert result["status"] == "charged", result
    assert Decimal(result["tokens"]) == tokens


def notices(kind: str, **filters) -> list[Notification]:
    return list(Notification.objects.filter(kind=kind, **filters).order_by("user__email", "id"))


# --- Expiry --------------------------------------------------------------------------------------


def test_a_pack_expires_exactly_at_the_end_of_its_term(job, buy, clock):
    pack = buy(100, at=BOUGHT)
    assert pack.expires_at == TERM_END

    clock.move_to(TERM_END - SECOND)
    assert job(expire_packs_task) == 0
    pack.refresh_from_db()
    assert pack.expired_at is None and pack.remaining == 100

    clock.move_to(TERM_END)
    assert job(expire_packs_task) == 1
    pack.refresh_from_db()
    assert pack.expired_at == TERM_END
    assert pack.remaining == 0
    [entry] = expiry_entries(pack)
    assert entry.amount == -100
    assert entry.at == TERM_END  # the entry is dated at the term, not when the job ran
    assert ledger_violations() == []


def test_after_downtime_one_late_run_expires_everything_it_missed(job, buy, log, clock):
    packs = [buy(50, at=BOUGHT + n * 3 * DAY) for n in range(4)]
    spend(log, 30, BOUGHT + 20 * DAY)  # the earliest-expiring pack pays
    # Nobody ran the job for a month after the first pack's term.
    clock.move_to(TERM_END + 30 * DAY)
    assert job(expire_packs_task) == 4
    for pack in packs:
        pack.refresh_from_db()
        assert pack.remaining == 0
        assert pack.expired_at == TERM_END + 30 * DAY
        [entry] = expiry_entries(pack)
        assert entry.at == pack.expires_at  # each dated at its own term
    assert [-e.amount for e in LedgerEntry.objects.filter(kind=EntryKind.EXPIRY).order_by("at")] == [20, 50, 50, 50]
    assert ledger_violations() == []


def test_expiring_twice_writes_one_entry(job, buy, clock):
    pack = buy(80, at=BOUGHT)
    clock.move_to(TERM_END + DAY)
    assert job(expire_packs_task) == 1
    assert job(expire_packs_task) == 0
    clock.move_to(TERM_END + 40 * DAY)
    assert job(expire_packs_task) == 0
    assert len(expiry_entries(pack)) == 1
    assert ledger_violations() == []


def test_many_teams_expire_a_few_teams_a_transaction_with_the_same_few_queries_each(
    db, clock, settings, django_assert_num_queries
):
    """The job closes teams in chunks; each chunk costs the same statements however many
    packs its teams hold, and every pack gets its one entry dated at its own term."""
    settings.FLEX_EXPIRY_TEAMS_PER_TRANSACTION = 2
    teams = TeamFactory.create_batch(5)
    packs = [
        services.record_purchase(
            team=team, reference=f"P-{team.pk}-{n}", tokens=10 + n, purchased_at=BOUGHT + n * DAY, now=BOUGHT + n * DAY
        )[0]
        for team in teams
        for n in range(3)
    ]
    clock.move_to(TERM_END + 5 * DAY)
    # The due teams; then 3 chunks of (at most) 2 teams, each: lock the teams, insert the
    # entries, close the packs; and its transaction (a savepoint in a test).
    with django_assert_num_queries(1 + 3 * (3 + 2)):
        assert services.expire_packs() == 15
    for pack in packs:
        pack.refresh_from_db()
        assert (pack.remaining, pack.expired_at) == (0, TERM_END + 5 * DAY)
        [entry] = expiry_entries(pack)
        assert (entry.amount, entry.at, entry.team_id) == (-pack.tokens, pack.expires_at, pack.team_id)
    with django_assert_num_queries(1):
        assert services.expire_packs() == 0
    assert ledger_violations() == []


def test_a_depleted_pack_is_closed_without_an_entry(job, buy, log, clock):
    pack = buy(10, at=BOUGHT)
    spend(log, 10, BOUGHT + DAY)
    clock.move_to(TERM_END)
    assert job(expire_packs_task) == 1
    pack.refresh_from_db()
    assert pack.expired_at is not None
    assert expiry_entries(pack) == []


def test_cloud_credits_expire_at_the_cutoff_once(job, team, settings):
    cutoff = settings.FLEX_CLOUD_CREDITS_EXPIRE_AT
    with time_machine.travel(cutoff - 30 * DAY, tick=False) as traveller:
        balance = services.grant_cloud_credits(team=team, credits=Decimal("40"))
        traveller.move_to(cutoff - SECOND)
        assert job(expire_cloud_credits_task) == 0
        traveller.move_to(cutoff)
        assert job(expire_cloud_credits_task) == 1
        assert job(expire_cloud_credits_task) == 0
    balance.refresh_from_db()
    assert balance.remaining == 0
    assert LedgerEntry.objects.filter(credit_balance=balance, kind=EntryKind.EXPIRY).count() == 1


# --- Expiry reminders ------------------------------------------------------------------------------


def test_reminders_go_out_at_90_30_and_7_days_once_each(job, buy, personas, clock):
    pack = buy(100, at=BOUGHT, reference="PO-42")
    mail.outbox.clear()
    sent = []
    # The job runs hourly; walk the year in hours around each threshold and in days elsewhere.
    for days_before, expected_threshold in [(91, None), (90, 90), (60, None), (30, 30), (8, None), (7, 7), (1, None)]:
        moment = TERM_END - days_before * DAY
        for step in (moment - SECOND, moment, moment + timedelta(hours=1)):
            clock.move_to(step)
            job(send_expiry_reminders_task)
        sent.append((days_before, sorted(ExpiryReminder.objects.filter(pack=pack).values_list("threshold", flat=True))))
        if expected_threshold:
            assert ExpiryReminder.objects.get(pack=pack, threshold=expected_threshold).announced
    assert sent[-1] == (1, [7, 30, 90])
    admin_notices = notices(
        NotificationKind.EXPIRY_REMINDER,
        team=personas.team,
        user__memberships__role__in=["primary_admin", "secondary_admin"],
    )
    # Two admins, three thresholds: six notices; the sales rep got three.
    assert len(admin_notices) == 6
    assert len(notices(NotificationKind.EXPIRY_REMINDER, user=personas.sales_rep)) == 3
    assert not Notification.objects.filter(user__in=[personas.report_viewer, personas.member]).exists()
    titles = [n.title for n in notices(NotificationKind.EXPIRY_REMINDER, user=personas.primary_admin)]
    assert sorted(titles) == sorted(
        ["100 tokens expire in 90 days", "100 tokens expire in 30 days", "100 tokens expire in 7 days"]
    )
    # Each notice is e-mailed once, in plain text and HTML.
    assert len(mail.outbox) == 9
    to_rep = [m for m in mail.outbox if m.to == [personas.sales_rep.email]]
    assert len(to_rep) == 3
    assert "PO-42" in to_rep[0].body and "Own Team" in to_rep[0].body
    assert to_rep[0].alternatives[0][1] == "text/html"
    assert Notification.objects.filter(emailed_at__isnull=True).count() == 0


def test_a_late_run_announces_only_the_nearest_threshold(job, buy, personas, clock):
    pack = buy(100, at=BOUGHT)
    clock.move_to(TERM_END - 20 * DAY)  # the job never ran at 90 or 30 days
    assert job(send_expiry_reminders_task) == 1
    assert {(r.threshold, r.announced) for r in ExpiryReminder.objects.filter(pack=pack)} == {(30, True), (90, False)}
    assert [n.title for n in notices(NotificationKind.EXPIRY_REMINDER, user=personas.primary_admin)] == [
        "100 tokens expire in 20 days"
    ]
    assert job(send_expiry_reminders_task) == 0


def test_no_reminder_for_a_pack_with_nothing_left_or_already_expired(job, buy, log, clock):
    used_up = buy(10, at=BOUGHT)
    spend(log, 10, BOUGHT + DAY)
    clock.move_to(TERM_END + DAY)  # expired while the job was down: nothing left to remind of
    buy(20, at=TERM_END + DAY - timedelta(hours=1))
    assert job(send_expiry_reminders_task) == 0
    assert not ExpiryReminder.objects.filter(pack=used_up).exists()
    assert not Notification.objects.exists()


def test_admins_who_opted_out_and_teams_that_switched_reminders_off(job, buy, personas, clock):
    buy(100, at=BOUGHT)
    account_services.update_alert_settings(
        team=personas.team,
        actor=personas.primary_admin,
        expiry_reminders=True,
        low_balance=True,
        low_balance_unit="percent",
        low_balance_value=20,
        expiry_recipients=[personas.secondary_admin.pk],
        low_balance_recipients=[personas.primary_admin.pk, personas.secondary_admin.pk],
    )
    clock.move_to(TERM_END - 90 * DAY)
    job(send_expiry_reminders_task)
    told = {n.user for n in notices(NotificationKind.EXPIRY_REMINDER)}
    assert told == {personas.secondary_admin, personas.sales_rep}

    account_services.update_alert_settings(
        team=personas.team,
        actor=personas.primary_admin,
        expiry_reminders=False,
        low_balance=True,
        low_balance_unit="percent",
        low_balance_value=20,
        expiry_recipients=[personas.primary_admin.pk, personas.secondary_admin.pk],
        low_balance_recipients=[],
    )
    clock.move_to(TERM_END - 30 * DAY)
    job(send_expiry_reminders_task)
    # The team's admins are not told; the reseller's sales rep still is.
    assert [
        n.user
        for n in notices(NotificationKind.EXPIRY_REMINDER, user__in=[personas.primary_admin, personas.secondary_admin])
    ] == [personas.secondary_admin]
    assert len(notices(NotificationKind.EXPIRY_REMINDER, user=personas.sales_rep)) == 2


# --- Low balance -----------------------------------------------------------------------------------


def test_low_balance_alerts_once_per_crossing_and_again_after_recovery(job, buy, log, personas, clock):
    buy(100, at=BOUGHT)
    at = BOUGHT + timedelta(hours=1)

    def run() -> int:
        return job(check_low_balances_task)

    def alerts_so_far() -> int:
        return len(notices(NotificationKind.LOW_BALANCE, user=personas.primary_admin))

    assert run() == 0
    clock.move_to(at)
    spend(log, 80, at)  # 20 of 100 left: not below 20%
    assert run() == 0
    clock.move_to(at + timedelta(hours=1))
    spend(log, 2, at + timedelta(hours=1))  # 18 left: below
    clock.move_to(at + timedelta(hours=2))
    assert run() == 1
    assert alerts_so_far() == 1
    assert run() == 0  # still low: no second alert
    clock.move_to(at + timedelta(hours=3))
    spend(log, 8, at + timedelta(hours=3))
    clock.move_to(at + timedelta(hours=4))
    assert run() == 0
    assert alerts_so_far() == 1

    # A new pack: the active packs now hold 10 + 100 of 200 tokens, far above 20%: recovered.
    clock.move_to(at + timedelta(hours=5))
    buy(100, at=at + timedelta(hours=5))
    clock.move_to(at + timedelta(hours=6))
    assert run() == 0
    state = LowBalanceState.objects.get(team=personas.team)
    assert state.is_low is False and state.recovered_at == at + timedelta(hours=6)

    # The old pack runs out (it is no longer active) and the new one drops to 19 of 100.
    clock.move_to(at + timedelta(hours=7))
    spend(log, 91, at + timedelta(hours=7))
    clock.move_to(at + timedelta(hours=8))
    assert run() == 1
    assert alerts_so_far() == 2
    latest = notices(NotificationKind.LOW_BALANCE, user=personas.primary_admin)[-1]
    assert latest.title == "Low balance: 19 tokens left in Own Team"
    # Both admins, nobody else.
    assert {n.user for n in notices(NotificationKind.LOW_BALANCE)} == {personas.primary_admin, personas.secondary_admin}
    assert LowBalanceState.objects.get(team=personas.team).alerts == 2


def test_the_team_threshold_in_tokens(buy, log, personas, clock):
    buy(1000, at=BOUGHT)
    account_services.update_alert_settings(
        team=personas.team,
        actor=personas.primary_admin,
        expiry_reminders=True,
        low_balance=True,
        low_balance_unit="tokens",
        low_balance_value=500,
        expiry_recipients=[],
        low_balance_recipients=[personas.primary_admin.pk],
    )
    at = BOUGHT + timedelta(hours=1)
    clock.move_to(at)
    spend(log, 500, at)  # 500 left: not below 500
    assert alerts.check_low_balances() == 0
    spend(log, 2, at)
    assert alerts.check_low_balances() == 1
    [notice] = notices(NotificationKind.LOW_BALANCE)
    assert notice.user == personas.primary_admin
    assert "below the alert threshold of 500 tokens" in notice.body


def test_a_team_whose_last_pack_ran_out_is_low(buy, log, personas, clock):
    buy(10, at=BOUGHT)
    clock.move_to(BOUGHT + DAY)
    spend(log, 10, BOUGHT + DAY)
    assert alerts.check_low_balances() == 1


def test_low_balance_switched_off_keeps_track_but_tells_nobody(buy, log, personas, clock):
    buy(100, at=BOUGHT)
    account_services.update_alert_settings(
        team=personas.team,
        actor=personas.primary_admin,
        expiry_reminders=True,
        low_balance=False,
        low_balance_unit="percent",
        low_balance_value=20,
        expiry_recipients=[],
        low_balance_recipients=[],
    )
    clock.move_to(BOUGHT + DAY)
    spend(log, 90, BOUGHT + DAY)
    assert alerts.check_low_balances() == 1  # the crossing is recorded...
    assert not Notification.objects.exists()  # ...but nobody wanted to hear of it
    assert LowBalanceState.objects.get(team=personas.team).is_low


def test_a_team_that_never_bought_a_pack_is_not_checked(personas):
    assert alerts.check_low_balances() == 0
    assert not LowBalanceState.objects.exists()


# --- Ledger check ----------------------------------------------------------------------------------


def test_the_nightly_ledger_check_alerts_staff_once_when_something_does_not_add_up(job, buy, personas, clock):
    staff = UserFactory(email="staff@flexadmin.example", is_staff=True)
    pack = buy(100, at=BOUGHT)
    clock.move_to(BOUGHT + DAY)
    assert job(check_ledger_task) == {"day": "2026-01-11", "ok": True, "violations": 0}
    assert not Notification.objects.exists()

    # Something writes behind the services' back: the pack no longer equals its entries.
    TokenPack.objects.filter(pk=pack.pk).update(remaining=Decimal("90"))
    clock.move_to(BOUGHT + DAY + timedelta(hours=1))
    assert job(check_ledger_task)["ok"] is False
    assert job(check_ledger_task)["ok"] is False  # run twice the same night
    [notice] = notices(NotificationKind.LEDGER_CHECK)
    assert notice.user == staff
    assert "remaining is 90.00 but its 1 ledger entries sum to 100.00" in notice.body
    assert [m.to for m in mail.outbox if "Ledger check failed" in m.subject] == [[staff.email]]

    clock.move_to(BOUGHT + 2 * DAY)  # the next night: still broken, told again
    job(check_ledger_task)
    assert len(notices(NotificationKind.LEDGER_CHECK)) == 2
    assert LedgerCheckRun.objects.count() == 2


# --- E-mail delivery --------------------------------------------------------------------------------


def test_a_notice_whose_email_was_lost_is_sent_by_the_schedule_once(
    job, personas, clock, django_capture_on_commit_callbacks
):
    # The e-mail task was never run (as when the broker was down): the notices wait.
    with django_capture_on_commit_callbacks(execute=False):
        account_services.notify(
            users=[personas.primary_admin, personas.secondary_admin],
            team=personas.team,
            kind=NotificationKind.LOW_BALANCE,
            title="Low balance: 3 tokens left in Own Team",
            body="…",
            data={"team": "Own Team", "available": "3", "threshold": "20%", "reseller": "Alder"},
        )
    mail.outbox.clear()
    from accounts.tasks import send_pending_notification_emails_task

    assert job(send_pending_notification_emails_task) == 0  # too fresh: its own task may still run
    clock.move_to(BOUGHT + timedelta(minutes=10))
    assert job(send_pending_notification_emails_task) == 2
    assert job(send_pending_notification_emails_task) == 0
    assert sorted(m.to[0] for m in mail.outbox) == [personas.primary_admin.email, personas.secondary_admin.email]


def test_only_admins_may_be_chosen_as_recipients(personas):
    viewer = personas.report_viewer
    with pytest.raises(Exception, match="Only the team's admins"):
        account_services.update_alert_settings(
            team=personas.team,
            actor=personas.primary_admin,
            expiry_reminders=True,
            low_balance=True,
            low_balance_unit="percent",
            low_balance_value=20,
            expiry_recipients=[viewer.pk],
            low_balance_recipients=[],
        )


def test_a_new_admin_receives_alerts_without_opting_in(job, buy, personas, clock):
    newcomer = UserFactory(email="new-admin@own.example")
    MembershipFactory(user=newcomer, team=personas.team, role=Role.SECONDARY_ADMIN)
    buy(100, at=BOUGHT)
    clock.move_to(TERM_END - 7 * DAY)
    job(send_expiry_reminders_task)
    assert notices(NotificationKind.EXPIRY_REMINDER, user=newcomer)


def test_a_check_above_the_threshold_is_one_read_and_one_update(buy, log, personas, clock, django_assert_num_queries):
    # The check runs after every charged live event: when the team is not low (the usual
    # answer) it reads the balance and flips nothing, without a transaction or a state row.
    buy(100, at=BOUGHT)
    clock.move_to(BOUGHT + DAY)
    spend(log, 10, BOUGHT + DAY)
    # The alert settings, the balance (received entries, packs, credits), the conditional update.
    with django_assert_num_queries(5):
        assert alerts.check_low_balance(team=personas.team) is False
    assert not LowBalanceState.objects.exists()
