"""User Management: the pages that show or change Flex (domain.md "Flex assignment",
portal.md "User Management").

They live in billing because Flex assignments are billing's and accounts may not import
billing. People come from ``accounts.selectors``; every change goes through one billing
service per POST (``assign_flex``, ``remove_flex``, ``bulk_assign_flex``,
``bulk_remove_flex``, ``import_members``). The people-only actions (invite, role, remove,
primary admin, resend) stay in accounts and come back here by URL name.
"""

from __future__ import annotations

import base64
import csv
import secrets

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods, require_POST
from django_tables2 import RequestConfig

from accounts import selectors as account_selectors
from accounts.access import Perm, TeamAccess, team_view
from accounts.forms import ConfirmImportForm, RoleForm, add_service_errors
from accounts.models import Membership, Role
from accounts.tables import member_status
from billing import services
from billing.filters import MemberFilter
from billing.flex_selectors import (
    FlexProduct,
    covering,
    current_flex,
    describe_products,
    describe_scope,
    flex_history,
    flex_product_counts,
    flex_products,
    flex_totals,
    member_flex_list,
    products_by_charge_type,
    scope_codes,
)
from billing.forms import ALL, LIST, BulkSelectionForm, FlexScopeForm, MemberImportForm
from billing.tables import BulkChangeTable, FlexHistoryTable, MemberTable, ProductCountTable, ProductMemberTable

USERS_PER_PAGE = 25
HISTORY_PER_PAGE = 10
IMPORT_SESSION_KEY = "member_import"
FILTER_PARAMS = ("q", "role", "flex", "product")
# A spreadsheet runs a cell that starts with one of these as a formula: such cells are
# written with a leading apostrophe (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _crumbs(access: TeamAccess, *trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [(access.team.name, reverse("accounts:team-home", args=[access.team.slug])), *trail]


def _users_crumb(access: TeamAccess) -> tuple[str, str]:
    return ("User Management", reverse("billing:member-list", args=[access.team.slug]))


def _names(products: list[FlexProduct]) -> dict[str, str]:
    return {p.code: p.name for p in products}


def _people(count: int) -> str:
    return f"{count} {'person' if count == 1 else 'people'}"


def _filter_params(data) -> list[tuple[str, str]]:
    """The list's filter as (name, value) pairs, to carry into the export and the bulk pages."""
    return [(name, value) for name in FILTER_PARAMS for value in data.getlist(name) if value]


def _member_table(request: HttpRequest, access: TeamAccess, products: list[FlexProduct], *, paginate: bool):
    member_filter = MemberFilter(request.GET, queryset=member_flex_list(team=access.team), products=products)
    table = MemberTable(member_filter.qs, team_slug=access.team.slug, product_names=_names(products))
    RequestConfig(request, paginate={"per_page": USERS_PER_PAGE} if paginate else False).configure(table)
    return member_filter, table


# --- By User ----------------------------------------------------------------------------------------


@team_view(Perm.MANAGE_MEMBERS)
def member_list(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    products = flex_products()
    member_filter, table = _member_table(request, access, products, paginate=True)
    params = _filter_params(request.GET)
    export_url = reverse("billing:member-export", args=[access.team.slug])
    sort = request.GET.get("sort")
    export_query = urlencode([*params, *([("sort", sort)] if sort else [])])
    return render(
        request,
        "billing/member_list.html",
        {
            "filter": member_filter,
            "table": table,
            "tab": "users",
            "matching": table.paginator.count,
            "filter_params": params,
            "export_url": f"{export_url}?{export_query}" if export_query else export_url,
            "breadcrumbs": _crumbs(access, ("User Management", None)),
        },
    )


@team_view(Perm.MANAGE_MEMBERS)
def member_export(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    """The list as CSV: the rows the filter matches (every page), in the page's order, with
    the columns the page shows (the selection boxes left out)."""
    _, table = _member_table(request, access, flex_products(), paginate=False)
    stamp = timezone.localtime().strftime("%Y-%m-%d")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{access.team.slug}-users-{stamp}.csv"'
    response.write("\ufeff")  # a byte-order mark, so that spreadsheets read the file as UTF-8
    writer = csv.writer(response)
    for row in table.as_values():
        writer.writerow(["'" + cell if str(cell).startswith(FORMULA_START) else cell for cell in row])
    return response


# --- A person's page --------------------------------------------------------------------------------


def _membership_or_404(access: TeamAccess, pk: int) -> Membership:
    membership = account_selectors.member_for_team(team=access.team, pk=pk)
    if membership is None:
        raise Http404("No such member in this team.")
    return membership


def _render_member(
    request: HttpRequest,
    access: TeamAccess,
    membership: Membership,
    *,
    flex_form: FlexScopeForm | None = None,
    status: int = 200,
) -> HttpResponse:
    team, user = access.team, membership.user
    products = flex_products()
    names = _names(products)
    current = current_flex(team=team, user=user)
    if flex_form is None:
        flex_form = FlexScopeForm.for_assignment(
            products=products,
            all_products=current.all_products if current else None,
            codes=current.products if current else [],
        )
    history = FlexHistoryTable(flex_history(team=team, user=user), product_names=names, prefix="history-")
    RequestConfig(request, paginate={"per_page": HISTORY_PER_PAGE}).configure(history)
    is_self = membership.user_id == request.user.pk
    return render(
        request,
        "billing/member_detail.html",
        {
            "member": membership,
            "status": member_status(membership),
            "is_self": is_self,
            "role_form": RoleForm(initial={"role": membership.role}),
            "can_change_role": membership.role != Role.PRIMARY_ADMIN and not is_self,
            "can_remove": membership.role != Role.PRIMARY_ADMIN and not is_self,
            "can_transfer": access.can(Perm.TRANSFER_PRIMARY_ADMIN) and membership.role != Role.PRIMARY_ADMIN,
            "flex": current,
            "flex_label": describe_scope(current.all_products, current.products, names) if current else "",
            "flex_form": flex_form,
            "history": history,
            "breadcrumbs": _crumbs(access, _users_crumb(access), (membership.display_name, None)),
        },
        status=status,
    )


@team_view(Perm.MANAGE_MEMBERS)
def member_detail(request: HttpRequest, access: TeamAccess, pk: int) -> HttpResponse:
    return _render_member(request, access, _membership_or_404(access, pk))


@team_view(Perm.MANAGE_MEMBERS)
@require_POST
def member_flex(request: HttpRequest, access: TeamAccess, pk: int) -> HttpResponse:
    """Assign or change a person's Flex: all products, or the products ticked."""
    membership = _membership_or_404(access, pk)
    products = flex_products()
    form = FlexScopeForm(request.POST, products=products)
    if form.is_valid():
        before = current_flex(team=access.team, user=membership.user)
        try:
            assignment = services.assign_flex(
                team=access.team, user=membership.user, products=form.products_value, actor=request.user
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            scope = describe_scope(assignment.all_products, assignment.products, _names(products))
            if before is not None and before.pk == assignment.pk:
                messages.info(request, f"{membership.display_name} already had Flex for {scope}. Nothing changed.")
            else:
                messages.success(request, f"{membership.display_name} may now spend tokens on: {scope}.")
            return redirect("billing:member-detail", access.team.slug, pk)
    return _render_member(request, access, membership, flex_form=form, status=400)


@team_view(Perm.MANAGE_MEMBERS)
@require_POST
def member_flex_remove(request: HttpRequest, access: TeamAccess, pk: int) -> HttpResponse:
    membership = _membership_or_404(access, pk)
    ended = services.remove_flex(team=access.team, user=membership.user, actor=request.user)
    if ended is None:
        messages.info(request, f"{membership.display_name} had no Flex assignment; nothing changed.")
    else:
        messages.success(request, f"Flex removed: {membership.display_name} can no longer spend tokens.")
    return redirect("billing:member-detail", access.team.slug, pk)


# --- Bulk -------------------------------------------------------------------------------------------


def _change_rows(members: list[Membership], names: dict[str, str], new: str | list[str] | None) -> list[dict]:
    """Who changes and how: ``new`` is "all", a list of codes, or None (Flex removed)."""
    rows = []
    for member in members:
        codes = scope_codes(member.flex_codes)
        if new is None:
            changes = member.flex_all is not None
        elif new == ALL:
            changes = member.flex_all is not True
        else:
            changes = not (member.flex_all is False and sorted(codes) == list(new))
        rows.append(
            {
                "name": member.display_name,
                "email": member.user.email,
                "now": describe_scope(member.flex_all, codes, names) or "None",
                "after": describe_products(new, names) if new is not None else "None",
                "changes": changes,
            }
        )
    return rows


@team_view(Perm.MANAGE_MEMBERS)
@require_http_methods(["GET", "POST"])
def member_bulk(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    """Assign or remove Flex for the users selected on By User (the boxes ticked, or all
    matching the filter). GET shows exactly who changes and how; the POST of that page
    applies it to exactly those people, all or nothing, with one service call."""
    team = access.team
    data = request.POST if request.method == "POST" else request.GET
    list_url = reverse("billing:member-list", args=[team.slug])
    back = f"{list_url}?{urlencode(_filter_params(data))}" if _filter_params(data) else list_url
    products = flex_products()
    names = _names(products)
    selection = BulkSelectionForm(data)
    context = {
        "tab": "users",
        "back": back,
        "breadcrumbs": _crumbs(access, _users_crumb(access), ("Change Flex for several users", None)),
    }
    if not selection.is_valid():
        context["refusal"] = "The selection is not valid. Go back to the list and select the users again."
        return render(request, "billing/member_bulk.html", context, status=400)
    action = selection.cleaned_data["action"]
    ids = selection.cleaned_data["member"]
    members_of_team = member_flex_list(team=team).order_by("user__first_name", "user__last_name", "user__email")
    if selection.cleaned_data["all"] and request.method == "GET":
        members = list(MemberFilter(data, queryset=members_of_team, products=products).qs)
    else:
        members = list(members_of_team.filter(pk__in=ids))
        if len(members) != len(ids):
            # A selection naming somebody of another team (or a removed member): refuse it whole.
            context["refusal"] = (
                "Nothing was changed: the selection names somebody who is not a member of "
                f"{team.name}. Go back to the list and select the users again."
            )
            return render(request, "billing/member_bulk.html", context, status=400)
    if not members:
        messages.error(request, "Select at least one user, or “all matching the filter”, first.")
        return redirect(back)
    scope_form = None
    new: str | list[str] | None = None
    if action == "assign":
        scope_form = FlexScopeForm(data if "scope" in data else None, products=products)
        if scope_form.is_bound and scope_form.is_valid():
            new = scope_form.products_value
        elif not scope_form.is_bound:
            new = ALL
            scope_form = FlexScopeForm(initial={"scope": ALL}, products=products)
    if request.method == "POST" and (action == "remove" or new is not None):
        users = [member.user for member in members]
        try:
            if action == "remove":
                done = services.bulk_remove_flex(team=team, users=users, actor=request.user)
            else:
                done = services.bulk_assign_flex(team=team, users=users, products=new, actor=request.user)
        except ValidationError as error:
            context["refusal"] = " ".join(error.messages)
            return render(request, "billing/member_bulk.html", context, status=400)
        same = len(users) - len(done)
        if action == "remove":
            text = f"Flex removed from {_people(len(done))}."
        else:
            text = f"Flex ({describe_products(new, names)}) assigned to {_people(len(done))}."
        if same:
            text += f" {_people(same)} already had {'no Flex' if action == 'remove' else 'it'}; left as they were."
        messages.success(request, text)
        return redirect(back)
    rows = _change_rows(members, names, None if action == "remove" else new) if action == "remove" or new else []
    changing = sum(row["changes"] for row in rows)
    context.update(
        {
            "action": action,
            "members": members,
            "selection_params": (
                [("all", "1"), *_filter_params(data)]
                if selection.cleaned_data["all"]
                else [("member", m.pk) for m in members] + _filter_params(data)
            ),
            "filter_params": _filter_params(data),
            "scope_form": scope_form,
            "changes": BulkChangeTable(rows) if rows else None,
            "changing": changing,
            "changing_text": _people(changing),
            "new_label": "no Flex" if action == "remove" else describe_products(new, names) if new else "",
            "confirm_scope": ALL if new == ALL else LIST,
            "confirm_products": [] if new in (None, ALL) else new,
        }
    )
    return render(request, "billing/member_bulk.html", context, status=400 if request.method == "POST" else 200)


# --- CSV import -------------------------------------------------------------------------------------


@team_view(Perm.MANAGE_MEMBERS)
@require_http_methods(["GET", "POST"])
def member_import(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    """Upload a CSV, see every row checked (the Flex column too), then confirm; nothing is
    written before that, and a file with any bad row writes nothing."""
    team = access.team
    crumbs = _crumbs(access, _users_crumb(access), ("Import from CSV", None))
    # Read, not set: showing the page leaves the session as it was (not saved again).
    uploads: dict = request.session.get(IMPORT_SESSION_KEY, {})
    upload_form = MemberImportForm()
    preview = None
    upload_id = None
    status = 200
    if request.method == "POST" and "confirm" in request.POST:
        confirm = ConfirmImportForm(request.POST)
        stored = uploads.get(request.POST.get("upload_id", "")) if confirm.is_valid() else None
        if stored is None or stored["team"] != team.pk:
            messages.error(request, "That upload has expired. Upload the file again.")
            return redirect("billing:member-import", team.slug)
        data = base64.b64decode(stored["data"])
        try:
            invited = services.import_members(team=team, data=data, actor=request.user)
        except ValidationError:
            # Something changed since the preview (say, a person was added meanwhile): show it again.
            preview, upload_id, status = (
                services.preview_member_import(team=team, data=data),
                confirm.cleaned_data["upload_id"],
                400,
            )
        else:
            uploads.pop(confirm.cleaned_data["upload_id"], None)
            request.session.modified = True
            messages.success(request, f"Invited {_people(len(invited))}.")
            return redirect("billing:member-list", team.slug)
    elif request.method == "POST":
        upload_form = MemberImportForm(request.POST, request.FILES)
        if upload_form.is_valid():
            data = upload_form.cleaned_data["file"]
            preview = services.preview_member_import(team=team, data=data)
            upload_id = secrets.token_urlsafe(12)
            # Keep only the latest upload per person and team: the session stays small.
            request.session[IMPORT_SESSION_KEY] = {
                upload_id: {"team": team.pk, "data": base64.b64encode(data).decode()}
            }
            status = 200 if preview.ok else 400
        else:
            status = 400
    return render(
        request,
        "billing/member_import.html",
        {
            "form": upload_form,
            "preview": preview,
            "upload_id": upload_id,
            "product_groups": products_by_charge_type(flex_products()),
            "breadcrumbs": crumbs,
        },
        status=status,
    )


# --- By Product -------------------------------------------------------------------------------------


@team_view(Perm.MANAGE_MEMBERS)
def flex_product_list(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    """Every Flex product with how many people may use it, directly or through "all products"."""
    products = flex_products()
    table = ProductCountTable(flex_product_counts(team=access.team, products=products), team_slug=access.team.slug)
    RequestConfig(request, paginate=False).configure(table)
    return render(
        request,
        "billing/flex_products.html",
        {
            "table": table,
            "tab": "products",
            "totals": flex_totals(team=access.team),
            "breadcrumbs": _crumbs(access, _users_crumb(access), ("By Product", None)),
        },
    )


@team_view(Perm.MANAGE_MEMBERS)
def flex_product_detail(request: HttpRequest, access: TeamAccess, product: str) -> HttpResponse:
    """The people who may use one product."""
    found = next((p for p in flex_products() if p.code == product), None)
    if found is None:
        raise Http404("No such product on the rate sheet.")
    table = ProductMemberTable(covering(member_flex_list(team=access.team), found.code), team_slug=access.team.slug)
    RequestConfig(request, paginate={"per_page": USERS_PER_PAGE}).configure(table)
    by_product = reverse("billing:flex-products", args=[access.team.slug])
    return render(
        request,
        "billing/flex_product.html",
        {
            "product": found,
            "table": table,
            "tab": "products",
            "list_url": reverse("billing:member-list", args=[access.team.slug])
            + f"?{urlencode({'product': found.code})}",
            "breadcrumbs": _crumbs(access, _users_crumb(access), ("By Product", by_product), (found.name, None)),
        },
    )
