"""Members of a team: invitations, roles, removal and the primary admin hand-over.

Who may call a service is decided by ``accounts.access`` in the views; the rules that hold
whoever calls (one primary admin per team, no duplicate member) live here.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import selectors
from accounts.audit import write_audit_event
from accounts.models import Invitation, Membership, Role, Team, User, hash_token
from accounts.services.people import normalize_email
from accounts.services.teams import lock_team
from core.queue import enqueue_on_commit


def _enqueue_invitation_email(invitation: Invitation, token: str) -> None:
    enqueue_on_commit("accounts.send_invitation_email", invitation.pk, token)


def _enqueue_added_email(membership: Membership) -> None:
    enqueue_on_commit("accounts.send_added_to_team_email", membership.pk)


def _primary_admin(team: Team) -> Membership | None:
    return team.memberships.filter(role=Role.PRIMARY_ADMIN).select_related("user").first()


@transaction.atomic
def invite_user(
    *,
    team: Team,
    email: str,
    role: str = Role.MEMBER,
    first_name: str = "",
    last_name: str = "",
    actor: User | None,
    notify: bool = True,
) -> Membership:
    """Add a person to a team and e-mail them (``notify=False`` only for the demo seeder).

    Somebody new gets an invitation link to set a password (valid
    ``FLEX_INVITATION_DAYS``); somebody who can already sign in is told they were added.
    """
    email = normalize_email(email)
    if role not in Role.values:
        raise ValidationError({"role": f"“{role}” is not a role. Choose one of: {', '.join(Role.labels)}."})
    # Lock the team's memberships so two invitations of the same person cannot race.
    lock_team(team)
    if role == Role.PRIMARY_ADMIN and _primary_admin(team) is not None:
        raise ValidationError(
            {"role": "This team already has a primary admin. Invite the person first, then transfer the role."}
        )
    user = User.objects.filter(email__iexact=email).first()
    existing = Membership.objects.filter(team=team, user=user).first() if user is not None else None
    if existing is not None:
        if not user.has_usable_password():
            raise ValidationError(
                {
                    "email": f"{email} is already invited to {team}. To send the link again, open their page "
                    "under User Management and choose “Resend invitation”."
                }
            )
        raise ValidationError({"email": f"{email} is already a member of {team}."})
    if user is None:
        user = User.objects.create_user(email, None, first_name=first_name.strip(), last_name=last_name.strip())
    try:
        with transaction.atomic():
            membership = Membership.objects.create(user=user, team=team, role=role, invited_by=actor)
    except IntegrityError:
        raise ValidationError({"email": f"{email} is already a member of {team}."}) from None
    if user.has_usable_password():
        if notify:
            _enqueue_added_email(membership)
    else:
        token = secrets.token_urlsafe(32)
        invitation = Invitation.objects.create(
            membership=membership,
            token_hash=hash_token(token),
            expires_at=timezone.now() + timedelta(days=settings.FLEX_INVITATION_DAYS),
        )
        if notify:
            _enqueue_invitation_email(invitation, token)
    write_audit_event(
        action="member.invited", actor=actor, team=team, target=user, details={"role": role, "email": email}
    )
    return membership


@transaction.atomic
def resend_invitation(*, membership: Membership, actor: User | None) -> Invitation:
    """Send a fresh link with a fresh expiry; the previous link stops working."""
    invitation = Invitation.objects.select_for_update().filter(membership=membership).first()
    if invitation is None or not invitation.is_pending or membership.user.has_usable_password():
        raise ValidationError(f"{membership.user.email} has already accepted; there is nothing to resend.")
    token = secrets.token_urlsafe(32)
    invitation.token_hash = hash_token(token)
    invitation.sent_at = timezone.now()
    invitation.expires_at = invitation.sent_at + timedelta(days=settings.FLEX_INVITATION_DAYS)
    invitation.send_count += 1
    invitation.save(update_fields=["token_hash", "sent_at", "expires_at", "send_count"])
    _enqueue_invitation_email(invitation, token)
    write_audit_event(action="member.invitation_resent", actor=actor, team=membership.team, target=membership.user)
    return invitation


@transaction.atomic
def accept_invitation(*, token: str, password: str, first_name: str = "", last_name: str = "") -> User:
    invitation = selectors.pending_invitation(token=token)
    if invitation is None:
        raise ValidationError("This invitation link is no longer valid. Ask your admin to send a new one.")
    user = invitation.membership.user
    validate_password(password, user)
    if first_name.strip():
        user.first_name = first_name.strip()
    if last_name.strip():
        user.last_name = last_name.strip()
    user.set_password(password)
    user.save()
    now = timezone.now()
    # One password serves every team: all the person's open invitations are now done.
    Invitation.objects.filter(membership__user=user, accepted_at__isnull=True).update(accepted_at=now)
    write_audit_event(action="member.invitation_accepted", actor=user, team=invitation.membership.team, target=user)
    return user


def _lock_membership(membership: Membership) -> Membership:
    return Membership.objects.select_for_update().select_related("user", "team").get(pk=membership.pk)


@transaction.atomic
def change_role(*, membership: Membership, role: str, actor: User | None) -> Membership:
    membership = _lock_membership(membership)
    if role not in Role.values:
        raise ValidationError({"role": f"“{role}” is not a role."})
    if role == membership.role:
        return membership
    if membership.role == Role.PRIMARY_ADMIN:
        raise ValidationError(
            {"role": "A team always keeps its primary admin. Transfer the primary admin role to someone else first."}
        )
    if role == Role.PRIMARY_ADMIN:
        raise ValidationError({"role": "Use “Make primary admin” to hand over the primary admin role."})
    if actor is not None and membership.user_id == actor.pk:
        raise ValidationError({"role": "You can't change your own role. Ask another admin."})
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    write_audit_event(
        action="member.role_changed",
        actor=actor,
        team=membership.team,
        target=membership.user,
        details={"from": old, "to": role},
    )
    return membership


@transaction.atomic
def remove_member(*, membership: Membership, actor: User | None) -> None:
    membership = _lock_membership(membership)
    if membership.role == Role.PRIMARY_ADMIN:
        raise ValidationError(
            "The primary admin can't be removed. Transfer the primary admin role to someone else first."
        )
    if actor is not None and membership.user_id == actor.pk:
        raise ValidationError("You can't remove yourself. Ask another admin.")
    team, user, role = membership.team, membership.user, membership.role
    membership.delete()
    write_audit_event(
        action="member.removed", actor=actor, team=team, target=user, details={"role": role, "email": user.email}
    )


@transaction.atomic
def transfer_primary_admin(*, team: Team, to: Membership, actor: User | None) -> Membership:
    """Hand the primary admin role to another member; the old primary admin stays a secondary admin."""
    lock_team(team)
    to = _lock_membership(to)
    if to.team_id != team.pk:
        raise ValidationError("That person is not a member of this team.")
    if to.role == Role.PRIMARY_ADMIN:
        raise ValidationError(f"{to.user.email} is already the primary admin.")
    if not to.user.is_active:
        raise ValidationError(f"{to.user.email} is deactivated and can't become primary admin.")
    current = _primary_admin(team)
    if current is not None:
        current.role = Role.SECONDARY_ADMIN
        current.save(update_fields=["role"])
    to.role = Role.PRIMARY_ADMIN
    to.save(update_fields=["role"])
    write_audit_event(
        action="member.primary_admin_transferred",
        actor=actor,
        team=team,
        target=to.user,
        details={"from": current.user.email if current else None, "to": to.user.email},
    )
    return to


@transaction.atomic
def put_member(
    *, team: Team, email: str, role: str, first_name: str = "", last_name: str = "", actor: User | None
) -> tuple[Membership, bool]:
    """Make ``email`` a member of the team with ``role``: invite them if they are not one
    yet, otherwise change their role. Returns (membership, invited).

    ``primary_admin`` is handed over (``transfer_primary_admin``): somebody new is invited
    as a secondary admin first when the team already has a primary admin.
    """
    email = normalize_email(email)
    if role not in Role.values:
        raise ValidationError({"role": f"“{role}” is not a role. Choose one of: {', '.join(Role.labels)}."})
    lock_team(team)
    membership = selectors.member_by_email(team=team, email=email)
    invited = membership is None
    if invited:
        first_role = Role.SECONDARY_ADMIN if role == Role.PRIMARY_ADMIN and _primary_admin(team) else role
        membership = invite_user(
            team=team, email=email, role=first_role, first_name=first_name, last_name=last_name, actor=actor
        )
    if membership.role != role:
        if role == Role.PRIMARY_ADMIN:
            transfer_primary_admin(team=team, to=membership, actor=actor)
        else:
            change_role(membership=membership, role=role, actor=actor)
    return selectors.member_by_email(team=team, email=email), invited
