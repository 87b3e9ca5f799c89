"""Alerts the scheduled jobs raise: expiry reminders, low balances, the nightly ledger check.

Services like those in ``billing.services``: keyword-only, each claim atomic with its
notices. Every one is safe to run twice, concurrently or late (domain.md "Jobs"):

- a reminder is claimed by inserting its (pack, threshold) row (a unique constraint);
- a low-balance crossing by a conditional UPDATE of the team's state (not low -> low);
- the nightly check by the day's row (inserted, or updated from ok to failing).

Whoever inserts or updates the row sends the notices; every other run finds it done. A late
run looks at the state of things now, so it catches up on whatever it missed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.models import AlertSettings, NotificationKind, Team, ThresholdUnit
from billing.models import ExpiryReminder, LedgerCheckRun, LowBalanceState, TokenPack
from billing.selectors import ledger_check, team_balance
from core.money import to_cents, tokens_text
from core.queue import enqueue_on_commit

# Days before a pack expires at which its admins (and the reseller's sales reps) are told.
REMINDER_DAYS = (90, 30, 7)
MAX_VIOLATIONS_STORED = 100


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


# --- Expiry reminders ---------------------------------------------------------------------------


def send_expiry_reminders(*, now: datetime | None = None) -> int:
    """Tell a team's admins, and its reseller's sales reps, about tokens that expire within
    90, 30 and 7 days: once per pack and threshold. Returns how many packs were announced.

    Only packs still holding tokens count (a depleted pack has nothing to lose). A pack past
    several thresholds at once (the job did not run for a while) is announced once, at the
    nearest; the wider thresholds are claimed with it so that they never follow.
    """
    now = _now(now)
    packs = list(
        TokenPack.objects.filter(
            expired_at__isnull=True,
            purchased_at__lte=now,
            expires_at__gt=now,
            expires_at__lte=now + timedelta(days=max(REMINDER_DAYS)),
            remaining__gt=0,
        )
        .select_related("team__reseller")
        .order_by("expires_at", "id")
    )
    claimed = set(
        ExpiryReminder.objects.filter(pack__in=packs).values_list("pack_id", "threshold")
    )  # read once; the insert below is what decides
    announced = 0
    for pack in packs:
        due = sorted(t for t in REMINDER_DAYS if pack.expires_at <= now + timedelta(days=t))
        if not due or (pack.pk, due[0]) in claimed:
            continue
        if _announce_expiry(pack=pack, thresholds=due, now=now):
            announced += 1
    return announced


@transaction.atomic
def _announce_expiry(*, pack: TokenPack, thresholds: list[int], now: datetime) -> bool:
    nearest, *wider = thresholds
    # The nearest threshold first: whoever inserts it announces; a concurrent run that
    # loses the race gets the existing row (get_or_create re-reads after the conflict).
    _, created = ExpiryReminder.objects.get_or_create(
        pack=pack, threshold=nearest, defaults={"team": pack.team, "created_at": now}
    )
    if not created:
        return False
    for threshold in wider:
        ExpiryReminder.objects.get_or_create(
            pack=pack, threshold=threshold, defaults={"team": pack.team, "announced": False, "created_at": now}
        )
    team = pack.team
    days = max(1, math.ceil((pack.expires_at - now) / timedelta(days=1)))
    expires_on = timezone.localtime(pack.expires_at, team.tz).date()
    data = {
        "team": team.name,
        "reseller": team.reseller.name,
        "reference": pack.reference,
        "tokens": tokens_text(pack.remaining),
        "pack_tokens": tokens_text(Decimal(pack.tokens)),
        "expires_on": expires_on.isoformat(),
        "expires_on_text": f"{expires_on:%b} {expires_on.day}, {expires_on.year}",
        "days": days,
        "threshold": nearest,
    }
    in_days = f"in {days} day{'s' if days != 1 else ''}"
    account_services.notify(
        users=account_selectors.alert_recipients(team=team, kind=NotificationKind.EXPIRY_REMINDER),
        team=team,
        kind=NotificationKind.EXPIRY_REMINDER,
        title=f"{data['tokens']} tokens expire {in_days}",
        body=(
            f"Pack {pack.reference} of {team.name} expires on {data['expires_on_text']}: its {data['tokens']} "
            f"remaining tokens can't be used after that. Plan their use, or ask {team.reseller.name} about a new pack."
        ),
        link=reverse("accounts:team-home", args=[team.slug]),
        data={**data, "audience": "admin"},
        now=now,
    )
    # The reseller's sales reps hear of every expiring pack of their customers: the team's
    # switch and choices are about its own admins.
    account_services.notify(
        users=account_selectors.sales_reps_of_team(team=team),
        team=team,
        kind=NotificationKind.EXPIRY_REMINDER,
        title=f"{team.name}: {data['tokens']} tokens expire {in_days}",
        body=(
            f"Pack {pack.reference} of your customer {team.name} expires on {data['expires_on_text']} with "
            f"{data['tokens']} tokens unused."
        ),
        link=reverse("billing:customer-detail", args=[team.slug]),
        data={**data, "audience": "sales_rep"},
        now=now,
    )
    return True


# --- Low balance --------------------------------------------------------------------------------


@dataclass
class BalanceCheck:
    available: Decimal
    purchased: Decimal
    limit: Decimal
    is_low: bool


def low_balance_check(*, team: Team, tokens: dict | None = None) -> BalanceCheck:
    """Is the team's balance below its threshold now?

    Percent: the available tokens against the tokens of the team's *active* packs, as the
    Balances donut counts them (``team_balance``: available + used of packs valid now and
    holding tokens). Tokens: the available tokens against that number. A team that holds
    no tokens at all is low whatever the threshold (its last pack ran out or expired).

    ``tokens``: the ``"tokens"`` part of a ``team_balance`` the caller already read (the
    Balances page and the home card), so that the balance is not read twice.
    """
    alert_settings = account_selectors.alert_settings_of_team(team=team)
    if tokens is None:
        tokens = team_balance(team=team)["tokens"]
    return balance_check(available=tokens["available"], purchased=tokens["purchased"], alert_settings=alert_settings)


def balance_check(*, available: Decimal, purchased: Decimal, alert_settings: AlertSettings) -> BalanceCheck:
    """The threshold rule itself, on numbers already read: ``low_balance_check`` for one
    team, and the sales rep's Customers list for many at once (``billing.customer_selectors``)."""
    if alert_settings.low_balance_unit == ThresholdUnit.TOKENS:
        limit = Decimal(alert_settings.low_balance_value)
    else:
        limit = to_cents(purchased * alert_settings.low_balance_value / 100)
    return BalanceCheck(
        available=available, purchased=purchased, limit=limit, is_low=available < limit or available <= 0
    )


def check_low_balance(*, team: Team, now: datetime | None = None) -> bool:
    """Alert the team's admins when its balance has just fallen below the threshold; note a
    recovery. Returns True when this call recorded (and announced) a crossing.

    Once per crossing: the alert is claimed by flipping the team's state from not low to
    low with a conditional UPDATE, so only one run can flip it; it flips back only when
    the balance recovered. A team that switched the alert off still has its state kept, so
    switching it on again does not announce an old crossing.
    """
    now = _now(now)
    check = low_balance_check(team=team)
    if not check.is_low:
        # The usual answer after a charge, so one statement: a recovery flips a low state
        # back; a team with no state yet (never low) needs none.
        LowBalanceState.objects.filter(team=team, is_low=True).update(
            is_low=False, recovered_at=now, available=check.available, limit=check.limit
        )
        return False
    with transaction.atomic():
        state, _ = LowBalanceState.objects.get_or_create(team=team)
        claimed = LowBalanceState.objects.filter(pk=state.pk, is_low=False).update(
            is_low=True, crossed_at=now, available=check.available, limit=check.limit
        )
        if not claimed:
            return False  # still low since the last alert, or another run just announced it
        recipients = account_selectors.alert_recipients(team=team, kind=NotificationKind.LOW_BALANCE)
        if recipients:
            LowBalanceState.objects.filter(pk=state.pk).update(alerts=state.alerts + 1)
        threshold = account_selectors.alert_settings_of_team(team=team).describe_threshold()
        account_services.notify(
            users=recipients,
            team=team,
            kind=NotificationKind.LOW_BALANCE,
            title=f"Low balance: {tokens_text(check.available)} tokens left in {team.name}",
            body=(
                f"{team.name} has {tokens_text(check.available)} tokens available, below the alert threshold of "
                f"{threshold}. Buy a pack through {team.reseller.name} to keep using Flex products."
            ),
            link=reverse("accounts:team-home", args=[team.slug]),
            data={
                "team": team.name,
                "reseller": team.reseller.name,
                "available": tokens_text(check.available),
                "purchased": tokens_text(check.purchased),
                "limit": tokens_text(check.limit),
                "threshold": threshold,
            },
            now=now,
        )
        return True


def check_low_balances(*, now: datetime | None = None) -> int:
    """``check_low_balance`` for every team that has ever held a pack; returns the alerts sent."""
    teams = Team.objects.filter(pk__in=TokenPack.objects.values("team_id")).select_related("reseller").order_by("pk")
    return sum(check_low_balance(team=team, now=now) for team in teams)


def request_balance_check(*, team: Team) -> None:
    """Check the team's balance right after the current transaction commits (for callers
    that just charged usage or recorded a pack); the schedule does it anyway within 15
    minutes, so a broker that is down only delays the alert. By the task's name: the
    tasks module builds on this one."""
    enqueue_on_commit("billing.check_low_balance", team.pk)


# --- Nightly ledger check -----------------------------------------------------------------------


def run_ledger_check(*, now: datetime | None = None) -> LedgerCheckRun:
    """Run ``ledger_check`` and e-mail platform staff when it fails: at most once a day
    (UTC), when the day's row is written failing or turns from ok to failing."""
    now = _now(now)
    check = ledger_check(now=now)
    fields = {
        "checked_at": now,
        "ok": check.ok,
        "violations": check.violations[:MAX_VIOLATIONS_STORED],
        "violation_count": len(check.violations),
    }
    day = now.astimezone(UTC).date()
    with transaction.atomic():
        run, created = LedgerCheckRun.objects.get_or_create(day=day, defaults=fields)
        if created:
            alert = not check.ok
        elif check.ok:
            LedgerCheckRun.objects.filter(pk=run.pk, ok=True).update(checked_at=now)
            alert = False
        else:
            alert = LedgerCheckRun.objects.filter(pk=run.pk, ok=True).update(**fields) == 1
        if alert:
            count = len(check.violations)
            account_services.notify(
                users=account_selectors.staff_users(),
                kind=NotificationKind.LEDGER_CHECK,
                title=f"Ledger check failed: {count} violation{'s' if count != 1 else ''}",
                body="\n".join(check.violations[:20])
                + (f"\n… and {count - 20} more." if count > 20 else "")
                + "\nRun `python manage.py check_ledger` for the full list.",
                link=reverse("admin:index"),
                data={"count": count, "violations": check.violations[:MAX_VIOLATIONS_STORED], "day": day.isoformat()},
                now=now,
            )
        run.refresh_from_db()
    return run
