"""E-mails about people and teams, each in a plain and an HTML version."""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invitation, Membership, Notification

logger = logging.getLogger(__name__)


def _send(*, to: str, subject: str, template: str, context: dict) -> None:
    context = {"site_url": settings.FLEX_SITE_URL, **context}
    message = EmailMultiAlternatives(
        # One line, whatever names it carries: a line break in a header makes Django refuse
        # the whole message (BadHeaderError).
        subject=" ".join(subject.split()),
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
    of ``emailed_at`` first. If the mail server can't be reached (``OSError``) the claim is
    released and the task retries; any other failure can't be cured by retrying, so it is
    recorded on the notice (``email_failed_at``, ``email_error``) and never tried again:
    one bad message never blocks the others."""
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
    except OSError:
        Notification.objects.filter(pk=notification_id).update(emailed_at=None)
        raise
    except Exception as error:
        logger.exception("Notice %s could not be e-mailed", notification_id)
        Notification.objects.filter(pk=notification_id).update(
            emailed_at=None, email_failed_at=timezone.now(), email_error=f"{type(error).__name__}: {error}"[:300]
        )
        return False
    return True


def send_pending_notification_emails(*, now=None) -> int:
    """E-mail every recent notice whose own e-mail task never ran. Returns how many went out."""
    now = now or timezone.now()
    pending = Notification.objects.filter(
        emailed_at__isnull=True,
        email_failed_at__isnull=True,
        created_at__gte=now - PENDING_EMAIL_MAX_AGE,
        created_at__lte=now - PENDING_EMAIL_GRACE,
    ).values_list("pk", flat=True)
    sent = 0
    for pk in list(pending):
        try:
            sent += send_notification_email(notification_id=pk)
        except OSError:
            logger.warning("The mail server did not take notice %s; the next run tries again", pk, exc_info=True)
    return sent
