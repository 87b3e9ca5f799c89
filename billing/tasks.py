"""Thin Celery tasks over the billing services; beat runs them (settings.CELERY_BEAT_SCHEDULE).

Every one is idempotent (safe to run twice, concurrently or late), so every one is
acknowledged late: a worker that dies in the middle leaves the message in Redis, which
hands it out again after the visibility timeout, and the rerun finishes what is left.
``reject_on_worker_lost`` does the same when only the pool process dies.
"""

from celery import shared_task
from django.conf import settings

from accounts.models import Team
from billing import alerts, services

IDEMPOTENT = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(name="billing.expire_packs", **IDEMPOTENT)
def expire_packs_task() -> int:
    return services.expire_packs()


@shared_task(name="billing.expire_cloud_credits", **IDEMPOTENT)
def expire_cloud_credits_task() -> int:
    return services.expire_cloud_credits()


@shared_task(name="billing.send_expiry_reminders", **IDEMPOTENT)
def send_expiry_reminders_task() -> int:
    return alerts.send_expiry_reminders()


@shared_task(name="billing.check_low_balances", **IDEMPOTENT)
def check_low_balances_task() -> int:
    return alerts.check_low_balances()


@shared_task(name="billing.check_low_balance", **IDEMPOTENT)
def check_low_balance_task(team_id: int) -> bool:
    team = Team.objects.select_related("reseller").filter(pk=team_id).first()
    return team is not None and alerts.check_low_balance(team=team)


@shared_task(
    name="billing.check_ledger",
    time_limit=settings.FLEX_CHECK_LEDGER_TIME_LIMIT,
    soft_time_limit=settings.FLEX_CHECK_LEDGER_TIME_LIMIT - 60,
    **IDEMPOTENT,
)
def check_ledger_task() -> dict:
    run = alerts.run_ledger_check()
    return {"day": run.day.isoformat(), "ok": run.ok, "violations": run.violation_count}
