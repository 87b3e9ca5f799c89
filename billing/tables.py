"""django-tables2 tables of billing's pages. They only render: the rows come from selectors."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import django_tables2 as tables
from django.db.models import F, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html

from accounts.models import Membership, Team
from accounts.tables import member_status
from billing.customer_selectors import customer_balance_check
from billing.flex_selectors import describe_scope, scope_codes
from billing.models import EntryKind, FlexAssignment, LedgerEntry, PackStatus, TokenPack
from billing.selectors import EXPIRING_SOON_DAYS
from core.money import tokens_text

# --- User Management ------------------------------------------------------------------------------

NO_FLEX = "None"


def _flex_cell(all_products: bool | None, codes: list[str], names: dict[str, str]) -> str:
    if all_products is None:
        return format_html('<span class="muted">{}</span>', NO_FLEX)
    if all_products:
        return format_html('<span class="badge badge-info">{}</span>', describe_scope(True, [], names))
    return describe_scope(False, codes, names)


class MemberTable(tables.Table):
    """By User: the team's people with their role, sign-in state and Flex assignment.

    Rows come from ``billing.flex_selectors.member_flex_list``. The first column's boxes
    belong to the bulk form around the table; the CSV export leaves that column out and
    writes the same values as the page shows (``value_*``)."""

    select = tables.Column(
        accessor="pk",
        orderable=False,
        exclude_from_export=True,
        verbose_name=format_html(
            '<input type="checkbox" class="select-page" data-select-all="member" aria-label="{}" hidden>',
            "Select every user on this page",
        ),
        attrs={"th": {"class": "col-select"}, "td": {"class": "col-select"}},
    )
    name = tables.Column(
        accessor="user__first_name", verbose_name="Name", order_by=("user__first_name", "user__last_name")
    )
    email = tables.Column(
        accessor="user__email",
        verbose_name="E-mail",
        attrs={"th": {"class": "col-email"}, "td": {"class": "col-email"}},
    )
    role = tables.Column(order_by=("role_rank", "user__first_name"))
    status = tables.Column(empty_values=(), orderable=False)
    flex = tables.Column(
        accessor="flex_all",
        verbose_name="Flex",
        empty_values=(),
        order_by=("flex_rank", "flex_codes", "user__first_name"),
        attrs={"td": {"class": "col-flex"}},
    )
    created_at = tables.DateColumn(
        verbose_name="Added", format="M j, Y", attrs={"th": {"class": "col-added"}, "td": {"class": "col-added"}}
    )

    class Meta:
        model = Membership
        fields = ("select", "name", "email", "flex", "role", "status", "created_at")
        order_by = ("name",)
        attrs = {"class": "table table-members table-stack"}
        empty_text = "No users match these filters. Clear the filters, or invite somebody."

    def __init__(self, *args, team_slug: str, product_names: dict[str, str], **kwargs) -> None:
        self.team_slug = team_slug
        self.product_names = product_names
        super().__init__(*args, **kwargs)

    def render_select(self, record: Membership) -> str:
        return format_html(
            '<input type="checkbox" name="member" value="{}" class="row-select" aria-label="Select {}">',
            record.pk,
            record.display_name,
        )

    def render_name(self, record: Membership) -> str:
        # The e-mail again under the name, shown only where the e-mail column is hidden (a phone).
        url = reverse("billing:member-detail", args=[self.team_slug, record.pk])
        return format_html(
            '<a href="{}">{}</a><span class="cell-sub">{}</span>',
            url,
            record.display_name,
            record.user.email,
        )

    def value_name(self, record: Membership) -> str:
        return record.display_name

    def render_status(self, record: Membership) -> str:
        return format_html('<span class="badge badge-{}">{}</span>', *member_status(record))

    def value_status(self, record: Membership) -> str:
        return member_status(record)[1]

    def value_role(self, record: Membership) -> str:
        return record.get_role_display()

    def render_flex(self, record: Membership) -> str:
        return _flex_cell(record.flex_all, scope_codes(record.flex_codes), self.product_names)

    def value_flex(self, record: Membership) -> str:
        return describe_scope(record.flex_all, scope_codes(record.flex_codes), self.product_names) or NO_FLEX

    def value_created_at(self, record: Membership) -> str:
        return record.created_at.date().isoformat()


class FlexHistoryTable(tables.Table):
    """A person's assignments, newest first: what, from, to, and by whom."""

    scope = tables.Column(accessor="all_products", verbose_name="Scope", orderable=False, empty_values=())
    assigned_at = tables.DateTimeColumn(verbose_name="From", format="M j, Y H:i T", orderable=False)
    assigned_by = tables.Column(verbose_name="Assigned by", orderable=False, default="—")
    removed_at = tables.DateTimeColumn(
        verbose_name="To",
        format="M j, Y H:i T",
        orderable=False,
        default=format_html('<span class="badge badge-ok">{}</span>', "In force"),
    )
    removed_by = tables.Column(verbose_name="Ended by", orderable=False, default="—")

    class Meta:
        model = FlexAssignment
        fields = ("scope", "assigned_at", "assigned_by", "removed_at", "removed_by")
        attrs = {"class": "table table-compact"}
        empty_text = "No Flex assignment yet: this person has never been able to spend tokens."

    def __init__(self, *args, product_names: dict[str, str], **kwargs) -> None:
        self.product_names = product_names
        super().__init__(*args, **kwargs)

    def render_scope(self, record: FlexAssignment) -> str:
        return describe_scope(record.all_products, record.products, self.product_names)

    def render_assigned_by(self, value) -> str:
        return value.get_full_name() or value.email

    def render_removed_by(self, value) -> str:
        return value.get_full_name() or value.email


class BulkChangeTable(tables.Table):
    """The bulk confirmation: every selected person, what they have and what they will have."""

    name = tables.Column(verbose_name="Name", orderable=False)
    email = tables.Column(
        verbose_name="E-mail", orderable=False, attrs={"th": {"class": "col-email"}, "td": {"class": "col-email"}}
    )
    now = tables.Column(verbose_name="Now", orderable=False)
    after = tables.Column(verbose_name="After", orderable=False)
    change = tables.Column(verbose_name="Change", orderable=False, accessor="changes", empty_values=())

    class Meta:
        attrs = {"class": "table table-compact table-stack"}
        row_attrs = {"class": lambda record: "" if record["changes"] else "row-same"}

    def render_name(self, record: dict) -> str:
        return format_html('{}<span class="cell-sub">{}</span>', record["name"], record["email"])

    def render_change(self, value: bool) -> str:
        if value:
            return format_html('<span class="badge badge-warn">{}</span>', "Changes")
        return format_html('<span class="badge badge-muted">{}</span>', "No change")


class ProductCountTable(tables.Table):
    """By Product: each Flex product and how many people may use it (in the rate sheet's
    order, charge type then name, until a column is sorted)."""

    name = tables.Column(accessor="product__name", verbose_name="Product")
    charge_type = tables.Column(
        accessor="product__charge_type_label",
        verbose_name="Charged",
        orderable=False,
        attrs={"th": {"class": "col-phone-hide"}, "td": {"class": "col-phone-hide"}},
    )
    total = tables.Column(verbose_name="Users")
    direct = tables.Column(verbose_name="Assigned directly")
    through_all = tables.Column(verbose_name="Through “All products”")

    class Meta:
        attrs = {"class": "table"}
        empty_text = "The rate sheet has no products in force yet."

    def __init__(self, *args, team_slug: str, **kwargs) -> None:
        self.team_slug = team_slug
        super().__init__(*args, **kwargs)

    def render_name(self, record) -> str:
        url = reverse("billing:flex-product", args=[self.team_slug, record.product.code])
        product = record.product
        return format_html('<a href="{}">{}</a><code class="code-sub">{}</code>', url, product.name, product.code)


class ProductMemberTable(tables.Table):
    """One product: the people who may use it, and whether directly or through all products."""

    name = tables.Column(
        accessor="user__first_name", verbose_name="Name", order_by=("user__first_name", "user__last_name")
    )
    email = tables.Column(
        accessor="user__email",
        verbose_name="E-mail",
        attrs={"th": {"class": "col-email"}, "td": {"class": "col-email"}},
    )
    role = tables.Column(order_by=("role_rank", "user__first_name"))
    through = tables.Column(accessor="flex_all", verbose_name="Through", order_by=("flex_rank", "user__first_name"))
    flex_since = tables.DateTimeColumn(verbose_name="Since", format="M j, Y")

    class Meta:
        model = Membership
        fields = ("name", "email", "role", "through", "flex_since")
        order_by = ("name",)
        attrs = {"class": "table table-stack"}
        empty_text = "Nobody may use this product yet. Assign Flex from By User or from a person's page."

    def __init__(self, *args, team_slug: str, **kwargs) -> None:
        self.team_slug = team_slug
        super().__init__(*args, **kwargs)

    def render_name(self, record: Membership) -> str:
        url = reverse("billing:member-detail", args=[self.team_slug, record.pk])
        return format_html(
            '<a href="{}">{}</a><span class="cell-sub">{}</span>', url, record.display_name, record.user.email
        )

    def render_through(self, value: bool) -> str:
        if value:
            return format_html('<span class="badge badge-info">{}</span>', "All products")
        return "Their list of products"


# --- Billing & Orders -----------------------------------------------------------------------------

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
        # Each row has an id, so that a page can link to one pack (``#pack-<id>``).
        kwargs.setdefault(
            "row_attrs",
            {
                "class": lambda record: "row-expiring" if expiring_soon(record, self.now) else "",
                "id": lambda record: f"pack-{record.pk}",
            },
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
    EntryKind.EXPIRY_REVERSAL: "Expiry reversed",
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
        if record.kind == EntryKind.EXPIRY and not record.note.endswith("(re-priced)"):
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


# --- Sales reps: Customers and Orders -------------------------------------------------------------


def _local_date(value: datetime | None, tz) -> str:
    """A moment as the day it was for the customer (its time zone), ISO for exports."""
    return timezone.localtime(value, tz).date().isoformat() if value else ""


class CustomerTable(tables.Table):
    """Customers: each team the rep's resellers serve, with its balance. Rows come from
    ``billing.customer_selectors.customer_list``; the low-balance flag is the alert's rule
    (``customer_balance_check``). The CSV export writes each column's ``value_*``."""

    name = tables.Column(verbose_name="Customer")
    plan = tables.Column()
    reseller = tables.Column(accessor="reseller__name", verbose_name="Reseller")
    contract_end = tables.DateColumn(verbose_name="Contract ends", format="M j, Y")
    available = TokensColumn(verbose_name="Available")
    expiring = TokensColumn(verbose_name=f"Expiring within {EXPIRING_SOON_DAYS} days")
    last_purchase_at = tables.Column(verbose_name="Last purchase", default="—")
    low = tables.Column(verbose_name="Balance", empty_values=(), orderable=False)

    class Meta:
        model = Team
        fields = ("name", "plan", "reseller", "contract_end", "available", "expiring", "last_purchase_at", "low")
        attrs = {"class": "table table-billing table-customers"}
        row_attrs = {"class": lambda record: "row-low" if customer_balance_check(record).is_low else ""}
        empty_text = "No customer matches these filters."

    def render_name(self, record: Team) -> str:
        url = reverse("billing:customer-detail", args=[record.slug])
        return format_html('<a href="{}">{}</a>', url, record.name)

    def value_name(self, record: Team) -> str:
        return record.name

    def render_plan(self, record: Team) -> str:
        return format_html('<span class="plan plan-{}">{}</span>', record.plan, record.get_plan_display())

    def value_plan(self, record: Team) -> str:
        return record.get_plan_display()

    def value_contract_end(self, record: Team) -> str:
        return record.contract_end.isoformat()

    def value_available(self, record: Team) -> str:
        return f"{record.available:.2f}"

    def render_expiring(self, value: Decimal) -> str:
        if value > 0:
            return format_html('<span class="badge badge-soon">{}</span>', tokens_text(value))
        return "0"

    def value_expiring(self, record: Team) -> str:
        return f"{record.expiring:.2f}"

    def render_last_purchase_at(self, value: datetime, record: Team) -> str:
        return date_format(timezone.localtime(value, record.tz), "M j, Y")

    def value_last_purchase_at(self, record: Team) -> str:
        return _local_date(record.last_purchase_at, record.tz)

    def order_last_purchase_at(self, queryset: QuerySet, is_descending: bool) -> tuple[QuerySet, bool]:
        """A customer who never bought sorts as the oldest purchase, on every database
        (SQLite puts NULL first in ascending order, PostgreSQL last)."""
        last = F("last_purchase_at")
        order = last.desc(nulls_last=True) if is_descending else last.asc(nulls_first=True)
        return queryset.order_by(order, "name"), True

    def render_low(self, record: Team) -> str:
        check = customer_balance_check(record)
        if check.is_low:
            return format_html(
                '<span class="badge badge-error">{}</span>', "No tokens" if check.available <= 0 else "Low"
            )
        return format_html('<span class="badge badge-ok">{}</span>', "OK")

    def value_low(self, record: Team) -> str:
        check = customer_balance_check(record)
        return ("no tokens" if check.available <= 0 else "low") if check.is_low else "ok"


class OrderTable(tables.Table):
    """Orders: purchases recorded for the rep's customers (purchase entries of the ledger,
    ``billing.customer_selectors.order_list``), each dated in its customer's time zone."""

    at = tables.Column(verbose_name="Purchased", order_by=("at", "id"))
    team = tables.Column(verbose_name="Customer", accessor="team__name", order_by=("team__name", "-at"))
    reference = tables.Column(verbose_name="Order reference", accessor="pack__reference")
    tokens = TokensColumn(verbose_name="Tokens", accessor="pack__tokens")
    price = tables.Column(verbose_name="Price", accessor="pack__price", default="—", attrs={"td": {"class": "num"}})
    expires_at = tables.Column(verbose_name="Expires", accessor="pack__expires_at")
    held_by = tables.Column(verbose_name="Held by", empty_values=(), orderable=False)
    actor = tables.Column(verbose_name="Recorded by", empty_values=(), order_by=("actor__first_name", "-at"))
    note = tables.Column(verbose_name="Note", accessor="pack__note", default="", orderable=False)

    class Meta:
        model = LedgerEntry
        fields = ("at", "team", "reference", "tokens", "price", "expires_at", "held_by", "actor", "note")
        attrs = {"class": "table table-billing table-orders"}
        empty_text = "No purchases match these filters."

    def render_at(self, record: LedgerEntry) -> str:
        return date_format(timezone.localtime(record.at, record.team.tz), "M j, Y H:i T")

    def value_at(self, record: LedgerEntry) -> str:
        return timezone.localtime(record.at, record.team.tz).isoformat()

    def render_team(self, record: LedgerEntry) -> str:
        url = reverse("billing:customer-detail", args=[record.team.slug])
        return format_html('<a href="{}">{}</a>', url, record.team.name)

    def value_team(self, record: LedgerEntry) -> str:
        return record.team.name

    def render_reference(self, record: LedgerEntry) -> str:
        owner = record.pack.team
        url = reverse("billing:customer-detail", args=[owner.slug]) + f"#pack-{record.pack_id}"
        return format_html('<a href="{}">{}</a>', url, record.pack.reference)

    def value_reference(self, record: LedgerEntry) -> str:
        return record.pack.reference

    def value_tokens(self, record: LedgerEntry) -> int:
        return record.pack.tokens

    def render_price(self, record: LedgerEntry) -> str:
        return f"{record.pack.price} {record.pack.currency}".strip()

    def value_price(self, record: LedgerEntry) -> str:
        return "" if record.pack.price is None else f"{record.pack.price} {record.pack.currency}".strip()

    def render_expires_at(self, record: LedgerEntry) -> str:
        return date_format(timezone.localtime(record.pack.expires_at, record.team.tz), "M j, Y")

    def value_expires_at(self, record: LedgerEntry) -> str:
        return _local_date(record.pack.expires_at, record.team.tz)

    def render_held_by(self, record: LedgerEntry) -> str:
        if record.pack.team_id == record.team_id:
            return format_html('<span class="muted">{}</span>', "The buyer")
        return format_html("Moved to {}", record.pack.team.name)

    def value_held_by(self, record: LedgerEntry) -> str:
        return record.pack.team.name

    def render_actor(self, record: LedgerEntry) -> str:
        return record.actor.get_full_name() or record.actor.email if record.actor else "Through the API"

    def value_actor(self, record: LedgerEntry) -> str:
        return self.render_actor(record)


# --- Sales reps: the purchase planner -------------------------------------------------------------


def _long_day(value: date) -> str:
    return date_format(value, "M j, Y")


class ProposalTable(tables.Table):
    """The planner's proposals (``billing.planner.Proposal``), each with a link that opens
    Record a purchase pre-filled with its tokens."""

    # Each cell names its column (``data-label``): on a phone the rows stack as cards.
    buy_on = tables.Column(verbose_name="Buy on", attrs={"td": {"data-label": "Buy on"}})
    tokens = TokensColumn(
        verbose_name="Tokens", attrs={"th": {"class": "num"}, "td": {"class": "num", "data-label": "Tokens"}}
    )
    expires_on = tables.Column(verbose_name="Expires", attrs={"td": {"data-label": "Expires"}})
    why = tables.Column(verbose_name="Why", attrs={"td": {"class": "col-why", "data-label": "Why"}})
    record = tables.Column(verbose_name="", empty_values=(), attrs={"td": {"class": "col-action"}})

    class Meta:
        attrs = {"class": "table table-billing table-proposals"}
        orderable = False
        empty_text = "Nothing to buy."

    def __init__(self, *args, team, today, **kwargs) -> None:
        self.team, self.today = team, today
        super().__init__(*args, **kwargs)

    def render_buy_on(self, value) -> str:
        if value <= self.today:
            return format_html('{} <span class="badge badge-warn">{}</span>', _long_day(value), "now")
        return _long_day(value)

    def render_expires_on(self, value) -> str:
        return _long_day(value)

    def render_record(self, record) -> str:
        query = urlencode(
            {"tokens": record.tokens, "note": f"Proposed by the purchase planner on {_long_day(self.today)}."}
        )
        url = reverse("billing:customer-purchase", args=[self.team.slug]) + f"?{query}"
        label = "Record this purchase" if record.buy_on <= self.today else "Pre-fill this purchase"
        return format_html(
            '<a class="button button-small{}" href="{}">{}<span class="visually-hidden"> of {} tokens</span></a>',
            " button-primary" if record.buy_on <= self.today else "",
            url,
            label,
            f"{record.tokens:,}",
        )


class ProjectionTable(tables.Table):
    """The projection's numbers (the chart's): the balance at the end of each day shown,
    without and with the plan (rows of ``billing.plan_chart.projection_rows``)."""

    day = tables.Column(verbose_name="Day")
    without = TokensColumn(verbose_name="Without the plan")
    with_plan = TokensColumn(verbose_name="With the plan")
    event = tables.Column(verbose_name="What happens", default="")

    class Meta:
        attrs = {"class": "table table-compact table-billing table-projection"}
        orderable = False
        empty_text = "Nothing to project."

    def render_day(self, value) -> str:
        return _long_day(value)
