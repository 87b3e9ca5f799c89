"""django-tables2 tables of the Flex tokens page and My usage: they only render; the rows
come from ``billing.selectors``."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import django_tables2 as tables
from django.utils.html import format_html

from billing.models import EntryKind, LedgerEntry, PackStatus, TokenPack
from billing.selectors import EXPIRING_SOON_DAYS
from core.money import tokens_text

STATUS_BADGES = {PackStatus.ACTIVE: "ok", PackStatus.DEPLETED: "muted", PackStatus.EXPIRED: "error"}


class TokensColumn(tables.Column):
    """Tokens as people read them (1,250 or 12.50), right-aligned."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("attrs", {"th": {"class": "num"}, "td": {"class": "num"}})
        super().__init__(*args, **kwargs)

    def render(self, value) -> str:
        return tokens_text(value)


def days_left(expires_at: datetime, now: datetime) -> int:
    """Whole days until the expiry, rounded up: a pack that expires later today has 1 day left."""
    seconds = (expires_at - now).total_seconds()
    return max(0, -int(-seconds // 86_400))


def expiring_soon(pack: TokenPack, now: datetime) -> bool:
    return pack.state == PackStatus.ACTIVE and pack.expires_at <= now + timedelta(days=EXPIRING_SOON_DAYS)


class PackTable(tables.Table):
    reference = tables.Column(verbose_name="Order reference")
    tokens = TokensColumn(verbose_name="Tokens")
    remaining = TokensColumn(verbose_name="Remaining")
    purchased_at = tables.DateColumn(verbose_name="Purchased", format="M j, Y")
    expires_at = tables.DateColumn(verbose_name="Expires", format="M j, Y")
    days_left = tables.Column(
        verbose_name="Days left",
        empty_values=(),
        order_by=("expires_at", "tokens", "purchased_at", "id"),
        attrs={"th": {"class": "num"}, "td": {"class": "num"}},
    )
    state = tables.Column(verbose_name="Status", order_by=("state", "expires_at", "id"))

    class Meta:
        model = TokenPack
        fields = ("reference", "tokens", "remaining", "purchased_at", "expires_at", "days_left", "state")
        # Active packs first, in the order they pay; then depleted, then expired ones.
        order_by = ("state",)
        attrs = {"class": "table table-billing"}
        empty_text = "No packs match this filter."

    def __init__(self, *args, now: datetime, **kwargs) -> None:
        self.now = now
        # Packs that expire within 90 days stand out (domain.md "Reports: Balances").
        kwargs.setdefault(
            "row_attrs", {"class": lambda record: "row-expiring" if expiring_soon(record, self.now) else ""}
        )
        super().__init__(*args, **kwargs)

    def render_days_left(self, record: TokenPack) -> str:
        if record.state == PackStatus.EXPIRED:
            return "—"
        days = days_left(record.expires_at, self.now)
        if expiring_soon(record, self.now):
            return format_html(
                '<span class="badge badge-soon">{}<span class="visually-hidden"> days: expiring soon</span></span>',
                days,
            )
        return str(days)

    def render_state(self, record: TokenPack) -> str:
        return format_html(
            '<span class="badge badge-{}">{}</span>', STATUS_BADGES[record.state], PackStatus(record.state).label
        )


EVENT_LABELS = {
    EntryKind.PURCHASE: "Purchased",
    EntryKind.EXPIRY: "Expired",
    EntryKind.MOVE_IN: "Moved in",
    EntryKind.MOVE_OUT: "Moved out",
    EntryKind.REFUND: "Refunded",
    EntryKind.ADJUSTMENT: "Adjustment",
}


class TokenEventTable(tables.Table):
    at = tables.DateTimeColumn(verbose_name="When", format="M j, Y H:i T")
    kind = tables.Column(verbose_name="Event")
    pack = tables.Column(verbose_name="Pack", accessor="pack__reference", order_by=("pack__reference", "-at"))
    amount = tables.Column(verbose_name="Tokens", attrs={"th": {"class": "num"}, "td": {"class": "num"}})
    details = tables.Column(verbose_name="Details", empty_values=(), orderable=False, attrs={"td": {"class": "wrap"}})

    class Meta:
        model = LedgerEntry
        fields = ("at", "kind", "pack", "amount", "details")
        attrs = {"class": "table table-billing"}
        empty_text = "No token events match this filter."

    def render_kind(self, record: LedgerEntry) -> str:
        return EVENT_LABELS.get(record.kind, record.get_kind_display())

    def render_amount(self, value: Decimal) -> str:
        # The sign says which way the tokens went; a true minus sign reads better than "-".
        sign = "+" if value > 0 else "\u2212"
        return format_html(
            '<span class="amount-{}">{}{}</span>', "in" if value > 0 else "out", sign, tokens_text(abs(value))
        )

    def render_details(self, record: LedgerEntry) -> str:
        if record.kind == EntryKind.REFUND and record.event is not None:
            return f"Job {record.event.event_id} refunded"
        if record.kind == EntryKind.PURCHASE:
            return f"Recorded by {record.actor.get_full_name()}" if record.actor else "Recorded by your reseller"
        if record.kind == EntryKind.MOVE_IN:
            return "From another team of your reseller"
        if record.kind == EntryKind.EXPIRY:
            return "Unused tokens expired with the pack"
        return record.note or "—"


class ProductUsageTable(tables.Table):
    """My usage: tokens per product."""

    name = tables.Column(verbose_name="Product")
    this_month = TokensColumn(verbose_name="This month")
    last_12_months = TokensColumn(verbose_name="Last 12 months")

    class Meta:
        attrs = {"class": "table table-billing"}
        orderable = False
        empty_text = "You have not used any Flex product in the last 12 months."


class MonthUsageTable(tables.Table):
    """My usage: tokens per month, the numbers of the chart beside it."""

    month = tables.DateColumn(verbose_name="Month", format="F Y")
    tokens = TokensColumn(verbose_name="Tokens")

    class Meta:
        attrs = {"class": "table table-compact table-billing"}
        orderable = False
