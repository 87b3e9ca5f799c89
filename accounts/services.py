"""Every change to people, teams and roles.

Each service is keyword-only, atomic, validates with a ``ValidationError`` a person can
read, writes its audit event in the same transaction and returns what it made. Who may
call a service is decided by ``accounts.access`` in the views; the rules that hold
whoever calls (one primary admin per team, no duplicate member) live here.
"""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts import selectors
from accounts.audit import write_audit_event
from accounts.models import (
    API_KEY_MARKER,
    API_KEY_PREFIX_LENGTH,
    TEAM_ALERT_KINDS,
    AlertOptOut,
    AlertSettings,
    ApiKey,
    FlexAssignment,
    Invitation,
    Membership,
    Notification,
    NotificationKind,
    Plan,
    Reseller,
    Role,
    SalesRep,
    Team,
    ThresholdUnit,
    User,
    hash_token,
    validate_time_zone,
)
from flexadmin.celery import enqueue_on_commit


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": f"“{email}” is not a valid e-mail address."}) from None
    return email


def _enqueue_invitation_email(invitation: Invitation, token: str) -> None:
    from accounts.tasks import send_invitation_email_task

    enqueue_on_commit(send_invitation_email_task, invitation.pk, token)


def _enqueue_added_email(membership: Membership) -> None:
    from accounts.tasks import send_added_to_team_email_task

    enqueue_on_commit(send_added_to_team_email_task, membership.pk)


# --- Resellers and teams ------------------------------------------------------------------


@transaction.atomic
def create_reseller(*, name: str, slug: str, actor: User | None = None) -> Reseller:
    if Reseller.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A reseller with the slug “{slug}” already exists."})
    reseller = Reseller.objects.create(name=name, slug=slug)
    write_audit_event(action="reseller.created", actor=actor, reseller=reseller, target=reseller)
    return reseller


@transaction.atomic
def add_sales_rep(
    *,
    reseller: Reseller,
    email: str,
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
    actor: User | None = None,
) -> SalesRep:
    email = normalize_email(email)
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email, password, first_name=first_name, last_name=last_name)
    if SalesRep.objects.filter(reseller=reseller, user=user).exists():
        raise ValidationError({"email": f"{email} is already a sales rep of {reseller}."})
    rep = SalesRep.objects.create(reseller=reseller, user=user)
    write_audit_event(action="sales_rep.added", actor=actor, reseller=reseller, target=user)
    return rep


def _validate_team_fields(*, name: str, plan: str, time_zone: str, contract_start: date, contract_end: date) -> None:
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = "A team needs a name."
    if plan not in Plan.values:
        errors["plan"] = f"The plan must be one of: {', '.join(Plan.values)}."
    try:
        validate_time_zone(time_zone)
    except ValidationError as exc:
        errors["time_zone"] = exc.messages[0]
    if contract_end <= contract_start:
        errors["contract_end"] = "The contract must end after it starts."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def create_team(
    *,
    reseller: Reseller,
    name: str,
    slug: str,
    plan: str,
    time_zone: str,
    contract_start: date,
    contract_end: date,
    actor: User | None = None,
) -> Team:
    """A new customer team of a reseller. Its primary admin is invited separately."""
    _validate_team_fields(
        name=name, plan=plan, time_zone=time_zone, contract_start=contract_start, contract_end=contract_end
    )
    if Team.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A team with the slug “{slug}” already exists."})
    team = Team.objects.create(
        reseller=reseller,
        name=name.strip(),
        slug=slug,
        plan=plan,
        time_zone=time_zone,
        contract_start=contract_start,
        contract_end=contract_end,
    )
    write_audit_event(
        action="team.created",
        actor=actor,
        team=team,
        reseller=reseller,
        target=team,
        details={"plan": plan, "contract_start": str(contract_start), "contract_end": str(contract_end)},
    )
    return team


@transaction.atomic
def update_team_settings(*, team: Team, name: str, time_zone: str, actor: User) -> Team:
    _validate_team_fields(
        name=name,
        plan=team.plan,
        time_zone=time_zone,
        contract_start=team.contract_start,
        contract_end=team.contract_end,
    )
    changes = {}
    if team.name != name.strip():
        changes["name"] = [team.name, name.strip()]
    if team.time_zone != time_zone:
        changes["time_zone"] = [team.time_zone, time_zone]
    if not changes:
        return team
    team.name = name.strip()
    team.time_zone = time_zone
    team.save(update_fields=["name", "time_zone"])
    write_audit_event(action="team.settings_changed", actor=actor, team=team, target=team, details=changes)
    return team


@transaction.atomic
def create_user(
    *,
    email: str,
    password: str | None,
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
    actor: User | None = None,
) -> User:
    """A person who can sign in at once (staff, demo logins); team admins use ``invite_user``."""
    email = normalize_email(email)
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": f"{email} already has an account."})
    if password:
        validate_password(password)
    user = User.objects.create_user(
        email, password, first_name=first_name, last_name=last_name, is_staff=is_staff, is_superuser=is_staff
    )
    write_audit_event(action="user.created", actor=actor, target=user, details={"staff": is_staff})
    return user


# --- Members --------------------------------------------------------------------------------


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
    Team.objects.select_for_update().filter(pk=team.pk).first()
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
    Team.objects.select_for_update().filter(pk=team.pk).first()
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
def set_user_flags(*, user: User, is_active: bool, is_staff: bool, actor: User | None) -> User:
    """Staff switch a person's access on or off (the Django admin calls this)."""
    changes = {
        name: [getattr(user, name), value]
        for name, value in (("is_active", is_active), ("is_staff", is_staff))
        if getattr(user, name) != value
    }
    if actor is not None and actor.pk == user.pk and changes:
        raise ValidationError("Staff can't change their own access; ask another staff member.")
    if not changes:
        return user
    user.is_active, user.is_staff = is_active, is_staff
    user.save(update_fields=["is_active", "is_staff"])
    write_audit_event(action="user.access_changed", actor=actor, target=user, details=changes)
    return user


@transaction.atomic
def update_profile(*, user: User, first_name: str, last_name: str) -> User:
    user.first_name = first_name.strip()
    user.last_name = last_name.strip()
    user.save(update_fields=["first_name", "last_name"])
    write_audit_event(action="user.profile_changed", actor=user, target=user)
    return user


# --- Bulk invitations from a CSV file ---------------------------------------------------------

CSV_COLUMNS = ("first name", "last name", "email", "role")
ROLE_BY_LABEL = {label.lower(): value for value, label in Role.choices} | {v: v for v in Role.values}


@dataclass
class CsvRow:
    line: int
    first_name: str
    last_name: str
    email: str
    role: str
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def role_label(self) -> str:
        return Role(self.role).label if self.role in Role.values else self.role


@dataclass
class CsvPreview:
    rows: list[CsvRow]
    errors: list[str]  # problems with the file as a whole

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rows) and all(row.ok for row in self.rows)

    @property
    def bad_rows(self) -> list[CsvRow]:
        return [row for row in self.rows if not row.ok]


def parse_member_csv(*, team: Team, data: bytes) -> CsvPreview:
    """Read and check a file of ``First name, Last name, Email[, Role]`` rows. Writes nothing.

    Every row is checked: e-mail syntax, known role, duplicates in the file, people who
    are already members, and the primary admin role (never granted by import).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return CsvPreview(rows=[], errors=["The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again."])
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        records = [(reader.line_num, record) for record in reader]
    except csv.Error as exc:
        return CsvPreview(rows=[], errors=[f"The file could not be read as CSV: {exc}."])
    records = [(line, rec) for line, rec in records if any(cell.strip() for cell in rec)]
    if not records:
        return CsvPreview(rows=[], errors=["The file is empty. It needs a header row and one row per person."])
    header = [cell.strip().lower().replace("_", " ").replace("e-mail", "email") for cell in records[0][1]]
    missing = [name for name in CSV_COLUMNS[:3] if name not in header]
    if missing:
        return CsvPreview(
            rows=[],
            errors=[
                "The first row must name the columns First name, Last name, Email (and optionally Role); "
                f"missing: {', '.join(m.capitalize() for m in missing)}."
            ],
        )
    if len(records) - 1 > settings.FLEX_CSV_MAX_ROWS:
        return CsvPreview(
            rows=[], errors=[f"The file has {len(records) - 1} rows; at most {settings.FLEX_CSV_MAX_ROWS} at a time."]
        )
    index = {name: header.index(name) for name in CSV_COLUMNS if name in header}
    existing = set(Membership.objects.filter(team=team).values_list("user__email", flat=True).iterator())
    existing = {email.lower() for email in existing}
    seen: dict[str, int] = {}
    rows: list[CsvRow] = []
    for line, record in records[1:]:

        def cell(name: str, record: list[str] = record) -> str:
            position = index.get(name)
            return record[position].strip() if position is not None and position < len(record) else ""

        row = CsvRow(
            line=line,
            first_name=cell("first name"),
            last_name=cell("last name"),
            email=cell("email").lower(),
            role=cell("role"),
        )
        if len(record) > len(header):
            row.errors.append(f"has {len(record)} cells but the header names {len(header)} columns")
        if not row.email:
            row.errors.append("e-mail is missing")
        else:
            try:
                validate_email(row.email)
            except ValidationError:
                row.errors.append(f"“{row.email}” is not a valid e-mail address")
        role_value = ROLE_BY_LABEL.get(row.role.lower()) if row.role else Role.MEMBER
        if role_value is None:
            row.errors.append(f"unknown role “{row.role}” (use Member, Report viewer or Secondary admin)")
        elif role_value == Role.PRIMARY_ADMIN:
            row.errors.append("the primary admin can't be set by import; transfer the role from the member page")
        else:
            row.role = role_value
        if len(row.first_name) > 150 or len(row.last_name) > 150:
            row.errors.append("names are limited to 150 characters")
        if row.email in existing:
            row.errors.append(f"{row.email} is already a member of this team")
        if row.email and row.email in seen:
            row.errors.append(f"{row.email} also appears on line {seen[row.email]}")
        elif row.email:
            seen[row.email] = line
        rows.append(row)
    if not rows:
        return CsvPreview(rows=[], errors=["The file has a header row but nobody in it."])
    return CsvPreview(rows=rows, errors=[])


@transaction.atomic
def bulk_invite(*, team: Team, data: bytes, actor: User | None) -> list[Membership]:
    """Invite everybody in a CSV file, or nobody: any bad row refuses the whole file."""
    preview = parse_member_csv(team=team, data=data)
    if not preview.ok:
        problems = preview.errors + [f"line {row.line}: {'; '.join(row.errors)}" for row in preview.bad_rows]
        raise ValidationError(["Nothing was imported. Fix the file and upload it again.", *problems])
    memberships = [
        invite_user(
            team=team,
            email=row.email,
            role=row.role,
            first_name=row.first_name,
            last_name=row.last_name,
            actor=actor,
        )
        for row in preview.rows
    ]
    write_audit_event(action="member.bulk_invited", actor=actor, team=team, details={"count": len(memberships)})
    return memberships


# --- Flex assignments ---------------------------------------------------------------------------


@transaction.atomic
def assign_flex(
    *,
    team: Team,
    user: User,
    products: str | list[str] = "all",
    actor: User | None,
    at: datetime | None = None,
) -> FlexAssignment:
    """Let a member spend the team's tokens: on every product ("all") or on a list of codes.

    A change ends the current assignment and starts a new one, so the history shows who
    could spend what, and when.
    """
    from billing.models import Rate

    at = at or timezone.now()
    if not Membership.objects.filter(team=team, user=user).exists():
        raise ValidationError({"user": f"{user.email} is not a member of {team}."})
    if products == "all":
        all_products, codes = True, []
    elif isinstance(products, list | tuple) and products and all(isinstance(p, str) for p in products):
        codes = sorted(set(products))
        unknown = sorted(set(codes) - set(Rate.objects.filter(code__in=codes).values_list("code", flat=True)))
        if unknown:
            raise ValidationError({"products": f"Unknown product code(s): {', '.join(unknown)}."})
        all_products = False
    else:
        raise ValidationError({"products": "Give “all” or a non-empty list of product codes."})
    Team.objects.select_for_update().filter(pk=team.pk).first()
    current = FlexAssignment.objects.select_for_update().filter(team=team, user=user, removed_at__isnull=True).first()
    if current is not None:
        if current.all_products == all_products and sorted(current.products) == codes:
            return current
        current.removed_at, current.removed_by = at, actor
        current.save(update_fields=["removed_at", "removed_by"])
    assignment = FlexAssignment.objects.create(
        team=team, user=user, all_products=all_products, products=codes, assigned_at=at, assigned_by=actor
    )
    write_audit_event(
        action="flex.assigned",
        actor=actor,
        team=team,
        target=user,
        details={"products": "all" if all_products else codes},
    )
    return assignment


@transaction.atomic
def remove_flex(*, team: Team, user: User, actor: User | None, at: datetime | None = None) -> FlexAssignment | None:
    """End a member's Flex assignment; returns the ended row (None if there was none)."""
    at = at or timezone.now()
    current = FlexAssignment.objects.select_for_update().filter(team=team, user=user, removed_at__isnull=True).first()
    if current is None:
        return None
    current.removed_at, current.removed_by = at, actor
    current.save(update_fields=["removed_at", "removed_by"])
    write_audit_event(action="flex.removed", actor=actor, team=team, target=user)
    return current


# --- API keys -----------------------------------------------------------------------------------

API_KEY_NAME_MAX_LENGTH = ApiKey._meta.get_field("name").max_length
# last_used_at is a hint for people ("is this key still in use?"), not a log: writing it on
# every request would turn each API call into a write on one hot row.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


@transaction.atomic
def create_api_key(
    *, team: Team | None = None, reseller: Reseller | None = None, name: str, actor: User | None
) -> tuple[ApiKey, str]:
    """A new key for one team or one reseller. Returns the key and its secret, which is
    stored nowhere (only its hash is): the caller shows it once."""
    if (team is None) == (reseller is None):
        raise ValidationError("An API key belongs to either a team or a reseller.")
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the key a name, for example the program that will use it."})
    if len(name) > API_KEY_NAME_MAX_LENGTH:
        raise ValidationError({"name": f"A key's name is limited to {API_KEY_NAME_MAX_LENGTH} characters."})
    secret = API_KEY_MARKER + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name,
        prefix=secret[:API_KEY_PREFIX_LENGTH],
        key_hash=hash_token(secret),
        team=team,
        reseller=reseller,
        created_by=actor if actor is not None and actor.pk else None,
    )
    write_audit_event(
        action="api_key.created",
        actor=actor,
        team=team,
        reseller=reseller,
        target=key,
        details={"name": name, "prefix": key.prefix},
    )
    return key, secret


@transaction.atomic
def revoke_api_key(*, key: ApiKey, actor: User | None) -> ApiKey:
    """Stop a key from working at once. Revoking a revoked key changes nothing."""
    locked = ApiKey.objects.select_for_update().get(pk=key.pk)
    if locked.revoked_at is None:
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        write_audit_event(
            action="api_key.revoked",
            actor=actor,
            team=locked.team,
            reseller=locked.reseller,
            target=locked,
            details={"name": locked.name, "prefix": locked.prefix},
        )
    key.revoked_at = locked.revoked_at
    return key


def touch_api_key(*, key: ApiKey, now: datetime | None = None) -> bool:
    """Note that a key was used; returns whether a row was written.

    At most one write a minute per key, and none when the key in hand says it was used
    within the minute. One conditional UPDATE, so concurrent requests need no lock and
    at most one of them writes. Not audited: it records use, not a change anybody made.
    """
    now = now or timezone.now()
    cutoff = now - API_KEY_TOUCH_INTERVAL
    if key.last_used_at is not None and key.last_used_at > cutoff:
        return False
    written = (
        ApiKey.objects.filter(pk=key.pk)
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=cutoff))
        .update(last_used_at=now)
    )
    if written:
        key.last_used_at = now
    return bool(written)


# --- Notifications and alert settings ---------------------------------------------------------


def _enqueue_notification_email(notification: Notification) -> None:
    from accounts.tasks import send_notification_email_task

    enqueue_on_commit(send_notification_email_task, notification.pk)


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
    team = Team.objects.select_for_update().get(pk=team.pk)  # two admins saving at once: one after the other
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
