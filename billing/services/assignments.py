"""Flex assignments: who may spend the team's tokens, on which products (domain.md
"Flex assignment"). The charging engine reads them as they were at each event's time."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.audit import write_audit_event
from accounts.models import Membership, Team, User
from accounts.services import lock_team
from billing.models import FlexAssignment, Rate


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
    lock_team(team)
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
    lock_team(team)
    current = FlexAssignment.objects.select_for_update().filter(team=team, user=user, removed_at__isnull=True).first()
    if current is None:
        return None
    current.removed_at, current.removed_by = at, actor
    current.save(update_fields=["removed_at", "removed_by"])
    write_audit_event(action="flex.removed", actor=actor, team=team, target=user)
    return current
