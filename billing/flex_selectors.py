"""Reads of Flex assignments for User Management (By User, a person's page, By Product,
the bulk confirmation, the CSV export).

Kept apart from ``billing.selectors`` (balances, packs, the ledger check) by topic, as
the services are (``billing/services/assignments.py``). Every function costs a fixed
number of queries, whatever the number of members or assignments: the current assignment
is read with correlated subqueries on the unique "one current row per person" index, and
the By Product counts from one query.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateTimeField,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts.models import Membership, Team, User
from billing.models import ChargeType, FlexAssignment, Rate

# The rate sheet's charge types in the order the pages group products by.
CHARGE_TYPE_ORDER = [ChargeType.DAILY, ChargeType.PER_RESULT, ChargeType.FREE]
ALL_PRODUCTS = "All products"


@dataclass(frozen=True)
class FlexProduct:
    code: str
    name: str
    charge_type: str

    @property
    def charge_type_label(self) -> str:
        return ChargeType(self.charge_type).label


def flex_products(*, at: datetime | None = None) -> list[FlexProduct]:
    """Every product of the rate sheet in force (now by default), grouped by charge type,
    then by name: what a Flex assignment may name. One query."""
    at = at or timezone.now()
    current: dict[str, FlexProduct] = {}
    rows = Rate.objects.filter(effective_from__lte=at).order_by("code", "-effective_from")
    for code, name, charge_type in rows.values_list("code", "name", "charge_type"):
        current.setdefault(code, FlexProduct(code=code, name=name, charge_type=charge_type))
    rank = {value: n for n, value in enumerate(CHARGE_TYPE_ORDER)}
    return sorted(current.values(), key=lambda p: (rank.get(p.charge_type, 99), p.name.lower(), p.code))


def products_by_charge_type(products: list[FlexProduct]) -> list[tuple[str, list[FlexProduct]]]:
    """[(charge type label, products)] in the rate sheet's order, empty groups left out."""
    groups: dict[str, list[FlexProduct]] = {}
    for product in products:
        groups.setdefault(product.charge_type_label, []).append(product)
    return list(groups.items())


def describe_scope(all_products: bool | None, codes: list[str] | None, names: dict[str, str]) -> str:
    """What an assignment covers, as a person reads it: "All products", "AutoCAD; Revit",
    or "" for no assignment. A code no longer on the rate sheet is shown as it is."""
    if all_products is None:
        return ""
    if all_products:
        return ALL_PRODUCTS
    # A semicolon: product names may hold commas ("Cloud rendering, standard quality").
    return "; ".join(sorted((names.get(code, code) for code in codes or []), key=str.lower))


def describe_products(products: str | list[str], names: dict[str, str]) -> str:
    """``describe_scope`` for what ``assign_flex`` takes: "all" or a list of codes."""
    return describe_scope(products == "all", [] if products == "all" else list(products), names)


def scope_codes(codes_text: str | None) -> list[str]:
    """The codes of ``flex_codes`` (the JSON list as text, see ``member_flex_list``)."""
    return json.loads(codes_text) if codes_text else []


def _current_of_member() -> QuerySet[FlexAssignment]:
    return FlexAssignment.objects.filter(team=OuterRef("team"), user=OuterRef("user"), removed_at__isnull=True)


def member_flex_list(*, team: Team) -> QuerySet[Membership]:
    """The team's memberships (``accounts.selectors.member_list``) with their current Flex
    assignment: ``flex_all`` (True: all products, False: a list, None: no assignment),
    ``flex_codes`` (the list's codes as JSON text), ``flex_since``, and ``flex_rank`` for
    sorting (all products, then lists, then nobody). One query for any number of members.
    """
    current = _current_of_member()
    return (
        account_selectors.member_list(team=team)
        .annotate(
            flex_all=Subquery(current.values("all_products")[:1], output_field=BooleanField()),
            # JSON as text: the same on SQLite and PostgreSQL (``covering`` below relies on it).
            flex_codes=Subquery(
                current.annotate(codes=Cast("products", TextField())).values("codes")[:1], output_field=TextField()
            ),
            flex_since=Subquery(current.values("assigned_at")[:1], output_field=DateTimeField()),
        )
        .annotate(
            flex_rank=Case(
                When(flex_all=True, then=Value(0)),
                When(flex_all=False, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
    )


def covering(memberships: QuerySet[Membership], code: str) -> QuerySet[Membership]:
    """The memberships whose current assignment covers the product: all products, or a
    list naming it. JSON containment is not portable (SQLite has none), so the list is
    matched as text: codes are slugs, so ``"code"`` with its quotes matches exactly one
    element, in SQLite's and PostgreSQL's rendering of the JSON alike."""
    listed = Cast("products", TextField())
    covers = (
        _current_of_member().annotate(codes=listed).filter(Q(all_products=True) | Q(codes__contains=json.dumps(code)))
    )
    return memberships.filter(Exists(covers))


def flex_history(*, team: Team, user: User) -> QuerySet[FlexAssignment]:
    """Every assignment the person ever had in the team, newest first, with who made and ended it."""
    return (
        FlexAssignment.objects.filter(team=team, user=user)
        .select_related("assigned_by", "removed_by")
        .order_by("-assigned_at", "-id")
    )


def current_flex(*, team: Team, user: User) -> FlexAssignment | None:
    return (
        FlexAssignment.objects.filter(team=team, user=user, removed_at__isnull=True)
        .select_related("assigned_by")
        .first()
    )


@dataclass(frozen=True)
class ProductCount:
    product: FlexProduct
    direct: int  # people whose list names the product
    through_all: int  # people assigned all products

    @property
    def total(self) -> int:
        return self.direct + self.through_all


def flex_product_counts(*, team: Team, products: list[FlexProduct]) -> list[ProductCount]:
    """Per product, how many of the team's members may use it: directly (their list names
    it) or through "all products". One query (the current assignments of members)."""
    rows = FlexAssignment.objects.filter(team=team, removed_at__isnull=True, user__memberships__team=team).values_list(
        "all_products", "products"
    )
    through_all = 0
    direct: Counter[str] = Counter()
    for all_products, codes in rows:
        if all_products:
            through_all += 1
        else:
            direct.update(set(codes))
    return [ProductCount(product=p, direct=direct[p.code], through_all=through_all) for p in products]


def flex_totals(*, team: Team) -> dict[str, int]:
    """How many members the team has, how many of them have Flex, and how many all products."""
    return member_flex_list(team=team).aggregate(
        members=Count("pk"),
        assigned=Count("pk", filter=Q(flex_all__isnull=False)),
        all_products=Count("pk", filter=Q(flex_all=True)),
    )
