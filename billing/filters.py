"""django-filter FilterSets of billing's pages."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from accounts.models import Membership, Plan, Role, Team
from billing.customer_selectors import contract_ending, low_balance_ids, purchased_between
from billing.flex_selectors import FlexProduct, covering
from billing.models import LedgerEntry, PackStatus, TokenPack
from billing.selectors import EXPIRING_SOON_DAYS
from billing.tables import EVENT_LABELS

# --- User Management ------------------------------------------------------------------------------

FLEX_CHOICES = [
    ("assigned", "Assigned"),
    ("none", "Not assigned"),
    ("all", "All products"),
    ("list", "Chosen products"),
]
FLEX_LOOKUPS = {
    "assigned": Q(flex_all__isnull=False),
    "none": Q(flex_all__isnull=True),
    "all": Q(flex_all=True),
    "list": Q(flex_all=False),
}


class MemberFilter(django_filters.FilterSet):
    """By User: search, role, Flex (assigned or not, all products or a list) and the
    product a person may use. Works on ``billing.flex_selectors.member_flex_list``."""

    q = django_filters.CharFilter(method="search", label="Search name or e-mail")
    role = django_filters.ChoiceFilter(choices=Role.choices, empty_label="All roles")
    flex = django_filters.ChoiceFilter(choices=FLEX_CHOICES, empty_label="Any", label="Flex", method="by_flex")
    product = django_filters.ChoiceFilter(empty_label="Any product", label="May use", method="by_product")

    class Meta:
        model = Membership
        fields = ["q", "role", "flex", "product"]

    def __init__(self, *args, products: list[FlexProduct], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.filters["product"].extra["choices"] = [(p.code, p.name) for p in products]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        for word in value.split():
            queryset = queryset.filter(
                Q(user__email__icontains=word)
                | Q(user__first_name__icontains=word)
                | Q(user__last_name__icontains=word)
            )
        return queryset

    def by_flex(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(FLEX_LOOKUPS[value])

    def by_product(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return covering(queryset, value)


# --- Billing & Orders -----------------------------------------------------------------------------


class PackFilter(django_filters.FilterSet):
    # ``state`` is annotated by ``billing.selectors.pack_list`` (``pack_status`` in SQL).
    status = django_filters.ChoiceFilter(
        field_name="state", choices=PackStatus.choices, empty_label="All statuses", label="Status"
    )

    class Meta:
        model = TokenPack
        fields = ["status"]


class TokenEventFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=list(EVENT_LABELS.items()), empty_label="All events", label="Event")

    class Meta:
        model = LedgerEntry
        fields = ["kind"]


# --- Sales reps: Customers and Orders -------------------------------------------------------------


class CustomerFilter(django_filters.FilterSet):
    """Customers: search, plan, low balance, tokens expiring soon, contract ending soon. Works
    on ``billing.customer_selectors.customer_list`` (balances annotated)."""

    q = django_filters.CharFilter(method="search", label="Search")
    plan = django_filters.ChoiceFilter(choices=Plan.choices, empty_label="All plans")
    low = django_filters.BooleanFilter(method="by_low", label="Low balance only", widget=forms.CheckboxInput)
    expiring = django_filters.BooleanFilter(
        method="by_expiring", label=f"Tokens expiring within {EXPIRING_SOON_DAYS} days", widget=forms.CheckboxInput
    )
    contract_days = django_filters.NumberFilter(
        method="by_contract_end",
        label="Contract ends within (days)",
        min_value=0,
        max_value=3650,
        widget=forms.NumberInput(attrs={"min": 0, "max": 3650, "inputmode": "numeric", "class": "input-short"}),
    )

    class Meta:
        model = Team
        fields = ["q", "plan", "low", "expiring", "contract_days"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        for word in value.split():
            queryset = queryset.filter(Q(name__icontains=word) | Q(slug__icontains=word))
        return queryset

    def by_low(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        if not value:
            return queryset
        return queryset.filter(pk__in=low_balance_ids(customers=queryset))

    def by_expiring(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        return queryset.filter(expiring__gt=0) if value else queryset

    def by_contract_end(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset.filter(contract_ending(within_days=int(value)))


API = "api"  # the "recorded by" choice for purchases recorded with a reseller's API key


class OrderFilter(django_filters.FilterSet):
    """Orders: by customer, the days of purchase (each customer's days) and who recorded it."""

    customer = django_filters.ChoiceFilter(label="Customer", empty_label="All customers", method="by_customer")
    start = django_filters.DateFilter(
        label="Purchased from", method="by_days", widget=forms.DateInput(attrs={"type": "date"})
    )
    end = django_filters.DateFilter(label="to", method="by_days", widget=forms.DateInput(attrs={"type": "date"}))
    recorded_by = django_filters.ChoiceFilter(label="Recorded by", empty_label="Anybody", method="by_recorder")

    class Meta:
        model = LedgerEntry
        fields = ["customer", "start", "end", "recorded_by"]

    def __init__(self, *args, customers: list[Team], recorders: list, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.customers = customers
        self.filters["customer"].extra["choices"] = [(t.slug, t.name) for t in customers]
        self.filters["recorded_by"].extra["choices"] = [(API, "Through the API")] + [
            (str(u.pk), u.get_full_name() or u.email) for u in recorders
        ]

    def by_customer(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(team__slug=value)

    def by_days(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset  # both ends at once, in ``filter_queryset``

    def by_recorder(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(actor__isnull=True) if value == API else queryset.filter(actor_id=int(value))

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        data = self.form.cleaned_data
        zones = {t.time_zone for t in self.customers}
        return queryset.filter(purchased_between(start=data.get("start"), end=data.get("end"), time_zones=zones))
