"""Reads about people and teams. Views render what these return; they never query alone."""

from __future__ import annotations

from datetime import date

from django.db.models import Case, Count, QuerySet, When
from django.utils import timezone

from accounts.models import (
    ADMIN_ROLES,
    AlertOptOut,
    AlertSettings,
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Notification,
    Role,
    Team,
    User,
    hash_token,
)


def teams_of_user(user: User) -> list[Team]:
    return list(
        Team.objects.filter(memberships__in=Membership.objects.joined().filter(user_id=user.pk)).order_by("name")
    )


def home_team_of_user(user: User) -> Team | None:
    """Where a fresh sign-in lands: the team with the person's highest role, then by name."""
    membership = (
        Membership.objects.joined()
        .filter(user_id=user.pk)
        .select_related("team")
        .order_by(role_rank(), "team__name")
        .first()
    )
    return membership.team if membership else None


def role_rank(field: str = "role") -> Case:
    """Roles in order of rank (primary admin first), for sorting."""
    return Case(*(When(**{field: value}, then=rank) for rank, value in enumerate(Role.values)), default=99)


def member_list(*, team: Team) -> QuerySet[Membership]:
    """The team's memberships with user and invitation, for the members table
    (``MemberFilter`` narrows it)."""
    return (
        Membership.objects.filter(team=team)
        .select_related("user", "invitation", "invited_by")
        .annotate(role_rank=role_rank())
    )


def is_member(*, user: User, slug: str) -> bool:
    return Membership.objects.joined().filter(team__slug=slug, user_id=user.pk).exists()


def pending_invitation(*, token: str) -> Invitation | None:
    """The pending, unexpired invitation a link stands for, or None."""
    invitation = (
        Invitation.objects.select_related("membership__user", "membership__team")
        .filter(token_hash=hash_token(token or ""), accepted_at__isnull=True)
        .first()
    )
    if invitation is None or invitation.is_expired():
        return None
    return invitation


def member_for_team(*, team: Team, pk: int) -> Membership | None:
    return Membership.objects.select_related("user", "invitation", "team").filter(team=team, pk=pk).first()


def team_admins(*, team: Team) -> list[Membership]:
    # The invitation too: display_name asks it (one query per admin otherwise).
    admins = Membership.objects.filter(team=team, role__in=ADMIN_ROLES).select_related("user", "invitation")
    # The primary admin first, then secondary admins by name.
    return sorted(admins, key=lambda m: (m.role != Role.PRIMARY_ADMIN, m.user.get_full_name().lower()))


def role_counts(*, team: Team) -> dict[str, int]:
    counts = dict(Membership.objects.filter(team=team).values_list("role").annotate(n=Count("id")))
    return {value: counts.get(value, 0) for value in Role.values}


def pending_invitation_count(*, team: Team) -> int:
    return Membership.objects.filter(team=team, invitation__accepted_at__isnull=True, invitation__isnull=False).count()


def contract_days_left(*, team: Team, today: date | None = None) -> int:
    today = today or timezone.localdate(timezone=team.tz)
    return (team.contract_end - today).days


def audit_events(*, team: Team) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(team=team).select_related("actor")


def api_key_for_secret(*, secret: str) -> ApiKey | None:
    """The active key a secret stands for, or None. Looked up by hash: the secret itself
    is stored nowhere."""
    if not secret:
        return None
    return (
        ApiKey.objects.select_related("team__reseller", "reseller", "created_by")
        .filter(key_hash=hash_token(secret), revoked_at__isnull=True)
        .first()
    )


def api_keys_of_team(*, team: Team) -> QuerySet[ApiKey]:
    """The team's keys, revoked ones included, newest first."""
    return ApiKey.objects.filter(team=team).select_related("created_by").order_by("-created_at", "-id")


def api_key_for_team(*, team: Team, pk: int) -> ApiKey | None:
    return ApiKey.objects.filter(team=team, pk=pk).first()


def team_members_by_email(*, team: Team, emails: set[str]) -> dict[str, User]:
    """The team's members among ``emails`` (lower case), keyed by lower-case e-mail. One query."""
    return {user.email.lower(): user for user in User.objects.filter(memberships__team=team, email__in=emails)}


def member_by_email(*, team: Team, email: str) -> Membership | None:
    """The team's membership of the person with this e-mail (case-insensitive), or None."""
    return (
        Membership.objects.select_related("user", "invitation", "team")
        .filter(team=team, user__email__iexact=email)
        .first()
    )


# --- Notifications and alerts ---------------------------------------------------------------


def unread_notification_count(*, user: User) -> int:
    return Notification.objects.filter(user_id=user.pk, read_at__isnull=True).count()


def notifications_of_user(*, user: User) -> QuerySet[Notification]:
    """The person's notices, newest first."""
    return Notification.objects.filter(user_id=user.pk).select_related("team").order_by("-created_at", "-id")


def notification_for_user(*, user: User, pk: int) -> Notification | None:
    return Notification.objects.filter(user_id=user.pk, pk=pk).first()


def alert_settings_of_team(*, team: Team) -> AlertSettings:
    """The team's alert settings; the defaults (not saved) when nobody changed them yet."""
    return AlertSettings.objects.filter(team=team).first() or AlertSettings(team=team)


def alert_opt_outs(*, team: Team) -> set[tuple[int, str]]:
    """(user id, kind) of every admin who does not want a kind of the team's alerts."""
    return set(AlertOptOut.objects.filter(team=team).values_list("user_id", "kind"))


def alert_recipients(*, team: Team, kind: str) -> list[User]:
    """Who gets a kind of the team's alerts: its active admins who did not opt out, nobody
    when the team switched the kind off."""
    alert_settings = alert_settings_of_team(team=team)
    if not alert_settings.is_on(kind):
        return []
    opted_out = AlertOptOut.objects.filter(team=team, kind=kind).values("user_id")
    return list(
        User.objects.filter(memberships__team=team, memberships__role__in=ADMIN_ROLES, is_active=True)
        .exclude(pk__in=opted_out)
        .order_by("email")
    )


def sales_reps_of_team(*, team: Team) -> list[User]:
    """The active sales reps of the reseller that serves the team."""
    return list(User.objects.filter(sales_rep_roles__reseller_id=team.reseller_id, is_active=True).order_by("email"))


def staff_users() -> list[User]:
    return list(User.objects.filter(is_staff=True, is_active=True).order_by("email"))
