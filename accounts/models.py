"""People, teams and who may do what.

Rows here are written only by ``accounts.services``; views, admin actions, commands and
the demo seeder all go through those functions so that every change is audited.
"""

from __future__ import annotations

import hashlib
import zoneinfo

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

TIME_ZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones()) if "/" in name or name == "UTC"]


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known time zone (for example Europe/Berlin).")


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: object) -> User:
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password) if password else user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        # Sign-in by e-mail is case-insensitive.
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Signs in with an e-mail address; belongs to teams through memberships."""

    email = models.EmailField("e-mail address", unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField("platform staff", default=False, help_text="May use the Django admin.")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email

    def get_short_name(self) -> str:
        return self.first_name or self.email


class Reseller(models.Model):
    """A partner that sells token packs to the teams it serves, through its sales reps."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SalesRep(models.Model):
    """A reseller's staff member: sees the customer teams the reseller serves."""

    reseller = models.ForeignKey(Reseller, on_delete=models.CASCADE, related_name="sales_reps")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sales_rep_roles")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["reseller", "user"], name="salesrep_unique_user")]

    def __str__(self) -> str:
        return f"{self.user} ({self.reseller})"


class Plan(models.TextChoices):
    STANDARD = "standard", "Standard"
    PREMIUM = "premium", "Premium"


class Team(models.Model):
    """A customer account: owns one token balance and is served by one reseller."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.STANDARD)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    contract_start = models.DateField()
    contract_end = models.DateField()
    # Privacy (domain.md "Reports"): off, the reports show a stable pseudonym per person.
    report_names = models.BooleanField(
        "Display names and e-mail addresses in reports",
        default=True,
        help_text="Off: every report, drill-down and export shows a pseudonym (User 17) instead.",
    )
    reseller = models.ForeignKey(Reseller, on_delete=models.PROTECT, related_name="teams")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(contract_end__gt=models.F("contract_start")), name="team_contract_end_after_start"
            ),
            models.CheckConstraint(condition=Q(plan__in=["standard", "premium"]), name="team_plan_known"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_premium(self) -> bool:
        return self.plan == Plan.PREMIUM

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Role(models.TextChoices):
    PRIMARY_ADMIN = "primary_admin", "Primary admin"
    SECONDARY_ADMIN = "secondary_admin", "Secondary admin"
    REPORT_VIEWER = "report_viewer", "Report viewer"
    MEMBER = "member", "Member"


ADMIN_ROLES = frozenset({Role.PRIMARY_ADMIN, Role.SECONDARY_ADMIN})


class MembershipQuerySet(models.QuerySet):
    def joined(self) -> MembershipQuerySet:
        """Memberships the person has taken up: no invitation, or an accepted one. Until
        then a membership opens no team page (the person has not agreed to join)."""
        return self.filter(Q(invitation__isnull=True) | Q(invitation__accepted_at__isnull=False))


class Membership(models.Model):
    """A user's place in a team. Exactly one primary admin per team.

    A person invited by e-mail joins when they accept the invitation (``joined()``): someone
    new by setting a password, someone who already has an account by accepting.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)
    invited_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["team", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["user", "team"], name="membership_unique_user_team"),
            # At most one primary admin per team; the services make sure there is always one.
            models.UniqueConstraint(
                fields=["team"], condition=Q(role="primary_admin"), name="membership_one_primary_admin"
            ),
            models.CheckConstraint(
                condition=Q(role__in=["primary_admin", "secondary_admin", "report_viewer", "member"]),
                name="membership_role_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.get_role_display()})"

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES

    @property
    def is_pending(self) -> bool:
        """Invited, and not joined yet."""
        invitation = getattr(self, "invitation", None) if self.pk else None
        return invitation is not None and invitation.accepted_at is None

    @property
    def shows_profile(self) -> bool:
        """Whether the team may see the person's stored name: once they joined, or when the
        team itself typed it (somebody new). Someone who already had an account and has
        not accepted yet is shown by e-mail address only."""
        return not (self.is_pending and self.user.has_usable_password())

    @property
    def display_name(self) -> str:
        """The name the team sees: the stored one where it may (``shows_profile``), else the e-mail."""
        return (self.user.get_full_name() if self.shows_profile else "") or self.user.email


def hash_token(token: str) -> str:
    """Invitation links carry a random token; only this hash of it is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


class Invitation(models.Model):
    """A link, sent by e-mail, with which an invited person sets a password.

    Only a hash of the token is stored: the link itself lives in the e-mail alone.
    Resending makes a new token and a new expiry; the old link stops working.
    """

    membership = models.OneToOneField(Membership, on_delete=models.CASCADE, related_name="invitation")
    token_hash = models.CharField(max_length=64, unique=True)
    sent_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    send_count = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"Invitation for {self.membership.user}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None

    def is_expired(self, now: timezone.datetime | None = None) -> bool:
        return (now or timezone.now()) >= self.expires_at


class AuditEvent(models.Model):
    """Who did what to whom, when and from where. Written by the services, never edited."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_email = models.CharField(max_length=254, blank=True, help_text="Kept when the actor is deleted.")
    action = models.CharField(max_length=64, db_index=True)
    # The trail outlives what it describes: deleting a team or reseller keeps its events.
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events")
    reseller = models.ForeignKey(Reseller, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["team", "-created_at"], name="audit_team_time")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_email or 'system'} {self.action} {self.target_repr}"


API_KEY_MARKER = "flx_"
API_KEY_PREFIX_LENGTH = len(API_KEY_MARKER) + 8


class ApiKey(models.Model):
    """A secret with which a program calls the API, for one team or for one reseller.

    The key is shown once, when it is made; only its SHA-256 hash is stored, with its
    first characters (``prefix``) so that people can tell their keys apart. Revoking keeps
    the row, so the settings page and the activity log still name it.
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=API_KEY_PREFIX_LENGTH, help_text="The key's visible start, e.g. flx_AbC12xYz.")
    key_hash = models.CharField(max_length=64, unique=True)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys")
    reseller = models.ForeignKey(Reseller, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys")
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    integration = models.BooleanField(
        default=False,
        help_text="Made by the create_api_key command for an integration: acts as an admin of its team. "
        "Any other key acts with its maker's role, checked at every use.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A key acts for exactly one team or exactly one reseller, never both, never neither.
            models.CheckConstraint(
                condition=(Q(team__isnull=False) & Q(reseller__isnull=True))
                | (Q(team__isnull=True) & Q(reseller__isnull=False)),
                name="apikey_team_xor_reseller",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def label(self) -> str:
        """How the audit trail names the key: its name, its prefix and who made it."""
        if self.integration:
            return f"API key “{self.name}” ({self.prefix}…), integration"
        maker = self.created_by.email if self.created_by is not None else "a deleted account"
        return f"API key “{self.name}” ({self.prefix}…) made by {maker}"


class NotificationKind(models.TextChoices):
    EXPIRY_REMINDER = "expiry_reminder", "Tokens expiring"
    LOW_BALANCE = "low_balance", "Low balance"
    LEDGER_CHECK = "ledger_check", "Ledger check failed"
    PACK_RECORDED = "pack_recorded", "Pack recorded"


# What a team's admins may switch on or off, and choose who receives (Settings > Alerts).
TEAM_ALERT_KINDS = (NotificationKind.EXPIRY_REMINDER, NotificationKind.LOW_BALANCE)


class Notification(models.Model):
    """An in-app notice for one person (the bell in the top bar), e-mailed once.

    ``emailed_at`` is claimed with a conditional UPDATE before the e-mail goes out, so a
    notice is never e-mailed twice however often the sending task runs.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField()
    link = models.CharField(max_length=300, blank=True, help_text="A path in the portal.")
    data = models.JSONField(default=dict, blank=True, help_text="What the e-mail templates show.")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_failed_at = models.DateTimeField(null=True, blank=True, help_text="Its e-mail failed for good.")
    email_error = models.CharField(max_length=300, blank=True, help_text="Why its e-mail failed.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "read_at"], name="notification_user_unread"),
            models.Index(fields=["emailed_at", "created_at"], name="notification_email_pending"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["expiry_reminder", "low_balance", "ledger_check", "pack_recorded"]),
                name="notification_kind_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.title}"

    @property
    def is_unread(self) -> bool:
        return self.read_at is None


class ThresholdUnit(models.TextChoices):
    PERCENT = "percent", "percent of the tokens in active packs"
    TOKENS = "tokens", "tokens"


DEFAULT_LOW_BALANCE_PERCENT = 20  # domain.md "Low balance"


class AlertSettings(models.Model):
    """A team's alert choices (Settings > Alerts). A team without a row has the defaults:
    both kinds on, low balance below 20% of the tokens in active packs."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="alert_settings")
    expiry_reminders = models.BooleanField(default=True)
    low_balance = models.BooleanField(default=True)
    low_balance_unit = models.CharField(max_length=10, choices=ThresholdUnit.choices, default=ThresholdUnit.PERCENT)
    low_balance_value = models.PositiveIntegerField(default=DEFAULT_LOW_BALANCE_PERCENT)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name_plural = "alert settings"
        constraints = [
            models.CheckConstraint(condition=Q(low_balance_unit__in=["percent", "tokens"]), name="alerts_unit_known"),
            models.CheckConstraint(
                condition=Q(low_balance_value__gte=1) & (Q(low_balance_unit="tokens") | Q(low_balance_value__lte=100)),
                name="alerts_threshold_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Alerts of {self.team}"

    def is_on(self, kind: str) -> bool:
        return {
            NotificationKind.EXPIRY_REMINDER: self.expiry_reminders,
            NotificationKind.LOW_BALANCE: self.low_balance,
        }.get(kind, True)

    def describe_threshold(self) -> str:
        if self.low_balance_unit == ThresholdUnit.PERCENT:
            return f"{self.low_balance_value}% of the tokens in active packs"
        return f"{self.low_balance_value} tokens"


class AlertOptOut(models.Model):
    """An admin who does not want one kind of the team's alerts. Admins receive every
    kind unless they opted out, so a new admin is told from the start."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user", "kind"], name="alertoptout_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} gets no {self.kind} alerts of {self.team}"
