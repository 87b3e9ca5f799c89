"""In-app notices (each e-mailed once) and the team's alert settings."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import selectors
from accounts.audit import write_audit_event
from accounts.models import (
    TEAM_ALERT_KINDS,
    AlertOptOut,
    AlertSettings,
    Notification,
    NotificationKind,
    Team,
    ThresholdUnit,
    User,
)
from accounts.services.teams import lock_team
from core.queue import enqueue_on_commit


def _enqueue_notification_email(notification: Notification) -> None:
    enqueue_on_commit("accounts.send_notification_email", notification.pk)


@transaction.atomic
def notify(
    *,
    users: list[User],
    kind: str,
    title: str,
    body: str,
    team: Team | None = None,
    link: str = "",
    data: dict | None = None,
    now: datetime | None = None,
) -> list[Notification]:
    """An in-app notice for each person, each e-mailed once after the commit.

    The jobs call this in the transaction that claims the alert, so a claim and its
    notices are saved together or not at all.
    """
    now = now or timezone.now()
    people = list({user.pk: user for user in users}.values())
    notifications = Notification.objects.bulk_create(
        [
            Notification(
                user=user,
                team=team,
                kind=kind,
                title=title[:200],
                body=body,
                link=link,
                data=data or {},
                created_at=now,
            )
            for user in people
        ]
    )
    for notification in notifications:
        _enqueue_notification_email(notification)
    return notifications


def mark_notification_read(*, notification: Notification, user: User, now: datetime | None = None) -> bool:
    """Mark one of the person's notices as read; False when it already was.

    Personal reading state, not an admin action: not audited.
    """
    if notification.user_id != user.pk:
        raise ValidationError("That notice is not yours.")
    changed = Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
        read_at=now or timezone.now()
    )
    return changed == 1


def mark_all_notifications_read(*, user: User, now: datetime | None = None) -> int:
    return Notification.objects.filter(user_id=user.pk, read_at__isnull=True).update(read_at=now or timezone.now())


MAX_LOW_BALANCE_TOKENS = 10_000_000


@transaction.atomic
def update_alert_settings(
    *,
    team: Team,
    actor: User | None,
    expiry_reminders: bool,
    low_balance: bool,
    low_balance_unit: str,
    low_balance_value: int,
    expiry_recipients: list[int],
    low_balance_recipients: list[int],
) -> AlertSettings:
    """Save Settings > Alerts: which kinds are on, the low-balance threshold (percent of
    the tokens in active packs, or tokens) and which admins receive each kind."""
    errors: dict[str, str] = {}
    if low_balance_unit not in ThresholdUnit.values:
        errors["low_balance_unit"] = "Choose percent or tokens."
    elif low_balance_unit == ThresholdUnit.PERCENT and not 1 <= low_balance_value <= 100:
        errors["low_balance_value"] = "A percentage between 1 and 100."
    elif low_balance_unit == ThresholdUnit.TOKENS and not 1 <= low_balance_value <= MAX_LOW_BALANCE_TOKENS:
        errors["low_balance_value"] = f"A number of tokens between 1 and {MAX_LOW_BALANCE_TOKENS:,}."
    admins = {m.user_id: m.user for m in selectors.team_admins(team=team)}
    chosen = {
        NotificationKind.EXPIRY_REMINDER: {int(pk) for pk in expiry_recipients},
        NotificationKind.LOW_BALANCE: {int(pk) for pk in low_balance_recipients},
    }
    for kind, field_name in (
        (NotificationKind.EXPIRY_REMINDER, "expiry_recipients"),
        (NotificationKind.LOW_BALANCE, "low_balance_recipients"),
    ):
        if chosen[kind] - admins.keys():
            errors[field_name] = "Only the team's admins can receive alerts."
    if errors:
        raise ValidationError(errors)
    team = lock_team(team)  # two admins saving at once: one after the other
    alert_settings, _ = AlertSettings.objects.update_or_create(
        team=team,
        defaults={
            "expiry_reminders": expiry_reminders,
            "low_balance": low_balance,
            "low_balance_unit": low_balance_unit,
            "low_balance_value": low_balance_value,
            "updated_at": timezone.now(),
            "updated_by": actor,
        },
    )
    AlertOptOut.objects.filter(team=team).delete()
    AlertOptOut.objects.bulk_create(
        [
            AlertOptOut(team=team, user_id=user_id, kind=kind)
            for kind in TEAM_ALERT_KINDS
            for user_id in sorted(admins.keys() - chosen[kind])
        ]
    )
    write_audit_event(
        action="alerts.updated",
        actor=actor,
        team=team,
        target=alert_settings,
        details={
            "expiry_reminders": expiry_reminders,
            "low_balance": low_balance,
            "low_balance_threshold": alert_settings.describe_threshold(),
            "expiry_recipients": sorted(admins[pk].email for pk in chosen[NotificationKind.EXPIRY_REMINDER]),
            "low_balance_recipients": sorted(admins[pk].email for pk in chosen[NotificationKind.LOW_BALANCE]),
        },
    )
    return alert_settings
