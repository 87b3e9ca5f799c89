"""The scheduled jobs for real: Redis, Celery workers and beat as separate processes on the
test's PostgreSQL database (fixtures in conftest.py). The job rules themselves, with a moving
clock, are in tests/billing/test_jobs.py."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import Notification, NotificationKind, Role
from billing import alerts, services
from billing.models import EntryKind, ExpiryReminder, LedgerEntry, LowBalanceState, TokenPack
from billing.selectors import ledger_check
from billing.tasks import expire_packs_task
from flexadmin.celery import app
from tests.factories import MembershipFactory, ResellerFactory, SalesRepFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.services

DAY = timedelta(days=1)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    pytest.fail(f"Timed out after {timeout:.0f} s waiting for: {what} (logs in test-output/celery-*.log)")


def customer(slug: str = "jobs"):
    """A team with two admins, a member who may spend, and its reseller's sales rep."""
    reseller = ResellerFactory(slug=f"{slug}-reseller", name="Birch Reseller")
    team = TeamFactory(slug=slug, name="Jobs Team", reseller=reseller)
    admin = UserFactory(email=f"admin@{slug}.example")
    MembershipFactory(user=admin, team=team, role=Role.PRIMARY_ADMIN)
    MembershipFactory(user=UserFactory(email=f"second@{slug}.example"), team=team, role=Role.SECONDARY_ADMIN)
    member = UserFactory(email=f"member@{slug}.example")
    MembershipFactory(user=member, team=team)
    services.assign_flex(team=team, user=member, products="all", actor=admin, at=timezone.now() - 400 * DAY)
    rep = UserFactory(email=f"rep@{slug}.example")
    SalesRepFactory(user=rep, reseller=reseller)
    return team, admin, member, rep


def buy(team, reference: str, tokens: int, days_ago: int) -> TokenPack:
    at = timezone.now() - days_ago * DAY
    # No "new pack" notice: these tests count the jobs' e-mails.
    pack, _ = services.record_purchase(
        team=team, reference=reference, tokens=tokens, purchased_at=at, now=at, notify_admins=False
    )
    return pack


def spend(team, member, tokens: int, event_id: str) -> dict:
    """Design automation costs 2 tokens per processing hour."""
    [result] = services.log_usage(
        team=team,
        events=[
            {
                "id": event_id,
                "user": member.email,
                "product": "design-automation",
                "quantity": str(Decimal(tokens) / 2),
                "started_at": (timezone.now() - timedelta(minutes=30)).isoformat(),
            }
        ],
    )
    assert result["status"] == "charged", result
    return result


def subjects(emails: list[str]) -> list[str]:
    return sorted(
        line[len("Subject: ") :] for text in emails for line in text.splitlines() if line.startswith("Subject: ")
    )


def test_a_worker_and_beat_run_the_jobs_end_to_end(celery_processes):
    team, admin, member, rep = customer()
    UserFactory(email="staff@flexadmin.example", is_staff=True)
    expired = buy(team, "OLD-1", 50, days_ago=400)  # its year ended 35 days ago; nobody closed it
    soon = buy(team, "SOON-1", 100, days_ago=300)  # expires in about 65 days: the 90-day reminder
    spend(team, member, 85, "e2e-1")  # 15 of 100 left: below 20%
    celery_processes.start_worker()

    # Enqueue, the worker runs it, the rows change.
    assert expire_packs_task.delay().get(timeout=60) == 1
    expired.refresh_from_db()
    assert expired.expired_at is not None and expired.remaining == 0
    assert LedgerEntry.objects.filter(pack=expired, kind=EntryKind.EXPIRY).count() == 1

    # Live spending enqueued a balance check when it committed; the worker, once up, runs it.
    wait_until(lambda: LowBalanceState.objects.filter(team=team, is_low=True).exists(), "the low-balance check")
    # Asking again (as after another charge) sends nothing new: one alert per crossing.
    alerts.request_balance_check(team=team)
    assert Notification.objects.filter(kind=NotificationKind.LOW_BALANCE).count() == 2  # both admins

    # Beat runs the whole schedule (every entry every second here), again and again.
    celery_processes.start_beat()
    wait_until(
        lambda: (
            ExpiryReminder.objects.filter(pack=soon, threshold=90).exists()
            and Notification.objects.filter(emailed_at__isnull=True).count() == 0
            and len(subjects(celery_processes.emails())) == 5
        ),
        "the 90-day reminder, e-mailed",
    )
    time.sleep(4)  # several more beats: nothing is sent twice
    assert ExpiryReminder.objects.filter(pack=soon).count() == 1
    assert Notification.objects.filter(kind=NotificationKind.LOW_BALANCE).count() == 2
    assert Notification.objects.filter(kind=NotificationKind.EXPIRY_REMINDER).count() == 3  # two admins, the rep
    assert not Notification.objects.filter(kind=NotificationKind.LEDGER_CHECK).exists()  # the ledger adds up
    admin_notice = Notification.objects.get(kind=NotificationKind.EXPIRY_REMINDER, user=admin)
    rep_notice = Notification.objects.get(kind=NotificationKind.EXPIRY_REMINDER, user=rep)
    assert re.fullmatch(r"15 tokens expire in 6\d days", admin_notice.title)
    assert rep_notice.title == f"Jobs Team: {admin_notice.title}"
    assert subjects(celery_processes.emails()) == sorted(
        ["Low balance: 15 tokens left in Jobs Team"] * 2 + [admin_notice.title] * 2 + [rep_notice.title]
    )
    assert ledger_check().ok


def test_a_worker_killed_while_expiring_many_packs_leaves_the_ledger_consistent(celery_processes):
    teams, per_team = 300, 4
    reseller = ResellerFactory(slug="bulk")
    now = timezone.now()
    bought = now - 400 * DAY
    packs = []
    for n in range(teams):
        team = TeamFactory(slug=f"bulk-{n}", reseller=reseller)
        packs += [
            TokenPack(
                team=team,
                reseller=reseller,
                reference=f"BULK-{n}-{k}",
                tokens=10 + k,
                remaining=Decimal(10 + k),
                purchased_at=bought,
                expires_at=bought + 365 * DAY,
            )
            for k in range(per_team)
        ]
    # Set-up written directly for speed: each pack with the purchase entry record_purchase writes.
    packs = TokenPack.objects.bulk_create(packs)
    LedgerEntry.objects.bulk_create(
        LedgerEntry(team_id=p.team_id, pack=p, kind=EntryKind.PURCHASE, amount=Decimal(p.tokens), at=bought)
        for p in packs
    )
    total = len(packs)
    # A short visibility timeout, so that Redis hands the unacknowledged job out again soon;
    # one team a transaction, so that the job is still running when it is killed.
    quick_redelivery = {"FLEX_CELERY_VISIBILITY_TIMEOUT": "3", "FLEX_EXPIRY_TEAMS_PER_TRANSACTION": "1"}
    celery_processes.start_worker("first", env=quick_redelivery)

    result = expire_packs_task.delay()
    wait_until(lambda: TokenPack.objects.filter(expired_at__isnull=False).exists(), "the first packs closed", 60)
    celery_processes.kill("first")
    closed_before = TokenPack.objects.filter(expired_at__isnull=False).count()
    assert 0 < closed_before < total, f"killed too late ({closed_before} of {total} closed): use more packs"
    # What was committed before the kill adds up; the team being expired at the kill was rolled back.
    assert LedgerEntry.objects.filter(kind=EntryKind.EXPIRY).count() == closed_before

    time.sleep(4)  # past the visibility timeout
    celery_processes.start_worker("second", env=quick_redelivery)
    # The same message, never acknowledged, runs again and closes exactly what was left.
    assert result.get(timeout=120) == total - closed_before
    assert TokenPack.objects.filter(expired_at__isnull=True).count() == 0
    expiries = TokenPack.objects.annotate(n=Count("entries", filter=Q(entries__kind=EntryKind.EXPIRY)))
    assert set(expiries.values_list("n", flat=True)) == {1}, "a pack expired twice, or not at all"
    assert TokenPack.objects.exclude(remaining=0).count() == 0
    check = ledger_check()
    assert check.ok, check.violations[:5]
    assert check.packs == total


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _drop_connection_pools() -> None:
    # The pools keep the broker address they were made with; make them anew.
    app._pool = None
    app.amqp._producer_pool = None


def test_with_redis_down_purchases_and_usage_succeed_and_the_next_run_catches_up(
    celery_processes, closed_port, settings
):
    team, _, member, rep = customer("offline")
    expired = buy(team, "OFF-OLD", 40, days_ago=380)  # ended 15 days ago, still open

    live_broker = app.conf.broker_url
    app.conf.broker_url = f"redis://127.0.0.1:{closed_port}/15"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port}/15",
        }
    }
    _drop_connection_pools()
    try:
        started = time.monotonic()
        with transaction.atomic():  # as a request would: the service, then the enqueue after it
            pack, created = services.record_purchase(
                team=team, reference="OFF-1", tokens=100, purchased_at=timezone.now() - DAY, actor=rep
            )
            alerts.request_balance_check(team=team)
        purchase_took = time.monotonic() - started
        started = time.monotonic()
        with transaction.atomic():
            result = spend(team, member, 90, "offline-1")
            alerts.request_balance_check(team=team)
        usage_took = time.monotonic() - started
    finally:
        app.conf.broker_url = live_broker
        _drop_connection_pools()
    assert created and result["tokens"] == "90.00"
    assert purchase_took < 2, f"recording a purchase took {purchase_took:.1f} s with Redis down"
    assert usage_took < 2, f"logging usage took {usage_took:.1f} s with Redis down"
    # The changes are saved; the work that was to follow was not done.
    pack.refresh_from_db()
    assert pack.remaining == 10
    assert not LowBalanceState.objects.exists()
    expired.refresh_from_db()
    assert expired.expired_at is None

    # Redis is back: the next scheduled runs do what was missed.
    celery_processes.start_worker()
    celery_processes.start_beat()
    wait_until(
        lambda: (
            LowBalanceState.objects.filter(team=team, is_low=True).exists()
            and TokenPack.objects.filter(pk=expired.pk, expired_at__isnull=False).exists()
            and len(subjects(celery_processes.emails())) == 2
        ),
        "the low-balance alert and the expiry, by the schedule",
    )
    # (The "new pack" notices of the purchase made while Redis was down are e-mailed by the
    # pending-e-mail job once they are old enough; tests/accounts covers that job.)
    assert subjects(celery_processes.emails()) == ["Low balance: 10 tokens left in Jobs Team"] * 2
    assert ledger_check().ok
