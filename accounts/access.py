"""The one place that decides who may see and do what.

Every team page goes through :func:`team_view`; every reseller page through
:func:`rep_view`. Another team's object is a 404 (its existence is not revealed); a page
of your own team that your role may not use is a 403 page that says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey, Membership, Reseller, Role, Team, User


class Perm(StrEnum):
    VIEW_TEAM = "view_team"
    MANAGE_MEMBERS = "manage_members"
    TRANSFER_PRIMARY_ADMIN = "transfer_primary_admin"
    MANAGE_SETTINGS = "manage_settings"
    VIEW_AUDIT = "view_audit"
    MANAGE_API_KEYS = "manage_api_keys"
    VIEW_BILLING = "view_billing"
    VIEW_REPORTS = "view_reports"


PERM_DESCRIPTIONS = {
    Perm.VIEW_TEAM: "see this team",
    Perm.MANAGE_MEMBERS: "manage the team's users",
    Perm.TRANSFER_PRIMARY_ADMIN: "hand over the primary admin role",
    Perm.MANAGE_SETTINGS: "change the team's settings",
    Perm.VIEW_AUDIT: "see the team's activity log",
    Perm.MANAGE_API_KEYS: "manage the team's API keys",
    Perm.VIEW_BILLING: "see the team's token balance, packs and token events",
    Perm.VIEW_REPORTS: "see the team's usage reports",
}

_ADMIN = {
    Perm.VIEW_TEAM,
    Perm.MANAGE_MEMBERS,
    Perm.MANAGE_SETTINGS,
    Perm.VIEW_AUDIT,
    Perm.MANAGE_API_KEYS,
    Perm.VIEW_BILLING,
    Perm.VIEW_REPORTS,
}
ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.PRIMARY_ADMIN: frozenset(_ADMIN | {Perm.TRANSFER_PRIMARY_ADMIN}),
    Role.SECONDARY_ADMIN: frozenset(_ADMIN),
    # Managers watch balances and reports; they change nothing (domain.md "People").
    Role.REPORT_VIEWER: frozenset({Perm.VIEW_TEAM, Perm.VIEW_BILLING, Perm.VIEW_REPORTS}),
    Role.MEMBER: frozenset({Perm.VIEW_TEAM}),
}


def role_can(role: str, perm: Perm) -> bool:
    return perm in ROLE_PERMISSIONS.get(role, frozenset())


@dataclass
class TeamAccess:
    """The signed-in user's standing in one team, as every team view sees it."""

    team: Team
    membership: Membership
    user: User

    @property
    def role(self) -> str:
        return self.membership.role

    def can(self, perm: Perm | str) -> bool:
        return role_can(self.role, Perm(perm))


@dataclass
class NavEntry:
    label: str
    url: str
    icon: str
    active: bool = False
    children: list[NavEntry] = field(default_factory=list)


def team_access(user: User, slug: str, perm: Perm | None = Perm.VIEW_TEAM) -> TeamAccess:
    membership = (
        Membership.objects.joined()
        .select_related("team__reseller", "user")
        .filter(team__slug=slug, user_id=user.pk, user__is_active=True)
        .first()
    )
    if membership is None:
        raise Http404("No such team.")
    access = TeamAccess(team=membership.team, membership=membership, user=user)
    if perm is not None and not access.can(perm):
        who = "the primary admin" if perm == Perm.TRANSFER_PRIMARY_ADMIN else "an admin"
        raise PermissionDenied(
            f"As a {membership.get_role_display().lower()} you can't {PERM_DESCRIPTIONS[perm]}. "
            f"Ask {who} of {membership.team.name} if you need to."
        )
    return access


def api_key_refusal(key: ApiKey) -> str | None:
    """Why a key may no longer act, or None. A key never outranks its maker: a team key made
    by a person works only while that person is active and may still manage the team's API
    keys (an admin of the team); a key whose maker left or lost the role stops working.
    Integration keys (made by the ``create_api_key`` command) act as an admin."""
    if key.integration:
        return None
    maker = key.created_by
    if maker is None or not maker.is_active:
        return "The API key's maker no longer has an active account, so the key no longer works."
    if key.team_id is None:
        return "Only the create_api_key command makes reseller keys; this key does not work."
    role = (
        Membership.objects.joined().filter(team_id=key.team_id, user_id=maker.pk).values_list("role", flat=True).first()
    )
    if role is None or not role_can(role, Perm.MANAGE_API_KEYS):
        return f"The API key's maker ({maker.email}) is no longer an admin of the team, so the key no longer works."
    return None


def team_view(perm: Perm = Perm.VIEW_TEAM) -> Callable:
    """Decorate ``view(request, access, ...)`` reached by a URL with ``<slug:team>``."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, team: str, *args: Any, **kwargs: Any) -> HttpResponse:
            access = team_access(request.user, team, perm=None)
            request.team_access = access  # the shell (navigation, switcher) reads it
            # Written only when it changes: an unchanged session is not saved again.
            if request.session.get("last_team") != access.team.slug:
                request.session["last_team"] = access.team.slug
            if not access.can(perm):
                team_access(request.user, team, perm)  # raises the explaining 403
            # Times on a team's pages are shown in the team's time zone.
            with timezone.override(access.team.tz):
                return view(request, access, *args, **kwargs)

        return wrapped

    return decorator


def rep_resellers(user: User) -> list[Reseller]:
    if not user.is_authenticated:
        return []
    return list(Reseller.objects.filter(sales_reps__user_id=user.pk).distinct())


def customer_teams(user: User):
    """The teams served by the resellers the user is a sales rep of."""
    return Team.objects.filter(reseller__sales_reps__user_id=user.pk).distinct()


def rep_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate a sales-rep page; a person who is no sales rep gets an explaining 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        resellers = rep_resellers(request.user)
        if not resellers:
            raise PermissionDenied("Customers are shown to reseller sales reps only.")
        request.rep_resellers = resellers
        return view(request, *args, **kwargs)

    return wrapped


def customer_for_rep(user: User, slug: str) -> Team:
    team = customer_teams(user).select_related("reseller").filter(slug=slug).first()
    if team is None:
        raise Http404("No such customer.")
    return team


def customer_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate ``view(request, team, ...)``, a sales rep's page about one customer, reached
    by a URL with ``<slug:team>``: a person who is no sales rep gets ``rep_view``'s explaining
    403, a team the rep's resellers don't serve a 404 (its existence is not revealed). Times
    on the page are the customer's (its time zone is activated)."""

    @rep_view
    @wraps(view)
    def wrapped(request: HttpRequest, team: str, *args: Any, **kwargs: Any) -> HttpResponse:
        customer = customer_for_rep(request.user, team)
        with timezone.override(customer.tz):
            return view(request, customer, *args, **kwargs)

    return wrapped


def navigation(request: HttpRequest, access: TeamAccess | None = None) -> list[NavEntry]:
    """The left navigation: each role sees only what it may use."""
    entries: list[NavEntry] = []
    match = request.resolver_match
    url_name = f"{match.namespace}:{match.url_name}" if match and match.namespace else (match.url_name if match else "")
    access = access or getattr(request, "team_access", None)
    if access is not None:
        slug = access.team.slug
        team_pages = [
            ("Home", "accounts:team-home", "home", Perm.VIEW_TEAM, ("accounts:team-home",)),
            # User Management's list and person pages are billing's (they show Flex): named
            # here as strings, the one reference upwards the layers allow.
            (
                "User Management",
                "billing:member-list",
                "users",
                Perm.MANAGE_MEMBERS,
                (
                    "billing:member-list",
                    "billing:member-detail",
                    "billing:member-bulk",
                    "billing:member-import",
                    "billing:flex-products",
                    "billing:flex-product",
                    "accounts:member-invite",
                    "accounts:member-remove",
                    "accounts:member-transfer",
                ),
            ),
            # Billing's pages, named by their URL names only (accounts never imports billing).
            ("Billing & Orders", "billing:tokens", "billing", Perm.VIEW_BILLING, ("billing:tokens",)),
            # Reporting's pages, by URL name only (accounts never imports reporting).
            (
                "Reporting",
                "reporting:summary",
                "reports",
                Perm.VIEW_REPORTS,
                (
                    "reporting:summary",
                    "reporting:by-product",
                    "reporting:product-detail",
                    "reporting:by-user",
                    "reporting:user-detail",
                    "reporting:denials",
                ),
            ),
            ("My usage", "billing:my-usage", "usage", Perm.VIEW_TEAM, ("billing:my-usage",)),
            (
                "Settings",
                "accounts:team-settings",
                "settings",
                Perm.MANAGE_SETTINGS,
                (
                    "accounts:team-settings",
                    "accounts:audit-log",
                    "accounts:api-keys",
                    "accounts:api-key-revoke",
                    "accounts:alert-settings",
                ),
            ),
        ]
        for label, name, icon, perm, names in team_pages:
            if access.can(perm):
                entries.append(NavEntry(label, reverse(name, args=[slug]), icon, url_name in names))
    if getattr(request, "rep_resellers", None) or rep_resellers(request.user):
        # The sales rep's pages are billing's (Customers, a customer, purchases, moves,
        # Orders) and reporting's (a customer's usage reports): named by URL name only.
        customer_pages = url_name.startswith(("billing:customer", "reporting:customer"))
        entries.append(NavEntry("Customers", reverse("billing:customer-list"), "customers", customer_pages))
        entries.append(NavEntry("Orders", reverse("billing:orders"), "billing", url_name.startswith("billing:order")))
    return entries


def sign_in_identity(request: HttpRequest, credentials: dict | None = None) -> str:
    """Who a sign-in attempt is for, as the lockout counts it (``AXES_USERNAME_CALLABLE``):
    the e-mail as sign-in itself reads it, stripped and in lower case, so that no spelling
    of one address (``GUS@…``, `` gus@…``) escapes the count."""
    if credentials:
        raw = credentials.get("username") or credentials.get("email") or ""
    else:
        raw = request.POST.get("username", "")
    return str(raw).strip().lower()
