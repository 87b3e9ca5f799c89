"""Thin views: look up through ``accounts.access``, parse a form, call one service.

User Management's list, a person's page and the CSV import are billing's pages (they show
and change Flex, which accounts may not import): the people-only actions here go back to
them by URL name (``billing:member-list``, ``billing:member-detail``), a string, not an import.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_tables2 import RequestConfig

from accounts import selectors, services
from accounts.access import Perm, TeamAccess, rep_resellers, team_view
from accounts.filters import AuditFilter
from accounts.forms import (
    AcceptInvitationForm,
    AlertSettingsForm,
    ApiKeyForm,
    InviteForm,
    ProfileForm,
    RoleForm,
    TeamSettingsForm,
    add_service_errors,
)
from accounts.models import ApiKey, Membership, Role
from accounts.tables import ApiKeyTable, AuditTable

NEW_API_KEY_SESSION_KEY = "new_api_key"


def _crumbs(access: TeamAccess, *trail: tuple[str, str | None]) -> list[tuple[str, str | None]]:
    return [(access.team.name, reverse("accounts:team-home", args=[access.team.slug])), *trail]


def start(request: HttpRequest) -> HttpResponse:
    """Where "/" and a fresh sign-in land: the last team used, else the first, else Customers."""
    slug = request.session.get("last_team")
    if slug and selectors.is_member(user=request.user, slug=slug):
        return redirect("accounts:team-home", slug)
    team = selectors.home_team_of_user(request.user)
    if team is not None:
        return redirect("accounts:team-home", team.slug)
    if rep_resellers(request.user):
        return redirect("billing:customer-list")  # billing's page, by URL name
    if request.user.is_staff:
        return redirect("admin:index")
    return render(request, "accounts/no_team.html", status=200)


@team_view(Perm.VIEW_TEAM)
def team_home(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    team = access.team
    counts = selectors.role_counts(team=team)
    return render(
        request,
        "accounts/team_home.html",
        {
            "team": team,
            "admins": selectors.team_admins(team=team),
            "role_counts": [(Role(value).label, n) for value, n in counts.items()],
            "member_total": sum(counts.values()),
            "pending_invitations": selectors.pending_invitation_count(team=team),
            "days_left": selectors.contract_days_left(team=team),
            "can_manage": access.can(Perm.MANAGE_MEMBERS),
        },
    )


@team_view(Perm.MANAGE_MEMBERS)
@require_http_methods(["GET", "POST"])
def member_invite(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            membership = services.invite_user(team=access.team, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            if hasattr(membership, "invitation"):
                messages.success(request, f"Invitation sent to {membership.user.email}.")
            else:
                messages.success(
                    request,
                    f"{membership.user.get_full_name()} already had a FlexAdmin account and was added to "
                    f"{access.team.name} at once; they were told by e-mail.",
                )
            return redirect("billing:member-list", access.team.slug)
    return render(
        request,
        "accounts/member_invite.html",
        {
            "form": form,
            "breadcrumbs": _crumbs(
                access,
                ("User Management", reverse("billing:member-list", args=[access.team.slug])),
                ("Invite a user", None),
            ),
        },
    )


def _membership_or_404(access: TeamAccess, pk: int) -> Membership:
    membership = selectors.member_for_team(team=access.team, pk=pk)
    if membership is None:
        raise Http404("No such member in this team.")
    return membership


@team_view(Perm.MANAGE_MEMBERS)
@require_POST
def member_role(request: HttpRequest, access: TeamAccess, pk: int) -> HttpResponse:
    membership = _membership_or_404(access, pk)
    form = RoleForm(request.POST)
    if form.is_valid():
        unchanged = form.cleaned_data["role"] == membership.role
        try:
            membership = services.change_role(membership=membership, role=form.cleaned_data["role"], actor=request.user)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            if unchanged:
                messages.info(
                    request,
                    f"{membership.user.get_full_name()} already was a "
                    f"{membership.get_role_display().lower()}; nothing changed.",
                )
                return redirect("billing:member-detail", access.team.slug, pk)
            messages.success(
                request, f"{membership.user.get_full_name()} is now a {membership.get_role_display().lower()}."
            )
            return redirect("billing:member-detail", access.team.slug, pk)
    # The person's page is billing's (it shows their Flex too): the refusal travels as a message.
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, f"The role was not changed: {error}")
    return redirect("billing:member-detail", access.team.slug, pk)


@team_view(Perm.MANAGE_MEMBERS)
@require_POST
def member_resend(request: HttpRequest, access: TeamAccess, pk: int) -> HttpResponse:
    membership = _membership_or_404(access, pk)
    try:
        services.resend_invitation(membership=membership, actor=request.user)
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(
            request, f"A new invitation was sent to {membership.user.email}; the old link no longer works."
        )
    return redirect("billing:member-detail", access.team.slug, pk)


@team_view(Perm.MANAGE_MEMBERS)
@require_http_methods(["GET", "POST"])
def member_remove(request: HttpRequest, access: TeamAccess, pk: int) -> HttpResponse:
    membership = _membership_or_404(access, pk)
    error = None
    if request.method == "POST":
        try:
            services.remove_member(membership=membership, actor=request.user)
        except ValidationError as exc:
            error = exc.messages[0]
        else:
            messages.success(request, f"{membership.user.get_full_name()} was removed from {access.team.name}.")
            return redirect("billing:member-list", access.team.slug)
    return render(
        request,
        "accounts/member_remove.html",
        {
            "member": membership,
            "error": error,
            "breadcrumbs": _crumbs(
                access,
                ("User Management", reverse("billing:member-list", args=[access.team.slug])),
                (membership.user.get_full_name(), reverse("billing:member-detail", args=[access.team.slug, pk])),
                ("Remove", None),
            ),
        },
        status=400 if error else 200,
    )


@team_view(Perm.TRANSFER_PRIMARY_ADMIN)
@require_http_methods(["GET", "POST"])
def member_transfer(request: HttpRequest, access: TeamAccess, pk: int) -> HttpResponse:
    membership = _membership_or_404(access, pk)
    error = None
    if request.method == "POST":
        try:
            services.transfer_primary_admin(team=access.team, to=membership, actor=request.user)
        except ValidationError as exc:
            error = exc.messages[0]
        else:
            messages.success(
                request, f"{membership.user.get_full_name()} is now the primary admin; you remain a secondary admin."
            )
            return redirect("billing:member-detail", access.team.slug, pk)
    return render(
        request,
        "accounts/member_transfer.html",
        {
            "member": membership,
            "error": error,
            "breadcrumbs": _crumbs(
                access,
                ("User Management", reverse("billing:member-list", args=[access.team.slug])),
                (membership.user.get_full_name(), reverse("billing:member-detail", args=[access.team.slug, pk])),
                ("Make primary admin", None),
            ),
        },
        status=400 if error else 200,
    )


@team_view(Perm.MANAGE_SETTINGS)
@require_http_methods(["GET", "POST"])
def team_settings(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    team = access.team
    form = TeamSettingsForm.for_team(team, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_team_settings(team=team, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Team settings saved.")
            return redirect("accounts:team-settings", team.slug)
    return render(
        request,
        "accounts/team_settings.html",
        {"form": form, "team": team, "breadcrumbs": _crumbs(access, ("Settings", None))},
        status=400 if form.errors else 200,
    )


@team_view(Perm.VIEW_AUDIT)
def audit_log(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    audit_filter = AuditFilter(request.GET, queryset=selectors.audit_events(team=access.team))
    table = AuditTable(audit_filter.qs)
    RequestConfig(request, paginate={"per_page": 50}).configure(table)
    return render(
        request,
        "accounts/audit_log.html",
        {
            "filter": audit_filter,
            "table": table,
            "breadcrumbs": _crumbs(
                access, ("Settings", reverse("accounts:team-settings", args=[access.team.slug])), ("Activity log", None)
            ),
        },
    )


@team_view(Perm.MANAGE_API_KEYS)
@require_http_methods(["GET", "POST"])
@never_cache
def api_keys(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    """The team's keys, and a form for a new one whose secret the next page shows once."""
    team = access.team
    form = ApiKeyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            key, secret = services.create_api_key(team=team, name=form.cleaned_data["name"], actor=request.user)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            # Post/redirect/get, so that a reload can't make a second key. The secret waits
            # in the session only until the page after the redirect takes it out.
            request.session[NEW_API_KEY_SESSION_KEY] = {"team": team.pk, "id": key.pk, "secret": secret}
            return redirect("accounts:api-keys", team.slug)
    new_key, new_secret = None, None
    if request.method == "GET":
        stored = request.session.pop(NEW_API_KEY_SESSION_KEY, None)
        if stored and stored.get("team") == team.pk:
            new_key = selectors.api_key_for_team(team=team, pk=stored["id"])
            new_secret = stored["secret"] if new_key is not None else None
    table = ApiKeyTable(selectors.api_keys_of_team(team=team))
    RequestConfig(request, paginate={"per_page": 25}).configure(table)
    return render(
        request,
        "accounts/api_keys.html",
        {
            "form": form,
            "table": table,
            "team": team,
            "new_key": new_key,
            "new_secret": new_secret,
            "breadcrumbs": _crumbs(
                access, ("Settings", reverse("accounts:team-settings", args=[team.slug])), ("API keys", None)
            ),
        },
        status=400 if form.errors else 200,
    )


def _api_key_or_404(access: TeamAccess, pk: int) -> ApiKey:
    key = selectors.api_key_for_team(team=access.team, pk=pk)
    if key is None:
        raise Http404("No such API key in this team.")
    return key


@team_view(Perm.MANAGE_API_KEYS)
@require_POST
def api_key_revoke(request: HttpRequest, access: TeamAccess, pk: int) -> HttpResponse:
    key = _api_key_or_404(access, pk)
    if not key.is_active:
        messages.info(request, f"The key “{key.name}” was already revoked; nothing changed.")
    else:
        services.revoke_api_key(key=key, actor=request.user)
        messages.success(
            request, f"The key “{key.name}” ({key.prefix}…) was revoked. Programs using it can no longer call the API."
        )
    return redirect("accounts:api-keys", access.team.slug)


@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = ProfileForm(request.POST or None, initial={"first_name": user.first_name, "last_name": user.last_name})
    if request.method == "POST" and form.is_valid():
        services.update_profile(user=user, **form.cleaned_data)
        messages.success(request, "Your profile was saved.")
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form, "breadcrumbs": [("Your profile", None)]})


@login_not_required
@require_http_methods(["GET", "POST"])
def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    invitation = selectors.pending_invitation(token=token)
    if invitation is None:
        return render(request, "accounts/invitation_invalid.html", status=404)
    user = invitation.membership.user
    team = invitation.membership.team
    if user.has_usable_password():
        # Somebody who already has an account: joining takes their consent, nothing more.
        if request.method == "POST":
            services.accept_invitation(token=token)
            messages.success(request, f"You joined {team.name}.")
            if request.user.is_authenticated and request.user.pk == user.pk:
                return redirect("accounts:team-home", team.slug)
            return redirect(f"{reverse('login')}?next={reverse('accounts:team-home', args=[team.slug])}")
        return render(request, "accounts/invitation_join.html", {"invitation": invitation, "email": user.email})
    form = AcceptInvitationForm(
        request.POST or None, initial={"first_name": user.first_name, "last_name": user.last_name}
    )
    if request.method == "POST" and form.is_valid():
        try:
            user = services.accept_invitation(
                token=token,
                password=form.cleaned_data["password1"],
                first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
            )
        except ValidationError as error:
            form.add_error("password1", error)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to {invitation.membership.team.name}!")
            return redirect("accounts:team-home", invitation.membership.team.slug)
    return render(
        request,
        "accounts/invitation_accept.html",
        {"form": form, "invitation": invitation, "email": user.email},
        status=400 if form.errors else 200,
    )


@login_not_required
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@team_view(Perm.MANAGE_SETTINGS)
@require_http_methods(["GET", "POST"])
def alert_settings(request: HttpRequest, access: TeamAccess) -> HttpResponse:
    team = access.team
    form = AlertSettingsForm.for_team(
        alert_settings=selectors.alert_settings_of_team(team=team),
        admins=selectors.team_admins(team=team),
        opt_outs=selectors.alert_opt_outs(team=team),
        data=request.POST if request.method == "POST" else None,
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.update_alert_settings(team=team, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Alert settings saved.")
            return redirect("accounts:alert-settings", team.slug)
    return render(
        request,
        "accounts/alert_settings.html",
        {
            "form": form,
            "team": team,
            "breadcrumbs": _crumbs(
                access, ("Settings", reverse("accounts:team-settings", args=[team.slug])), ("Alerts", None)
            ),
        },
        status=400 if form.errors else 200,
    )


def notification_list(request: HttpRequest) -> HttpResponse:
    """The signed-in person's notices (the bell in the top bar), newest first."""
    page = Paginator(selectors.notifications_of_user(user=request.user), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "accounts/notification_list.html",
        {"page": page, "unread": selectors.unread_notification_count(user=request.user)},
    )


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return default


@require_POST
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    notification = selectors.notification_for_user(user=request.user, pk=pk)
    if notification is None:
        raise Http404("No such notice.")
    services.mark_notification_read(notification=notification, user=request.user)
    return redirect(_safe_next(request, reverse("accounts:notification-list")))


@require_POST
def notification_read_all(request: HttpRequest) -> HttpResponse:
    count = services.mark_all_notifications_read(user=request.user)
    if count:
        messages.success(request, f"Marked {count} notice{'s' if count != 1 else ''} as read.")
    return redirect("accounts:notification-list")
