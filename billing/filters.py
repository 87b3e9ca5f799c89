"""django-filter FilterSets of billing's pages."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from accounts.models import Membership, Role
from billing.flex_selectors import FlexProduct, covering
from billing.models import LedgerEntry, PackStatus, TokenPack
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
