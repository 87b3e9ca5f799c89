"""Flex assignments: who may spend the team's tokens, on which products (domain.md
"Flex assignment"). The charging engine reads them as they were at each event's time.

One person (``assign_flex``, ``remove_flex``) or many at once (``bulk_assign_flex``,
``bulk_remove_flex``, all or nothing); both go through ``_set_flex`` and ``_end_flex``, so
the rules (members only, known products, history kept, one audit event per person) have
one owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.audit import write_audit_event, write_audit_events
from accounts.models import Membership, Team, User
from accounts.services import lock_team
from billing.models import FlexAssignment, Rate

Products = str | Sequence[str]


def _scope(products: Products) -> tuple[bool, list[str]]:
    """(all products?, sorted codes) for "all" or a non-empty list of known product codes."""
    if products == "all":
        return True, []
    if isinstance(products, list | tuple) and products and all(isinstance(p, str) for p in products):
        codes = sorted(set(products))
        unknown = sorted(set(codes) - set(Rate.objects.filter(code__in=codes).values_list("code", flat=True)))
        if unknown:
            raise ValidationError({"products": f"Unknown product code(s): {', '.join(unknown)}."})
        return False, codes
    raise ValidationError({"products": "Give “all” or a non-empty list of product codes."})


def _details(all_products: bool, codes: list[str]) -> dict:
    return {"products": "all" if all_products else codes}


def _refuse_non_members(team: Team, users: Sequence[User]) -> None:
    """All or nothing: one person who is not a member of the team refuses the whole batch.
    The message does not name them (they may belong to another team)."""
    ids = {user.pk for user in users}
    members = set(Membership.objects.filter(team=team, user_id__in=ids).values_list("user_id", flat=True))
    outsiders = len(ids - members)
    if outsiders:
        who = "1 selected person is" if outsiders == 1 else f"{outsiders} selected people are"
        raise ValidationError({"users": f"Nothing was changed: {who} not a member of {team}."})


def _current(team: Team, users: Sequence[User]) -> dict[int, FlexAssignment]:
    rows = FlexAssignment.objects.select_for_update().filter(
        team=team, user_id__in=[user.pk for user in users], removed_at__isnull=True
    )
    return {row.user_id: row for row in rows}


def _end(rows: list[FlexAssignment], *, at: datetime, actor: User | None) -> None:
    for row in rows:
        row.removed_at, row.removed_by = at, actor
    if rows:
        FlexAssignment.objects.filter(pk__in=[row.pk for row in rows]).update(removed_at=at, removed_by=actor)


def _set_flex(
    *, team: Team, users: Sequence[User], products: Products, actor: User | None, at: datetime
) -> list[FlexAssignment]:
    """Give every user in ``users`` the assignment ``products``; returns the new rows (a user
    who already has exactly that keeps it, unchanged and not audited)."""
    all_products, codes = _scope(products)
    lock_team(team)
    current = _current(team, users)
    changing = [
        user
        for user in users
        if not (
            (row := current.get(user.pk)) is not None
            and row.all_products == all_products
            and sorted(row.products) == codes
        )
    ]
    # End the current rows first: at most one current assignment per person (a constraint).
    _end([current[user.pk] for user in changing if user.pk in current], at=at, actor=actor)
    created = FlexAssignment.objects.bulk_create(
        [
            FlexAssignment(
                team=team, user=user, all_products=all_products, products=codes, assigned_at=at, assigned_by=actor
            )
            for user in changing
        ]
    )
    write_audit_events(
        action="flex.assigned",
        actor=actor,
        team=team,
        targets=[(user, _details(all_products, codes)) for user in changing],
    )
    return created


@transaction.atomic
def assign_flex(
    *,
    team: Team,
    user: User,
    products: Products = "all",
    actor: User | None,
    at: datetime | None = None,
) -> FlexAssignment:
    """Let a member spend the team's tokens: on every product ("all") or on a list of codes.

    A change ends the current assignment and starts a new one, so the history shows who
    could spend what, and when.
    """
    at = at or timezone.now()
    if not Membership.objects.filter(team=team, user=user).exists():
        raise ValidationError({"user": f"{user.email} is not a member of {team}."})
    created = _set_flex(team=team, users=[user], products=products, actor=actor, at=at)
    if created:
        return created[0]
    return FlexAssignment.objects.get(team=team, user=user, removed_at__isnull=True)


@transaction.atomic
def remove_flex(*, team: Team, user: User, actor: User | None, at: datetime | None = None) -> FlexAssignment | None:
    """End a member's Flex assignment; returns the ended row (None if there was none)."""
    at = at or timezone.now()
    lock_team(team)
    current = _current(team, [user]).get(user.pk)
    if current is None:
        return None
    _end([current], at=at, actor=actor)
    write_audit_event(action="flex.removed", actor=actor, team=team, target=user)
    return current


@transaction.atomic
def bulk_assign_flex(
    *,
    team: Team,
    users: Sequence[User],
    products: Products,
    actor: User | None,
    at: datetime | None = None,
) -> list[FlexAssignment]:
    """Give many members the same assignment, all or nothing (portal.md "Bulk").

    Refuses the whole batch when anybody in it is not a member of the team or a product
    code is unknown. People who already have exactly this assignment keep it; everybody
    else gets a new one and one audit event each. Returns the new assignments. A fixed
    number of queries, whatever the number of people.
    """
    at = at or timezone.now()
    users = _distinct(users)
    _refuse_non_members(team, users)
    return _set_flex(team=team, users=users, products=products, actor=actor, at=at)


@transaction.atomic
def bulk_remove_flex(
    *, team: Team, users: Sequence[User], actor: User | None, at: datetime | None = None
) -> list[FlexAssignment]:
    """End the Flex assignment of many members, all or nothing; returns the ended rows
    (people without one are left as they are). One audit event per person whose
    assignment ended; a fixed number of queries."""
    at = at or timezone.now()
    users = _distinct(users)
    _refuse_non_members(team, users)
    lock_team(team)
    current = _current(team, users)
    ended = [current[user.pk] for user in users if user.pk in current]
    _end(ended, at=at, actor=actor)
    by_id = {user.pk: user for user in users}
    write_audit_events(
        action="flex.removed", actor=actor, team=team, targets=[(by_id[row.user_id], None) for row in ended]
    )
    return ended


def _distinct(users: Sequence[User]) -> list[User]:
    if not users:
        raise ValidationError({"users": "Select at least one person."})
    return list({user.pk: user for user in users}.values())
