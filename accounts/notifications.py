"""E-mails about people and teams, each in a plain and an HTML version."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import Invitation, Membership


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
