"""The sales rep's pages: Customers (and its CSV), a customer's page, recording a purchase,
moving a pack, and Orders (CSV and XLSX).

Access through ``accounts.access``: ``rep_view`` (a person who is no sales rep gets an
explaining 403) and ``customer_view`` (a team the rep's resellers don't serve is a 404, and
the customer's time zone is active). Never anything per user: balances, packs and orders.
Each POST calls one service; the confirmation steps are GETs that write nothing.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods, require_safe
from django_tables2 import RequestConfig

from accounts import selectors as account_selectors
from accounts.access import customer_teams, customer_view, rep_view
from accounts.forms import add_service_errors
from accounts.models import Team
from billing import customer_selectors, selectors, services
from billing.filters import CustomerFilter, OrderFilter
from billing.forms import MoveForm, PurchaseForm
from billing.models import TokenPack
from billing.tables import CustomerTable, OrderTable, PackTable, TokenEventTable
from billing.views.tokens import balance_cards, query_without
from core import exports
from core.exceptions import Conflict
from core.money import tokens_text

PER_PAGE = 25
PACKS, EVENTS, ORDERS = "packs-", "events-", "orders-"


def _customers_crumb() -> tuple[str, str]:
    return ("Customers", reverse("billing:customer-list"))


def _customer_crumbs(team: Team, *trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [_customers_crumb(), (team.name, reverse("billing:customer-detail", args=[team.slug])), *trail]


def _pack_url(pack: TokenPack) -> str:
    """A pack on its customer's page (its row in the packs table)."""
    return reverse("billing:customer-detail", args=[pack.team.slug]) + f"#pack-{pack.pk}"


def _day(moment, team: Team) -> str:
    return date_format(timezone.localtime(moment, team.tz), "M j, Y")


# --- Customers ------------------------------------------------------------------------------------


def _customer_table(request: HttpRequest) -> tuple[CustomerFilter, CustomerTable]:
    customers = customer_selectors.customer_list(teams=customer_teams(request.user), now=timezone.now())
    customer_filter = CustomerFilter(request.GET, queryset=customers)
    # The reseller column only helps a rep who works for more than one reseller.
    exclude = ("reseller",) if len(request.rep_resellers) == 1 else ()
    table = CustomerTable(customer_filter.qs, exclude=exclude, order_by=request.GET.get("sort") or None)
    return customer_filter, table


@rep_view
@require_safe
def customer_list(request: HttpRequest) -> HttpResponse:
    customer_filter, table = _customer_table(request)
    RequestConfig(request, paginate={"per_page": PER_PAGE}).configure(table)
    return render(
        request,
        "billing/customer_list.html",
        {
            "filter": customer_filter,
            "table": table,
            "resellers": request.rep_resellers,
            "export_query": query_without(request.GET, "page"),
            "expiring_soon_days": selectors.EXPIRING_SOON_DAYS,
            "as_of": timezone.now(),
        },
    )


@rep_view
@require_safe
def customer_export(request: HttpRequest) -> HttpResponse:
    """The list as CSV: every customer the filter matches (not only the page shown), in the
    page's order, with the page's columns."""
    _, table = _customer_table(request)
    return exports.csv_response(table.as_values(), f"customers_{timezone.localdate().isoformat()}")


# --- A customer -----------------------------------------------------------------------------------


@customer_view
@require_safe
def customer_detail(request: HttpRequest, team: Team) -> HttpResponse:
    now = timezone.now()
    balance = selectors.team_balance(team=team)
    packs = PackTable(selectors.pack_list(team=team, now=now), now=now, prefix=PACKS)
    packs.empty_text = "No packs yet. Record a purchase to give this customer tokens."
    RequestConfig(request, paginate={"per_page": PER_PAGE}).configure(packs)
    events = TokenEventTable(selectors.token_events(team=team, now=now), prefix=EVENTS)
    events.empty_text = f"No token events in the last {selectors.TOKEN_EVENT_DAYS} days."
    RequestConfig(request, paginate={"per_page": PER_PAGE}).configure(events)
    orders = OrderTable(
        customer_selectors.order_list(teams=Team.objects.filter(pk=team.pk)), prefix=ORDERS, exclude=("team",)
    )
    orders.empty_text = "No purchase recorded for this customer yet."
    RequestConfig(request, paginate={"per_page": PER_PAGE}).configure(orders)
    return render(
        request,
        "billing/customer_detail.html",
        {
            "team": team,
            "for_rep": True,
            **balance_cards(team=team, balance=balance, now=now),
            "packs": packs,
            "events": events,
            "orders": orders,
            "admins": account_selectors.team_admins(team=team),
            "days_left": account_selectors.contract_days_left(team=team),
            "expiring_soon_days": selectors.EXPIRING_SOON_DAYS,
            "token_event_days": selectors.TOKEN_EVENT_DAYS,
            "as_of": now,
            "breadcrumbs": [_customers_crumb(), (team.name, None)],
        },
    )


# --- Recording a purchase -------------------------------------------------------------------------


def _already_recorded(pack: TokenPack) -> str:
    return format_html(
        'Order {} was already recorded: <a href="{}">pack {}</a> of {} tokens, bought on {}. Nothing new was written.',
        pack.reference,
        _pack_url(pack),
        pack.reference,
        tokens_text(pack.tokens),
        _day(pack.purchased_at, pack.team),
    )


@customer_view
@require_http_methods(["GET", "HEAD", "POST"])
def customer_purchase(request: HttpRequest, team: Team) -> HttpResponse:
    """Record a purchase in two steps: the form, then (a GET with ``review``) what the pack
    will be, its expiry and whether that falls after the contract's end; the POST records it
    (``record_purchase``: idempotent on the reference, audited, the admins told)."""
    context: dict = {
        "team": team,
        "now": timezone.localtime(),
        "breadcrumbs": _customer_crumbs(team, ("Record a purchase", None)),
    }
    conflict = None
    if request.method == "POST":
        form = PurchaseForm(request.POST)
        if form.is_valid():
            reference = form.cleaned_data["reference"]
            try:
                pack, created = services.record_purchase(team=team, actor=request.user, **form.service_kwargs())
            except ValidationError as error:
                add_service_errors(form, error)
                if isinstance(error, Conflict):
                    conflict = customer_selectors.pack_by_reference(team=team, reference=reference)
            else:
                if created:
                    messages.success(
                        request,
                        f"Pack {pack.reference} of {tokens_text(pack.tokens)} tokens recorded for {team.name}. "
                        f"It expires on {_day(pack.expires_at, team)}; the team's admins were told.",
                    )
                else:
                    messages.info(request, _already_recorded(pack))
                return redirect(_pack_url(pack))
    else:
        reviewing = "review" in request.GET
        prefill = {name: request.GET[name] for name in PurchaseForm.base_fields if request.GET.get(name)}
        form = PurchaseForm(request.GET if reviewing else None, initial=prefill)
        if reviewing and form.is_valid():
            reference = form.cleaned_data["reference"]
            try:
                preview = services.preview_purchase(team=team, **form.service_kwargs())
            except ValidationError as error:
                add_service_errors(form, error)
                if isinstance(error, Conflict):
                    conflict = customer_selectors.pack_by_reference(team=team, reference=reference)
            else:
                context["preview"] = preview
                context["already"] = _already_recorded(preview.existing) if preview.existing else None
                context["confirm_fields"] = [(name, request.GET.get(name, "")) for name in PurchaseForm.base_fields]
                context["change_query"] = query_without(request.GET, "review")
    context["form"] = form
    context["conflict_url"] = _pack_url(conflict) if conflict else None
    context["conflict_pack"] = conflict
    return render(request, "billing/customer_purchase.html", context)


# --- Moving a pack --------------------------------------------------------------------------------


@customer_view
@require_http_methods(["GET", "HEAD", "POST"])
def customer_move(request: HttpRequest, team: Team) -> HttpResponse:
    """Move what a pack still holds to another customer of the same reseller: the form, a
    confirmation (a GET with ``review``) naming both teams, the tokens and the expiry they
    keep, then the POST (``move_pack``, audited; the ledger shows both sides)."""
    form_kwargs = {
        "packs": customer_selectors.movable_packs(team=team),
        "teams": customer_teams(request.user).filter(reseller_id=team.reseller_id).exclude(pk=team.pk).order_by("name"),
        "reseller_name": team.reseller.name,
    }
    context: dict = {"team": team, "breadcrumbs": _customer_crumbs(team, ("Move tokens", None))}
    if request.method == "POST":
        form = MoveForm(request.POST, **form_kwargs)
        if form.is_valid():
            pack, to_team = form.cleaned_data["pack"], form.cleaned_data["to_team"]
            amount = pack.remaining
            try:
                services.move_pack(pack=pack, to_team=to_team, actor=request.user)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(
                    request,
                    f"{tokens_text(amount)} tokens of pack {pack.reference} moved from {team.name} to {to_team.name}. "
                    f"They still expire on {_day(pack.expires_at, team)}.",
                )
                return redirect(reverse("billing:customer-detail", args=[team.slug]) + "#events")
    else:
        reviewing = "review" in request.GET
        form = MoveForm(request.GET if reviewing else None, initial={"pack": request.GET.get("pack")}, **form_kwargs)
        if reviewing and form.is_valid():
            context["move"] = form.cleaned_data
            context["change_query"] = query_without(request.GET, "review")
    context["form"] = form
    context["has_packs"] = form.fields["pack"].queryset.exists()
    context["has_teams"] = form.fields["to_team"].queryset.exists()
    return render(request, "billing/customer_move.html", context)


# --- Orders ---------------------------------------------------------------------------------------


def _order_table(request: HttpRequest) -> tuple[OrderFilter, OrderTable]:
    teams = customer_teams(request.user)
    order_filter = OrderFilter(
        request.GET,
        queryset=customer_selectors.order_list(teams=teams),
        customers=list(teams.order_by("name").only("slug", "name", "time_zone")),
        recorders=customer_selectors.order_recorders(teams=teams),
    )
    table = OrderTable(order_filter.qs, order_by=request.GET.get("sort") or None)
    return order_filter, table


@rep_view
@require_safe
def orders(request: HttpRequest) -> HttpResponse:
    order_filter, table = _order_table(request)
    RequestConfig(request, paginate={"per_page": PER_PAGE}).configure(table)
    return render(
        request,
        "billing/order_list.html",
        {
            "filter": order_filter,
            "table": table,
            "export_query": query_without(request.GET, "page"),
            "breadcrumbs": [("Orders", None)],
        },
    )


@rep_view
@require_safe
def orders_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """Orders as CSV or XLSX: every purchase the filter matches, in the page's order."""
    _, table = _order_table(request)
    filename = f"orders_{timezone.localdate().isoformat()}"
    if fmt == "csv":
        return exports.csv_response(table.as_values(), filename)
    return exports.xlsx_response(table.as_values(), filename, sheet="Orders")
