"""E-mails about people and teams, each in a plain and an HTML version."""

from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invitation, Membership, Notification


def _send(*, to: str, subject: str, template: str, context: dict) -> None:
    context = {"site_url": settings.FLEX_SITE_URL, **context}
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    message.send()


def send_invitation_email(*, invitation_id: int, token: str) -> None:
    invitation = (
        Invitation.objects.select_related("membership__user", "membership__team", "membership__invited_by")
        .filter(pk=invitation_id)
        .first()
    )
    if invitation is None or not invitation.is_pending:
        return  # removed or accepted meanwhile: nothing to send
    membership = invitation.membership
    _send(
        to=membership.user.email,
        subject=f"You're invited to {membership.team.name} on FlexAdmin",
        template="accounts/email/invitation",
        context={
            "membership": membership,
            "invitation": invitation,
            "link": settings.FLEX_SITE_URL + reverse("accept-invitation", args=[token]),
        },
    )


def send_added_to_team_email(*, membership_id: int) -> None:
    membership = Membership.objects.select_related("user", "team", "invited_by").filter(pk=membership_id).first()
    if membership is None:
        return
    _send(
        to=membership.user.email,
        subject=f"You were added to {membership.team.name} on FlexAdmin",
        template="accounts/email/added_to_team",
        context={
            "membership": membership,
            "link": settings.FLEX_SITE_URL + reverse("accounts:team-home", args=[membership.team.slug]),
        },
    )


# A notice whose e-mail task was lost (broker or worker down) is e-mailed by the schedule,
# but not after this long: by then the news is stale and the bell still shows it.
PENDING_EMAIL_MAX_AGE = timedelta(days=2)
# The schedule leaves a fresh notice to its own task for this long.
PENDING_EMAIL_GRACE = timedelta(minutes=5)


def send_notification_email(*, notification_id: int) -> bool:
    """E-mail one notice to its person, once: the row is claimed with a conditional UPDATE
    of ``emailed_at`` first, and released again if sending fails (the task retries)."""
    claimed = Notification.objects.filter(pk=notification_id, emailed_at__isnull=True).update(emailed_at=timezone.now())
    if not claimed:
        return False  # sent already, or being sent by another run
    notification = Notification.objects.select_related("user", "team").get(pk=notification_id)
    if not notification.user.is_active:
        return False
    try:
        _send(
            to=notification.user.email,
            subject=notification.title,
            template=f"accounts/email/{notification.kind}",
            context={
                "notification": notification,
                "data": notification.data,
                "user": notification.user,
                "link": settings.FLEX_SITE_URL + notification.link if notification.link else "",
            },
        )
    except Exception:
        Notification.objects.filter(pk=notification_id).update(emailed_at=None)
        raise
    return True


def send_pending_notification_emails(*, now=None) -> int:
    """E-mail every recent notice whose own e-mail task never ran. Returns how many went out."""
    now = now or timezone.now()
    pending = Notification.objects.filter(
        emailed_at__isnull=True,
        created_at__gte=now - PENDING_EMAIL_MAX_AGE,
        created_at__lte=now - PENDING_EMAIL_GRACE,
    ).values_list("pk", flat=True)
    return sum(send_notification_email(notification_id=pk) for pk in list(pending))
