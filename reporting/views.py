"""Reporting > Flex token usage: Summary, By Product (and a product), By User (Premium, and a
person), Denials. Read-only pages over ``reporting.selectors`` (rollups only, except the
denial reasons); the range and filters ride in the query string, carried across the tabs.
Admins and report viewers reach them through ``accounts.access.team_view(Perm.VIEW_REPORTS)``;
a sales rep reaches Summary and By Product (and a product's days) of the teams the rep's
resellers serve under /customers/<team>/reports/ (``accounts.access.customer_view``), never anything per
person: no By User, no Denials (they name people), no user filter or column."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe
from django_tables2 import RequestConfig

from accounts.access import Perm, TeamAccess, customer_view, team_view
from accounts.models import Membership, Team
from core.money import fmt as amount_text
from reporting import charts, exports, selectors
from reporting.filters import ReportFilter
from reporting.ranges import DEFAULT_RANGE, Period, resolve
from reporting.tables import (
    BucketTable,
    DenialDayTable,
    DenialReasonTable,
    ProductReportTable,
    ReportTable,
    UserReportTable,
    WeekGridTable,
)

PER_PAGE = 50
TABS = [
    ("Summary", "summary", "summary"),
    ("By Product", "by-product", "product"),
    ("By User", "by-user", "user"),
    ("Denials", "denials", "denials"),
]
# What a sales rep sees of a customer's reports: the totals, never a person.
REP_TABS = ("summary", "product")
REP_EXPORTS = ("summary", "products")
# Query parameters that belong to one page's table, not to the report's range and filters.
TABLE_PARAMS = ("sort", "page")


def person_label(person: dict, names: bool) -> str:
    """How a person appears in the reports: their name (or e-mail), or, when the team turned
    "Display names and e-mail addresses in reports" off, a pseudonym that stays the same for
    the person across reports, drill-downs, exports and visits (their user number)."""
    if not names:
        return f"User {person['user_id']}"
    return person["name"] or person["user"]


def _labelled(rows: list[dict], team: Team) -> list[dict]:
    """``rows`` with each person's ``label`` (``person_label``): the one place the team's
    names-in-reports setting is applied, for pages and exports alike."""
    for row in rows:
        row["label"] = person_label(row, team.report_names)
    return rows


@dataclass
class Report:
    """What every report page shares: the team, the range, the filters and the tabs."""

    team: Team
    form: forms.Form
    period: Period
    product: str | None
    user_id: int | None
    products: dict[str, str]
    people: list[dict] | None
    query: str
    rep: bool = False

    @property
    def per_user(self) -> bool:
        """Whether the report may show people: Premium, and read by the team itself."""
        return self.team.is_premium and not self.rep

    @property
    def route(self) -> str:
        """The prefix of the report pages' URL names for this reader."""
        return "reporting:customer-" if self.rep else "reporting:"

    def url(self, name: str, *args: object) -> str:
        """A report page for this reader, with the range and filters."""
        url = reverse(self.route + name, args=[self.team.slug, *args])
        return f"{url}?{self.query}" if self.query else url

    @property
    def product_label(self) -> str:
        return self.products.get(self.product, self.product or "")

    @property
    def user_label(self) -> str:
        person = next((p for p in self.people or [] if p["user_id"] == self.user_id), None)
        return person["label"] if person else ""

    def selection(self) -> dict:
        return {
            "team": self.team,
            "start": self.period.start,
            "end": self.period.end,
            "product": self.product,
            "user_id": self.user_id,
        }


def _report(request: HttpRequest, team: Team, *, rep: bool = False) -> Report:
    products = selectors.report_products(team=team)
    people = None
    if team.is_premium and not rep:
        people = _labelled(selectors.report_people(team=team), team)
        if not team.report_names:
            people.sort(key=lambda person: person["user_id"])  # not in the order of their names
    form = ReportFilter(request.GET or None, products=products, people=people).form
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    period = resolve(
        data.get("range") or DEFAULT_RANGE,
        today=timezone.localdate(),  # team_view switched to the team's time zone
        contract_start=team.contract_start,
        contract_end=team.contract_end,
        start=data.get("start"),
        end=data.get("end"),
    )
    query = request.GET.copy()
    for name in TABLE_PARAMS:
        query.pop(name, None)
    return Report(
        team=team,
        form=form,
        period=period,
        product=data.get("product") or None,
        user_id=data.get("user") if people is not None else None,
        products=products,
        people=people,
        query=query.urlencode(),
        rep=rep,
    )


def _context(request: HttpRequest, report: Report, tab: str, **extra) -> dict:
    team = report.team
    tabs = [
        {"label": label, "url": report.url(name), "active": key == tab}
        for label, name, key in TABS
        if not report.rep or key in REP_TABS
    ]
    if report.rep:
        trail = [
            ("Customers", reverse("billing:customer-list")),
            (team.name, reverse("billing:customer-detail", args=[team.slug])),
            ("Usage reports", None),
        ]
    else:
        trail = [(team.name, reverse("accounts:team-home", args=[team.slug])), ("Reporting", None)]
    export_query = request.GET.urlencode()
    return {
        "team": team,
        "report": report,
        "export_query": f"?{export_query}" if export_query else "",
        "period": report.period,
        "tabs": tabs,
        "tab": tab,
        "export_route": report.route + "export",
        "as_of": selectors.last_processed_at(team=team),
        "breadcrumbs": trail,
        **extra,
    }


def _change(now: Decimal | int, before: Decimal | int | None) -> dict | None:
    if before is None:
        return None
    delta = now - before
    percent = (Decimal(delta) / Decimal(before) * 100).quantize(Decimal("0.1")) if before else None
    return {"delta": delta, "percent": percent, "up": delta > 0, "down": delta < 0}


def _size(report: Report) -> str:
    """The chart's bars (day, week or month) for the range; an open range's are drawn from
    its data by day."""
    period = report.period
    return charts.bucket_size(period.start, period.end) if period.start and period.end else "day"


def _chart(report: Report, rows: list[dict], key: str = "sum_tokens") -> tuple[dict, BucketTable, str]:
    size, series = charts.buckets(rows, start=report.period.start, end=report.period.end, key=key)
    totals = charts.by_product([{**row, "sum_tokens": row[key]} for row in rows])
    order = sorted(totals, key=lambda code: (-totals[code], code))
    names = {code: report.products.get(code, code) for code in order}
    chart = charts.stacked_bars(series, order, names)
    chart["legend"] = [{"name": names[code], "css": chart["colours"][code]} for code in order]
    table = BucketTable([b for b in series if b.total], products=names, size=size)
    return chart, table, size


@team_view(Perm.VIEW_REPORTS)
@require_safe
def summary(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    return _summary(request, _report(request, access.team))


@customer_view
@require_safe
def customer_summary(request: HttpRequest, team: Team) -> HttpResponse:
    return _summary(request, _report(request, team, rep=True))


def _summary(request: HttpRequest, report: Report) -> HttpResponse:
    totals = selectors.usage_totals(**report.selection())
    previous_period = report.period.previous()
    before = None
    if previous_period is not None:
        before = selectors.usage_totals(
            **{**report.selection(), "start": previous_period.start, "end": previous_period.end}
        )
    figures = [
        {"label": "Tokens", "value": totals["tokens"], "tokens": True, "key": "tokens"},
        {"label": "Cloud credits", "value": totals["cloud_credits"], "tokens": True, "key": "cloud_credits"},
        {"label": "Charges", "value": totals["charges"], "key": "charges"},
        {"label": "Products used", "value": totals["products"], "key": "products"},
        {"label": "Active users", "value": totals["users"], "key": "users"},
    ]
    for figure in figures:
        figure["change"] = _change(figure["value"], before[figure["key"]] if before else None)
    chart, table, size = _chart(report, selectors.tokens_by_day_and_product(**report.selection(), size=_size(report)))
    return render(
        request,
        "reporting/summary.html",
        _context(
            request,
            report,
            "summary",
            totals=totals,
            figures=figures,
            previous_period=previous_period,
            chart=chart,
            day_table=table,
            size=size,
        ),
    )


def _with_param(request: HttpRequest, name: str, value: object) -> str:
    """The page's query with one filter set: a drill-down's export is its report, filtered."""
    query = request.GET.copy()
    query[name] = str(value)
    return query.urlencode()


def _with_share(rows: list[dict]) -> list[dict]:
    total = sum((row["tokens"] for row in rows), Decimal(0))
    for row in rows:
        row["share"] = row["tokens"] / total * 100 if total else Decimal(0)
    return rows


@team_view(Perm.VIEW_REPORTS)
@require_safe
def by_product(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    return _by_product(request, _report(request, access.team))


@customer_view
@require_safe
def customer_by_product(request: HttpRequest, team: Team) -> HttpResponse:
    return _by_product(request, _report(request, team, rep=True))


def _by_product(request: HttpRequest, report: Report) -> HttpResponse:
    rows = _with_share(selectors.usage_by_product(**report.selection()))
    table = ProductReportTable(rows, url=report.url)
    RequestConfig(request, paginate=False).configure(table)
    top = max((row["tokens"] for row in rows), default=Decimal(0))
    bars = [
        {
            "name": row["name"],
            "tokens": row["tokens"],
            "y": 8 + i * 28,
            "width": f"{row['tokens'] / top * 460:.1f}" if top else "0",
        }
        for i, row in enumerate(rows)
    ]
    return render(
        request,
        "reporting/by_product.html",
        _context(
            request,
            report,
            "product",
            table=table,
            bars=bars,
            bars_height=16 + 28 * len(bars),
            totals=_sum(rows, ("tokens", "cloud_credits", "charges", "denials")),
        ),
    )


def _sum(rows: list[dict], keys: tuple[str, ...]) -> dict:
    return {key: sum((row[key] for row in rows), 0) for key in keys}


@team_view(Perm.VIEW_REPORTS)
@require_safe
def product_detail(request: HttpRequest, access: TeamAccess, product: str) -> HttpResponse:
    return _product_detail(request, _report(request, access.team), product)


@customer_view
@require_safe
def customer_product_detail(request: HttpRequest, team: Team, product: str) -> HttpResponse:
    return _product_detail(request, _report(request, team, rep=True), product)


def _product_detail(request: HttpRequest, report: Report, product: str) -> HttpResponse:
    name = report.products.get(product) or selectors.product_names({product}).get(product)
    if name is None:
        raise Http404("No such product.")
    selection = {**report.selection(), "product": product}
    totals = selectors.usage_totals(**selection)
    chart, table, size = _chart(report, selectors.tokens_by_day_and_product(**selection, size=_size(report)))
    users = None
    if report.per_user:
        users, _ = _user_table(request, report, selection, paginate={"per_page": PER_PAGE})
    return render(
        request,
        "reporting/product_detail.html",
        _context(
            request,
            report,
            "product",
            product=product,
            product_name=name,
            back_url=report.url("by-product"),
            totals=totals,
            chart=chart,
            day_table=table,
            size=size,
            users=users,
            export_query="?" + _with_param(request, "product", product),
        ),
    )


def _user_table(
    request: HttpRequest, report: Report, selection: dict, *, paginate: dict | bool
) -> tuple[UserReportTable, list[dict]]:
    """By User's table (page, product drill-down and export alike) and its rows."""
    rows = _labelled(selectors.usage_by_user(**selection), report.team)
    table = UserReportTable(rows, url=report.url)
    RequestConfig(request, paginate=paginate).configure(table)
    return table, rows


def _denial_day_table(report: Report) -> tuple[DenialDayTable, list[dict]]:
    """Denials by day and product, per user on Premium only (page and export alike), and its rows."""
    per_user = report.per_user
    days = selectors.denials_by_day(**report.selection(), per_user=per_user)
    if per_user:
        _labelled(days, report.team)
    table = DenialDayTable(days, url=report.url, prefix="day-", exclude=() if per_user else ("label",))
    return table, days


# What the upsell's preview shows: made-up people, marked as an illustration.
ILLUSTRATION = [
    {"label": "Alex Example", "tokens": Decimal(420), "products": 3, "days": 38, "last_used": None},
    {"label": "Sam Sample", "tokens": Decimal(287), "products": 2, "days": 27, "last_used": None},
    {"label": "Robin Placeholder", "tokens": Decimal(70), "products": 1, "days": 10, "last_used": None},
]


def _upsell(request: HttpRequest, report: Report) -> HttpResponse:
    return render(request, "reporting/by_user_upsell.html", _context(request, report, "user", preview=ILLUSTRATION))


@team_view(Perm.VIEW_REPORTS)
@require_safe
def by_user(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    report = _report(request, access.team)
    if not report.per_user:
        return _upsell(request, report)
    table, rows = _user_table(request, report, report.selection(), paginate={"per_page": PER_PAGE})
    return render(
        request,
        "reporting/by_user.html",
        _context(request, report, "user", table=table, totals=_sum(rows, ("tokens",)), people_count=len(rows)),
    )


def _week_grid(report: Report, user_id: int) -> WeekGridTable:
    """A person's days used per week (rows) and product (columns)."""
    weeks = selectors.days_used_by_week(
        team=report.team, user_id=user_id, start=report.period.start, end=report.period.end, product=report.product
    )
    codes = sorted({row["product"] for row in weeks}, key=lambda code: report.products.get(code, code).lower())
    names = {code: report.products.get(code, code) for code in codes}
    grid: dict = {}
    for row in weeks:
        entry = grid.setdefault(row["week"], {"label": f"{row['week']:%b %-d, %Y}", "days": {}, "total": 0})
        entry["days"][row["product"]] = row["days"]
        # Product-days: a day on two products counts twice (each product's column counts it).
        entry["total"] += row["days"]
    return WeekGridTable(list(grid.values()), products=names)


@team_view(Perm.VIEW_REPORTS)
@require_safe
def user_detail(request: HttpRequest, access: TeamAccess, user_id: int) -> HttpResponse:
    report = _report(request, access.team)
    if not report.per_user:
        return _upsell(request, report)
    person = next((p for p in report.people if p["user_id"] == user_id), None)
    if person is None:
        # A member without usage has an empty report; anybody else is not found.
        membership = Membership.objects.filter(team=report.team, user_id=user_id).select_related("user").first()
        if membership is None:
            raise Http404("No such person in the team.")
        user = membership.user
        person = {"user_id": user.pk, "user": user.email, "name": f"{user.first_name} {user.last_name}".strip()}
        _labelled([person], report.team)
    selection = {**report.selection(), "user_id": user_id}
    grid_table = _week_grid(report, user_id)
    products = _with_share(selectors.usage_by_product(**selection))
    product_table = ProductReportTable(products, url=report.url, orderable=False, exclude=("users",))
    return render(
        request,
        "reporting/user_detail.html",
        _context(
            request,
            report,
            "user",
            person=person,
            totals=selectors.usage_totals(**selection),
            grid=grid_table,
            product_table=product_table,
            export_query="?" + _with_param(request, "user", user_id),
        ),
    )


@team_view(Perm.VIEW_REPORTS)
@require_safe
def denials(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    report = _report(request, access.team)
    per_user = report.per_user
    day_table, days = _denial_day_table(report)
    RequestConfig(request, paginate={"per_page": PER_PAGE}).configure(day_table)
    reasons = selectors.denials_by_reason(**report.selection())
    reason_table = DenialReasonTable(reasons, prefix="reason-")
    RequestConfig(request, paginate=False).configure(reason_table)
    chart_rows = {}
    for row in days:
        key = (row["day"], row["product"])
        chart_rows[key] = chart_rows.get(key, 0) + row["denials"]
    rows = [{"day": day, "product": code, "sum_tokens": Decimal(n)} for (day, code), n in chart_rows.items()]
    chart, _table, _bars = _chart(report, rows)
    return render(
        request,
        "reporting/denials.html",
        _context(
            request,
            report,
            "denials",
            day_table=day_table,
            reason_table=reason_table,
            chart=chart,
            total=sum(row["denials"] for row in days),
            per_user=per_user,
        ),
    )


# --- Exports: the table a report shows, as CSV or XLSX ---------------------------------------------


def _summary_export(request: HttpRequest, report: Report) -> tuple[ReportTable, list]:
    rows = selectors.tokens_by_day_and_product(**report.selection(), size=_size(report))
    _, table, _bars = _chart(report, rows)
    rows = table.data.data
    codes = [name for name in table.sequence if name not in ("label", "total")]
    totals = [sum((b.values.get(code, Decimal(0)) for b in rows), Decimal(0)) for code in codes]
    return table, ["Total", *totals, sum(totals, Decimal(0))]


def _products_export(request: HttpRequest, report: Report) -> tuple[ReportTable, list]:
    rows = _with_share(selectors.usage_by_product(**report.selection()))
    table = ProductReportTable(rows, url=report.url)
    RequestConfig(request, paginate=False).configure(table)
    sums = _sum(rows, ("tokens", "cloud_credits", "charges", "denials"))
    users = selectors.usage_totals(**report.selection())["users"] if rows else 0
    share = "100.0%" if sums["tokens"] else "0.0%"
    return table, ["Total", sums["tokens"], sums["cloud_credits"], sums["charges"], users, sums["denials"], share]


def _users_export(request: HttpRequest, report: Report) -> tuple[ReportTable, list]:
    if not report.per_user:
        raise PermissionDenied(f"By User is part of the Premium plan; {report.team.name} is on Standard.")
    table, rows = _user_table(request, report, report.selection(), paginate=False)
    return table, ["Total", _sum(rows, ("tokens",))["tokens"], "", "", ""]


def _denials_export(request: HttpRequest, report: Report) -> tuple[ReportTable, list]:
    table, days = _denial_day_table(report)
    RequestConfig(request, paginate=False).configure(table)
    per_user = report.per_user
    return table, ["Total", "", *([""] if per_user else []), sum(row["denials"] for row in days)]


def _weeks_export(request: HttpRequest, report: Report) -> tuple[ReportTable, list]:
    if not report.per_user:
        raise PermissionDenied(f"By User is part of the Premium plan; {report.team.name} is on Standard.")
    if report.user_id is None:
        raise Http404("Choose a person.")
    table = _week_grid(report, report.user_id)
    rows = table.data.data
    codes = [name for name in table.sequence if name not in ("label", "total")]
    totals = [sum(week["days"].get(code, 0) for week in rows) for code in codes]
    return table, ["Total", *totals, sum(totals)]


EXPORTS = {
    "summary": ("Tokens over time", _summary_export),
    "products": ("By Product", _products_export),
    "users": ("By User", _users_export),
    "denials": ("Denials", _denials_export),
    "weeks": ("Days used per week", _weeks_export),
}


@team_view(Perm.VIEW_REPORTS)
@require_safe
def export(request: HttpRequest, access: TeamAccess, name: str, fmt: str) -> HttpResponse:
    return _export(request, _report(request, access.team), name, fmt)


@customer_view
@require_safe
def customer_export(request: HttpRequest, team: Team, name: str, fmt: str) -> HttpResponse:
    return _export(request, _report(request, team, rep=True), name, fmt)


def _export(request: HttpRequest, report: Report, name: str, fmt: str) -> HttpResponse:
    if name not in EXPORTS or fmt not in ("csv", "xlsx") or (report.rep and name not in REP_EXPORTS):
        raise Http404("No such export.")
    sheet, build = EXPORTS[name]
    table, totals = build(request, report)
    totals = [amount_text(cell) if isinstance(cell, Decimal) else cell for cell in totals]
    rows = itertools.chain(table.as_values(), [totals])
    filename = f"{report.team.slug}_{name}_{report.period.slug}"
    if fmt == "csv":
        return exports.csv_response(rows, filename)
    return exports.xlsx_response(rows, filename, sheet=sheet)
