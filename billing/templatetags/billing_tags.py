"""Billing's template tags. accounts' templates use them to show billing data (the home
page's balance card) without accounts importing billing: ``{% load billing_tags %}``."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils import timezone

from accounts.access import Perm
from accounts.models import Team
from billing.alerts import low_balance_check
from billing.selectors import next_expiry, team_balance
from core.money import tokens_text

register = template.Library()


@register.filter
def tokens(value: Decimal | int | None) -> str:
    """Tokens as people read them: ``{{ 1250|tokens }}`` is 1,250; 12.5 is 12.50."""
    return tokens_text(value or 0)


def donut_geometry(*, available: Decimal, purchased: Decimal) -> dict:
    """The donut's arcs, on a circle whose circumference is 100 (so lengths are percents)."""
    share = (available / purchased * 100) if purchased > 0 else Decimal(0)
    share = min(max(share, Decimal(0)), Decimal(100))
    return {
        # SVG attributes want a plain dot decimal, whatever the locale.
        "dash": f"{share:.2f} {100 - share:.2f}",
        "percent": f"{share:.0f}",
        "empty": purchased <= 0,
    }


@register.inclusion_tag("billing/_partials/donut.html")
def donut(available: Decimal, used: Decimal, purchased: Decimal, *, low: bool, small: bool = False) -> dict:
    """A donut of available vs used tokens of the active packs, red when the balance is low.
    Server-rendered SVG: the page shows the same numbers next to it."""
    return {
        **donut_geometry(available=available, purchased=purchased),
        "available": available,
        "used": used,
        "purchased": purchased,
        "low": low,
        "small": small,
    }


@register.inclusion_tag("billing/_partials/balance_card.html", takes_context=True)
def balance_card(context: template.Context, team: Team) -> dict:
    """The home page's balance card: available tokens, a small donut, the next expiry, a link
    to Billing & Orders. Shown only to a role that may see billing (``Perm.VIEW_BILLING``).
    Four queries (the balance, and the team's low-balance threshold)."""
    access = context.get("team_access")
    if access is None or access.team.pk != team.pk or not access.can(Perm.VIEW_BILLING):
        return {"show": False}
    balance = team_balance(team=team)
    check = low_balance_check(team=team, tokens=balance["tokens"])
    return {
        "show": True,
        "team": team,
        "balance": balance["tokens"],
        "low": check.is_low,
        "next_expiry": next_expiry(balance=balance),
        "as_of": timezone.now(),
    }
