"""Members of a team: invitations, roles, removal and the primary admin hand-over.

Who may call a service is decided by ``accounts.access`` in the views; the rules that hold
whoever calls (one primary admin per team, no duplicate member) live here.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import selectors
from accounts.audit import write_audit_event
from accounts.models import Invitation, Membership, Role, Team, User, hash_token
from accounts.services.people import clean_names, normalize_email
from accounts.services.teams import lock_team
from core.queue import enqueue_on_commit


def _enqueue_invitation_email(invitation: Invitation, token: str) -> None:
    enqueue_on_commit("accounts.send_invitation_email", invitation.pk, token)


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
    consented: bool = False,
) -> Membership:
    """Invite a person to a team and e-mail them the link (valid ``FLEX_INVITATION_DAYS``).

    Somebody new sets a password with the link; somebody who already has an account accepts
    with it: nobody is put in a team without agreeing, and the team learns nothing stored
    about them (their name stays theirs until they join). Staff accounts are never added.
    ``notify=False, consented=True`` only for the demo seeder: its people join at once.
    """
    email = normalize_email(email)
    first_name, last_name = clean_names(first_name, last_name)
    if role not in Role.values:
        raise ValidationError({"role": f"“{role}” is not a role. Choose one of: {', '.join(Role.labels)}."})
    # Lock the team's memberships so two invitations of the same person cannot race.
    lock_team(team)
    if role == Role.PRIMARY_ADMIN and _primary_admin(team) is not None:
        raise ValidationError(
            {"role": "This team already has a primary admin. Invite the person first, then transfer the role."}
        )
    user = User.objects.filter(email__iexact=email).first()
    if user is not None and (user.is_staff or user.is_superuser):
        raise ValidationError({"email": f"{email} can't be added to a team."})
    existing = Membership.objects.filter(team=team, user=user).first() if user is not None else None
    if existing is not None:
        if Invitation.objects.filter(membership=existing, accepted_at__isnull=True).exists():
            raise ValidationError(
                {
                    "email": f"{email} is already invited to {team}. To send the link again, open their page "
                    "under User Management and choose “Resend invitation”."
                }
            )
        raise ValidationError({"email": f"{email} is already a member of {team}."})
    if user is None:
        user = User.objects.create_user(email, None, first_name=first_name, last_name=last_name)
    try:
        with transaction.atomic():
            membership = Membership.objects.create(user=user, team=team, role=role, invited_by=actor)
    except IntegrityError:
        raise ValidationError({"email": f"{email} is already a member of {team}."}) from None
    if not consented:
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
    if invitation is None or not invitation.is_pending:
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
def accept_invitation(*, token: str, password: str | None = None, first_name: str = "", last_name: str = "") -> User:
    """Join the team the link invites to. Somebody new sets their password (and name) with
    it, which accepts all their open invitations; somebody who already has an account just
    accepts this one (their password and name stay as they are)."""
    invitation = selectors.pending_invitation(token=token)
    if invitation is None:
        raise ValidationError("This invitation link is no longer valid. Ask your admin to send a new one.")
    user = invitation.membership.user
    if user.has_usable_password():
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
        write_audit_event(action="member.invitation_accepted", actor=user, team=invitation.membership.team, target=user)
        return user
    if not password:
        raise ValidationError({"password1": "Choose a password."})
    validate_password(password, user)
    first_name, last_name = clean_names(first_name, last_name)
    user.first_name = first_name or user.first_name
    user.last_name = last_name or user.last_name
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
    if to.is_pending:
        raise ValidationError(
            f"{to.user.email} has not accepted the invitation yet; hand over the role once they have joined."
        )
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
    yet, otherwise change their role. Returns (membership, invited). For the API.

    The primary admin role is handed over person to person in the browser, never through
    the API: ``primary_admin`` is taken only by a team that has none yet (its first admin).
    """
    email = normalize_email(email)
    if role not in Role.values:
        raise ValidationError({"role": f"“{role}” is not a role. Choose one of: {', '.join(Role.labels)}."})
    lock_team(team)
    membership = selectors.member_by_email(team=team, email=email)
    primary = _primary_admin(team)
    if role == Role.PRIMARY_ADMIN and primary is not None and primary != membership:
        raise PermissionDenied(
            "The primary admin role is handed over in the browser, by the primary admin; the API can't do it."
        )
    invited = membership is None
    if invited:
        membership = invite_user(
            team=team, email=email, role=role, first_name=first_name, last_name=last_name, actor=actor
        )
    elif membership.role != role:
        if role == Role.PRIMARY_ADMIN:
            transfer_primary_admin(team=team, to=membership, actor=actor)
        else:
            change_role(membership=membership, role=role, actor=actor)
    return selectors.member_by_email(team=team, email=email), invited
