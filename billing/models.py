"""Tokens and what happens to them: the rate sheet, packs, legacy cloud credits, the
append-only ledger, usage events with their stored outcomes, and the 24-hour windows.

Rows are written only by ``billing.services``. Invariants are in the database too:
CHECK constraints on amounts, unique constraints for idempotency.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Reseller, Team
from core.money import ZERO

# The order in which packs pay (domain.md "Token pack"): earliest expiry first; on equal
# expiry the smallest pack; then the oldest purchase (the id settles a tie).
PAY_ORDER = ("expires_at", "tokens", "purchased_at", "id")


def pay_order_key(pack: TokenPack) -> tuple:
    """``PAY_ORDER`` for packs already in memory."""
    return tuple(getattr(pack, "pk" if name == "id" else name) for name in PAY_ORDER)


class PackStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DEPLETED = "depleted", "Depleted"
    EXPIRED = "expired", "Expired"


def pack_status(*, expires_at: datetime, closed: bool, remaining: Decimal, at: datetime) -> str:
    """A pack is expired once its expiry has passed, whether or not the expiry job has
    closed it; otherwise depleted when it holds nothing; otherwise active."""
    if closed or expires_at <= at:
        return PackStatus.EXPIRED
    if remaining <= 0:
        return PackStatus.DEPLETED
    return PackStatus.ACTIVE


def pack_status_expression(*, at: datetime) -> models.Case:
    """``pack_status`` as a database expression, for filtering and sorting packs by status
    (the Flex tokens page). The same rule, word for word: keep the two together."""
    return models.Case(
        models.When(Q(expired_at__isnull=False) | Q(expires_at__lte=at), then=models.Value(PackStatus.EXPIRED)),
        models.When(remaining__lte=0, then=models.Value(PackStatus.DEPLETED)),
        default=models.Value(PackStatus.ACTIVE),
        output_field=models.CharField(max_length=20),
    )


def money_field(**kwargs) -> models.DecimalField:
    """Tokens and credits: decimals with two places, never floats."""
    return models.DecimalField(max_digits=14, decimal_places=2, **kwargs)


class ChargeType(models.TextChoices):
    DAILY = "daily", "Per day"
    PER_RESULT = "per_result", "Per result"
    FREE = "free", "Free with a token balance"


class Rate(models.Model):
    """One row of the rate sheet: a product or cloud service priced from a moment on.

    A rate change is a new row with a later ``effective_from``; usage is priced at the
    row in force when it happened.
    """

    code = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    charge_type = models.CharField(max_length=20, choices=ChargeType.choices)
    tokens = money_field(default=ZERO, help_text="Tokens per day, per result or per unit; 0 for free products.")
    unit = models.CharField(max_length=40, default="day", help_text="What one charge buys: day, simulation, hour…")
    cloud_credit_eligible = models.BooleanField(
        default=False, help_text="A pay-per-result cloud service that used to take cloud credits."
    )
    grace_minutes = models.PositiveIntegerField(default=5, help_text="Daily products: shorter sessions cost nothing.")
    effective_from = models.DateTimeField()
    illustrative = models.BooleanField(default=False, help_text="A plausible demo rate, not a published one.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["code", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["code", "effective_from"], name="rate_unique_code_effective_from"),
            models.CheckConstraint(condition=Q(tokens__gte=0), name="rate_tokens_not_negative"),
            models.CheckConstraint(
                condition=Q(charge_type__in=["daily", "per_result", "free"]), name="rate_charge_type_known"
            ),
            models.CheckConstraint(
                condition=Q(cloud_credit_eligible=False) | Q(charge_type="per_result"),
                name="rate_only_per_result_takes_credits",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code}) from {self.effective_from:%Y-%m-%d}"


class RateVariant(models.Model):
    """A priced variant of a per-result service (simple / moderate / complex …)."""

    rate = models.ForeignKey(Rate, on_delete=models.CASCADE, related_name="variants")
    code = models.SlugField(max_length=64)
    tokens = money_field()

    class Meta:
        ordering = ["rate", "tokens"]
        constraints = [
            models.UniqueConstraint(fields=["rate", "code"], name="ratevariant_unique_code"),
            models.CheckConstraint(condition=Q(tokens__gte=0), name="ratevariant_tokens_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.rate.code}/{self.code}: {self.tokens}"


class TokenPack(models.Model):
    """Tokens bought through a reseller; valid for ``FLEX_PACK_TERM_MONTHS`` from purchase."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="packs")
    reseller = models.ForeignKey(Reseller, on_delete=models.PROTECT, related_name="packs")
    reference = models.CharField(max_length=100, help_text="The reseller's order reference.")
    tokens = models.PositiveIntegerField()
    remaining = money_field()
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    purchased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    expired_at = models.DateTimeField(null=True, blank=True, help_text="When the expiry job closed it.")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.CharField(max_length=500, blank=True, help_text="The sales rep's note on the order (optional).")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = list(PAY_ORDER)
        constraints = [
            models.UniqueConstraint(fields=["reseller", "reference"], name="pack_unique_reference_per_reseller"),
            models.CheckConstraint(condition=Q(tokens__gt=0), name="pack_tokens_positive"),
            models.CheckConstraint(condition=Q(remaining__gte=0), name="pack_remaining_not_negative"),
            models.CheckConstraint(
                condition=Q(remaining__lte=models.F("tokens")), name="pack_remaining_at_most_tokens"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("purchased_at")), name="pack_expires_after_purchase"
            ),
        ]
        indexes = [models.Index(fields=["team", "expires_at"], name="pack_team_expiry")]

    def __str__(self) -> str:
        return f"{self.reference} ({self.tokens} tokens)"

    def status(self, now: datetime | None = None) -> str:
        return pack_status(
            expires_at=self.expires_at,
            closed=self.expired_at is not None,
            remaining=self.remaining,
            at=now or timezone.now(),
        )


class CloudCreditBalance(models.Model):
    """Legacy cloud credits: pay for eligible cloud services until the global cutoff."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="cloud_credits")
    credits = money_field()
    remaining = money_field()
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    expired_at = models.DateTimeField(null=True, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["expires_at", "granted_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(credits__gt=0), name="credits_positive"),
            models.CheckConstraint(condition=Q(remaining__gte=0), name="credits_remaining_not_negative"),
            models.CheckConstraint(condition=Q(remaining__lte=models.F("credits")), name="credits_remaining_at_most"),
        ]

    def __str__(self) -> str:
        return f"{self.credits} cloud credits for {self.team}"


class EventStatus(models.TextChoices):
    CHARGED = "charged", "Charged"
    NO_CHARGE = "no_charge", "No charge"
    DENIED = "denied", "Denied"


class UsageEvent(models.Model):
    """What a product reported, with its outcome stored so a retry replays it."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="usage_events")
    event_id = models.CharField(max_length=100, help_text="The client's id; the same id twice is charged once.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="usage_events")
    product = models.SlugField(max_length=64)
    variant = models.SlugField(max_length=64, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    quantity = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("1"))
    status = models.CharField(max_length=20, choices=EventStatus.choices)
    reason = models.CharField(max_length=40, blank=True)
    tokens = money_field(default=ZERO)
    cloud_credits = money_field(default=ZERO)
    refunded_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(help_text="The outcome as first returned; replayed for a duplicate id.")
    refund = models.JSONField(null=True, blank=True, help_text="The refund as first returned; replayed on retry.")
    received_at = models.DateTimeField(default=timezone.now)
    adjustments = models.JSONField(
        default=list,
        blank=True,
        help_text='Re-pricings since the first outcome (docs/charging.md, "Re-pricing"), oldest first.',
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "event_id"], name="usageevent_unique_id_per_team"),
            models.CheckConstraint(
                condition=Q(tokens__gte=0) & Q(cloud_credits__gte=0), name="usageevent_costs_not_negative"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="usageevent_quantity_positive"),
        ]
        indexes = [
            models.Index(fields=["team", "started_at"], name="usageevent_team_time"),
            models.Index(fields=["team", "status"], name="usageevent_team_status"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.product} {self.status}"


class PendingEvent(models.Model):
    """A single event waiting to be charged together with the others that arrived with it
    (group commit, ``billing.services.group_commit``). The request that leads charges every
    waiting event of the team in one ``log_usage`` batch, under the team's lock, and writes
    each one's ``result`` here in the same transaction; the request that queued the event
    reads its result and deletes the row. Not money: nothing here is charged twice, because
    a row with a result is never charged again."""

    # No foreign key in the database: inserting a row that references the team would take a
    # share lock on the team's row, and so wait for the leader holding the team's lock, which
    # is exactly when events must queue up.
    team = models.ForeignKey(Team, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    event = models.JSONField(help_text="The event as sent (its known fields, already checked for shape).")
    result = models.JSONField(null=True, blank=True, help_text="Its result, written by the leader that charged it.")
    queued_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.team_id}: {self.event.get('id')} {'answered' if self.result else 'waiting'}"


class Charge(models.Model):
    """One priced moment of an event: a 24-hour window of a daily product, or one job."""

    event = models.ForeignKey(UsageEvent, on_delete=models.PROTECT, related_name="charges")
    at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=EventStatus.choices)
    reason = models.CharField(max_length=40, blank=True)
    tokens = money_field(default=ZERO)
    cloud_credits = money_field(default=ZERO)
    superseded_at = models.DateTimeField(
        null=True, blank=True, help_text="When a re-pricing replaced it (its draws were given back)."
    )

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(tokens__gte=0) & Q(cloud_credits__gte=0), name="charge_costs_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} at {self.at:%Y-%m-%d %H:%M}: {self.status} {self.tokens}"


class UsageWindow(models.Model):
    """A paid 24-hour window of a daily product for one user (domain: "Per day")."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    product = models.SlugField(max_length=64)
    opened_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    charge = models.OneToOneField(Charge, on_delete=models.PROTECT, related_name="window")

    class Meta:
        ordering = ["opened_at"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user", "product", "opened_at"], name="window_unique_open"),
            models.CheckConstraint(
                condition=Q(closes_at__gt=models.F("opened_at")), name="window_closes_after_opening"
            ),
        ]
        indexes = [models.Index(fields=["team", "user", "product", "closes_at"], name="window_lookup")]

    def __str__(self) -> str:
        return f"{self.product} for user {self.user_id} from {self.opened_at:%Y-%m-%d %H:%M}"


class FlexAssignment(models.Model):
    """A user may spend the team's tokens: on every Flex product, or on a chosen list.

    History is kept: a change ends the current row (``removed_at``) and starts a new one,
    so usage is judged by the assignment in force when it happened.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="flex_assignments")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="flex_assignments")
    all_products = models.BooleanField(default=True, help_text="Every Flex product, new ones included.")
    products = models.JSONField(default=list, blank=True, help_text="Product codes, when not all products.")
    assigned_at = models.DateTimeField(default=timezone.now)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "accounts_flexassignment"  # created when assignments lived in accounts; rows kept
        ordering = ["team", "user", "-assigned_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "user"], condition=Q(removed_at__isnull=True), name="flexassignment_one_current"
            ),
        ]
        indexes = [models.Index(fields=["team", "user", "assigned_at"], name="flexassignment_lookup")]

    def __str__(self) -> str:
        scope = "all products" if self.all_products else ", ".join(self.products)
        return f"{self.user} in {self.team}: {scope}"

    def covers(self, product: str, moment) -> bool:
        in_force = self.assigned_at <= moment and (self.removed_at is None or moment < self.removed_at)
        return in_force and (self.all_products or product in self.products)


class UsageRollup(models.Model):
    """Report totals per team, day (in the team's time zone), product and user.

    Written only by ``billing.rollups``, in the same transaction as every charge and
    refund, so reports (``reporting.selectors``) never scan raw events.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="usage_rollups")
    day = models.DateField()
    product = models.SlugField(max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    tokens = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    cloud_credits = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    charges = models.PositiveIntegerField(default=0)
    denials = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "reporting_usagerollup"  # created when reporting owned it; rows kept
        ordering = ["team", "day", "product"]
        constraints = [
            models.UniqueConstraint(fields=["team", "day", "product", "user"], name="rollup_unique_group"),
            models.CheckConstraint(condition=Q(tokens__gte=0) & Q(cloud_credits__gte=0), name="rollup_not_negative"),
        ]
        indexes = [
            models.Index(fields=["team", "day"], name="rollup_team_day"),
            # Reports that cost the same whatever the team's history (reporting.selectors):
            # "data as of" (the latest updated_at), the product and person filters' choices
            # (the distinct values, a step at a time), a product's or a person's drill-down.
            models.Index(fields=["team", "updated_at"], name="rollup_team_updated"),
            models.Index(fields=["team", "product", "day"], name="rollup_team_product_day"),
            models.Index(fields=["team", "user", "day"], name="rollup_team_user_day"),
            # Denials per day and person: the few rows with a denial, not every row of the range.
            models.Index(fields=["team", "day"], condition=Q(denials__gt=0), name="rollup_team_day_denied"),
        ]

    def __str__(self) -> str:
        return f"{self.team} {self.day} {self.product} {self.user_id}: {self.tokens}"


class _SizedRollup(models.Model):
    """What every rollup sized to a question holds: the usage rollup's amounts summed over
    its grain. Written only by ``billing.rollups``, in the charge's transaction, from the
    changes it writes to ``UsageRollup``; ``check_ledger`` compares each with its sum."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    tokens = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    cloud_credits = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    charges = models.PositiveIntegerField(default=0)
    denials = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


class ProductDayRollup(_SizedRollup):
    """Per team, day and product (a few thousand rows a year): Summary, By Product, the charts
    and the by-day tables. ``users``: the people charged for the product that day."""

    day = models.DateField()
    product = models.SlugField(max_length=64)
    users = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "day", "product"], name="productday_unique_group"),
            models.CheckConstraint(
                condition=Q(tokens__gte=0) & Q(cloud_credits__gte=0), name="productday_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team} {self.day} {self.product}: {self.tokens}"


class DayRollup(models.Model):
    """Per team and day: the people charged that day, whatever the product (the by-day
    report's users; the amounts are ``ProductDayRollup``'s)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    users = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "day"], name="dayrollup_unique_group")]

    def __str__(self) -> str:
        return f"{self.team} {self.day}: {self.users} users"


class ProductUserMonthRollup(_SizedRollup):
    """Per team, month (its first day), product and person (a row per person and product
    used in a month): By User and the people counts over whole months. ``days``: the days
    the person was charged for the product in the month."""

    month = models.DateField()
    product = models.SlugField(max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    days = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "month", "product", "user"], name="productusermonth_unique_group"),
            models.CheckConstraint(
                condition=Q(tokens__gte=0) & Q(cloud_credits__gte=0), name="productusermonth_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team} {self.month:%Y-%m} {self.product} {self.user_id}: {self.tokens}"


class UserMonthRollup(models.Model):
    """Per team, month and person: the days the person was charged, whatever the product
    (By User's days used over whole months)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    month = models.DateField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    days = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "month", "user"], name="usermonth_unique_group")]

    def __str__(self) -> str:
        return f"{self.team} {self.month:%Y-%m} {self.user_id}: {self.days} days"


class EntryKind(models.TextChoices):
    PURCHASE = "purchase", "Purchase"
    GRANT = "grant", "Cloud credits granted"
    USAGE = "usage", "Usage"
    REFUND = "refund", "Refund"
    # Re-pricing (docs/charging.md, "Re-pricing"): a superseded charge's draw given back.
    REPRICE = "reprice", "Re-priced charge given back"
    EXPIRY = "expiry", "Expiry"
    # Late usage from before a pack's expiry reclaims that part of the expiry entry.
    EXPIRY_REVERSAL = "expiry_reversal", "Expiry reversed for late usage"
    MOVE_OUT = "move_out", "Moved to another team"
    MOVE_IN = "move_in", "Moved from another team"
    ADJUSTMENT = "adjustment", "Adjustment"


class LedgerQuerySet(models.QuerySet):
    """Ledger rows are never changed or removed by the app: corrections are new entries."""

    def update(self, **kwargs):
        raise TypeError("Ledger entries are append-only; write a correcting entry instead.")

    def delete(self):
        raise TypeError("Ledger entries are append-only; write a correcting entry instead.")


class LedgerEntry(models.Model):
    """An append-only movement of tokens on a pack, or of credits on a credit balance."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="ledger_entries")
    pack = models.ForeignKey(TokenPack, null=True, blank=True, on_delete=models.PROTECT, related_name="entries")
    credit_balance = models.ForeignKey(
        CloudCreditBalance, null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    kind = models.CharField(max_length=20, choices=EntryKind.choices)
    amount = money_field(help_text="Positive adds to the pack or balance, negative takes from it.")
    at = models.DateTimeField(help_text="When it took effect (the charge's time for usage).")
    event = models.ForeignKey(UsageEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="entries")
    charge = models.ForeignKey(Charge, null=True, blank=True, on_delete=models.PROTECT, related_name="entries")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = LedgerQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(
                condition=(Q(pack__isnull=False) & Q(credit_balance__isnull=True))
                | (Q(pack__isnull=True) & Q(credit_balance__isnull=False)),
                name="ledger_one_account",
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
        ]
        indexes = [
            models.Index(fields=["team", "at"], name="ledger_team_time"),
            models.Index(fields=["team", "kind", "at"], name="ledger_team_kind_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} on {self.pack or self.credit_balance}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not self._state.adding:
            raise TypeError("Ledger entries are append-only; write a correcting entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Ledger entries are append-only; write a correcting entry instead.")


class ExpiryReminder(models.Model):
    """A reminder that a pack's tokens expire within ``threshold`` days: claimed by
    inserting this row, so each pack is announced once per threshold (domain.md "Jobs").

    A run that comes late may find a pack past several thresholds at once: it claims them
    all but announces only the nearest (``announced`` is False for the others).
    """

    pack = models.ForeignKey(TokenPack, on_delete=models.CASCADE, related_name="reminders")
    threshold = models.PositiveSmallIntegerField(help_text="Days before expiry: 90, 30 or 7.")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", help_text="The team that was told.")
    announced = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pack", "-threshold"]
        constraints = [
            models.UniqueConstraint(fields=["pack", "threshold"], name="expiryreminder_once_per_threshold"),
        ]

    def __str__(self) -> str:
        return f"{self.pack}: {self.threshold} days"


class LowBalanceState(models.Model):
    """Whether a team is below its low-balance threshold: one row per team.

    The alert goes out on the change from not low to low, claimed with a conditional
    UPDATE (``is_low=False`` -> ``True``); it can only go out again after the balance
    recovered (``True`` -> ``False``).
    """

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="low_balance_state")
    is_low = models.BooleanField(default=False)
    available = money_field(default=ZERO, help_text="Tokens available when it last changed.")
    limit = money_field(default=ZERO, help_text="The threshold in tokens when it last changed.")
    crossed_at = models.DateTimeField(null=True, blank=True)
    recovered_at = models.DateTimeField(null=True, blank=True)
    alerts = models.PositiveIntegerField(default=0, help_text="How many crossings were announced.")

    def __str__(self) -> str:
        return f"{self.team}: {'low' if self.is_low else 'ok'}"


class LedgerCheckRun(models.Model):
    """The nightly ledger check, one row per day (UTC). Staff are alerted when the day's
    row turns from ok to failing, so a second run the same night alerts nobody twice."""

    day = models.DateField(unique=True)
    checked_at = models.DateTimeField()
    ok = models.BooleanField()
    violations = models.JSONField(default=list, blank=True, help_text="The first 100 violations.")
    violation_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"Ledger check {self.day}: {'ok' if self.ok else f'{self.violation_count} violations'}"
