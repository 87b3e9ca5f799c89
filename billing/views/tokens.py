"""Billing & Orders > Flex tokens, and My usage: read-only pages (no POST), each a few
selectors rendered. Access through ``accounts.access.team_view``, like every team page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe
from django_tables2 import RequestConfig

from accounts.access import Perm, TeamAccess, team_view
from billing import selectors
from billing.alerts import low_balance_check
from billing.filters import PackFilter, TokenEventFilter
from billing.tables import MonthUsageTable, PackTable, ProductUsageTable, TokenEventTable

PER_PAGE = 25
PACKS, EVENTS = "packs-", "events-"


def _crumbs(access: TeamAccess, *trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [(access.team.name, reverse("accounts:team-home", args=[access.team.slug])), *trail]


def _kept(query: QueryDict, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """The query parameters of the *other* table on the page, carried as hidden fields by a
    filter form so that filtering one table keeps the other as it was."""
    return [(name, query[name]) for name in names if query.get(name)]


def query_without(query: QueryDict, *names: str) -> str:
    """The query string without ``names`` (a filter's Clear link, an export's link)."""
    rest = query.copy()
    for name in names:
        rest.pop(name, None)
    return rest.urlencode()


def balance_cards(*, team, balance: dict, now) -> dict:
    """The context of ``billing/_partials/balance_cards.html``: Flex tokens, and a sales
    rep's customer page."""
    return {
        "balance": balance["tokens"],
        "credits": balance["cloud_credits"],
        "credits_expired": balance["cloud_credits"]["expires_at"] <= now,
        "low": low_balance_check(team=team, tokens=balance["tokens"]),
        "next_expiry": selectors.next_expiry(balance=balance),
        "forecast": selectors.run_out_forecast(team=team, now=now),
    }


@team_view(Perm.VIEW_BILLING)
@require_safe
def tokens(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    team, now = access.team, timezone.now()
    balance = selectors.team_balance(team=team)
    pack_filter = PackFilter(request.GET, queryset=selectors.pack_list(team=team, now=now))
    packs = PackTable(pack_filter.qs, now=now, prefix=PACKS)
    if not balance["packs"]:
        packs.empty_text = f"No packs yet. Ask your reseller, {team.reseller.name}, for a pack of Flex tokens."
    RequestConfig(request, paginate={"per_page": PER_PAGE}).configure(packs)
    event_filter = TokenEventFilter(request.GET, queryset=selectors.token_events(team=team, now=now))
    events = TokenEventTable(event_filter.qs, prefix=EVENTS)
    if not request.GET.get("kind"):
        events.empty_text = (
            f"No token events in the last {selectors.TOKEN_EVENT_DAYS} days. Purchases, expiries, moves and "
            "refunds show here as they happen."
        )
    RequestConfig(request, paginate={"per_page": PER_PAGE}).configure(events)
    pack_params = ("status", f"{PACKS}sort", f"{PACKS}page")
    event_params = ("kind", f"{EVENTS}sort", f"{EVENTS}page")
    return render(
        request,
        "billing/tokens.html",
        {
            "team": team,
            **balance_cards(team=team, balance=balance, now=now),
            "pack_filter": pack_filter,
            "packs": packs,
            "pack_filter_keep": _kept(request.GET, event_params),
            "pack_filter_clear": query_without(request.GET, *pack_params),
            "event_filter": event_filter,
            "events": events,
            "event_filter_keep": _kept(request.GET, pack_params),
            "event_filter_clear": query_without(request.GET, *event_params),
            "expiring_soon_days": selectors.EXPIRING_SOON_DAYS,
            "token_event_days": selectors.TOKEN_EVENT_DAYS,
            "as_of": now,
            "breadcrumbs": _crumbs(access, ("Billing & Orders", None), ("Flex tokens", None)),
        },
    )


@team_view(Perm.VIEW_TEAM)
@require_safe
def my_usage(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    """Every member's own spending in the team; nobody sees anybody else's here."""
    now = timezone.now()
    usage = selectors.my_usage(team=access.team, user=request.user, now=now)
    top = max((tokens for _, tokens in usage.months), default=0)
    bars = []
    for i, (month, tokens) in enumerate(usage.months):
        # The chart's plot is 360 units wide, a bar every 30, and 100 high (y 8 to 108); SVG
        # attributes want dot decimals.
        height = tokens / top * 100 if top else 0
        bars.append(
            {"month": month, "tokens": tokens, "x": 5 + i * 30, "y": f"{108 - height:.1f}", "height": f"{height:.1f}"}
        )
    return render(
        request,
        "billing/my_usage.html",
        {
            "team": access.team,
            "usage": usage,
            "bars": bars,
            "products": ProductUsageTable(usage.products),
            "months": MonthUsageTable([{"month": m, "tokens": t} for m, t in usage.months]),
            "as_of": now,
            "breadcrumbs": _crumbs(access, ("My usage", None)),
        },
    )
