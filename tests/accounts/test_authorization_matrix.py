"""The authorization matrix: every page, every persona, own team and another team.

One row per page: the status each persona gets on the team's page ("team") and on the
same page of a team they have nothing to do with ("other_team"). Later features add rows.
"""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from django.urls import get_resolver, reverse
from django.utils import timezone

from accounts import services
from accounts.models import ApiKey, Membership
from billing import services as billing_services
from billing.models import FlexAssignment, LedgerEntry, TokenPack
from tests.factories import SalesRepFactory, TeamFactory, UserFactory

ROLES = ["primary_admin", "secondary_admin", "report_viewer", "member", "sales_rep", "outsider", "anonymous"]

# page -> (how to build its arguments, {role: status on the own team's page})
# For "other_team" every team role gets 404, the outsider (primary admin there) gets what
# a primary admin gets, and the anonymous visitor is sent to sign in (302).
ADMIN_ONLY = {
    "primary_admin": 200,
    "secondary_admin": 200,
    "report_viewer": 403,
    "member": 403,
    "sales_rep": 404,
    "outsider": 404,
    "anonymous": 302,
}
EVERY_MEMBER = {**ADMIN_ONLY, "report_viewer": 200, "member": 200}
# Billing & Orders: admins and report viewers (read-only), not members.
BILLING = {**ADMIN_ONLY, "report_viewer": 200}
PRIMARY_ONLY = {**ADMIN_ONLY, "secondary_admin": 403}
# Reporting > Flex token usage: admins and report viewers (By User on Standard is the upsell
# page, a 200 too: never an error page).
REPORTS = {**ADMIN_ONLY, "report_viewer": 200}
# A POST-only action opened with GET: who may use it gets 405, everybody else what they
# would get on an admin page (the permission is checked first, so nothing is revealed).
ADMIN_ONLY_POST = {**ADMIN_ONLY, "primary_admin": 405, "secondary_admin": 405}

TEAM_PAGES: dict[str, tuple[str, dict[str, int]]] = {
    "accounts:team-home": ("team", EVERY_MEMBER),
    "accounts:member-invite": ("team", ADMIN_ONLY),
    "accounts:member-remove": ("member", ADMIN_ONLY),
    "accounts:member-transfer": ("member", PRIMARY_ONLY),
    "accounts:team-settings": ("team", ADMIN_ONLY),
    "accounts:audit-log": ("team", ADMIN_ONLY),
    "accounts:api-keys": ("team", ADMIN_ONLY),
    "accounts:api-key-revoke": ("api_key", ADMIN_ONLY_POST),
    "accounts:alert-settings": ("team", ADMIN_ONLY),
    "billing:tokens": ("team", BILLING),
    "billing:my-usage": ("team", EVERY_MEMBER),
    # User Management's pages that show or change Flex (billing's).
    "billing:member-list": ("team", ADMIN_ONLY),
    "billing:member-export": ("team", ADMIN_ONLY),
    "billing:member-bulk": ("bulk", ADMIN_ONLY),
    "billing:member-import": ("team", ADMIN_ONLY),
    "billing:member-detail": ("member", ADMIN_ONLY),
    "billing:member-flex": ("member", ADMIN_ONLY_POST),
    "billing:member-flex-remove": ("member", ADMIN_ONLY_POST),
    "billing:flex-products": ("team", ADMIN_ONLY),
    "billing:flex-product": ("product", ADMIN_ONLY),
    # Reporting > Flex token usage (reporting's).
    "reporting:summary": ("team", REPORTS),
    "reporting:by-product": ("team", REPORTS),
    "reporting:product-detail": ("product", REPORTS),
    "reporting:by-user": ("team", REPORTS),
    "reporting:user-detail": ("report_user", REPORTS),
    "reporting:denials": ("team", REPORTS),
}
# Pages that only read: a POST changes nothing. Who may open the page gets 405; everybody
# else what a GET gets (the permission is checked first, so nothing is revealed).
READ_ONLY_PAGES = [
    "billing:tokens",
    "billing:my-usage",
    "reporting:summary",
    "reporting:by-product",
    "reporting:by-user",
    "reporting:denials",
]

# Pages outside any team.
NON_TEAM = {"primary_admin": 403, "secondary_admin": 403, "report_viewer": 403, "member": 403, "outsider": 403}
# The sales rep's pages (billing's): the rep of the team's reseller only; a customer's admin
# (or anybody else who is no sales rep) gets an explaining 403.
REP = {**NON_TEAM, "sales_rep": 200, "anonymous": 302}
REP_READ_ONLY = [
    "billing:customer-list",
    "billing:customer-export",
    "billing:customer-detail",
    "billing:customer-plan",
    "billing:orders",
    "billing:orders-export-csv",
    "billing:orders-export-xlsx",
]
OTHER_PAGES: dict[str, tuple[str, dict[str, int]]] = {
    "billing:customer-list": ("none", REP),
    "billing:customer-export": ("none", REP),
    "billing:customer-detail": ("customer", REP),
    "billing:customer-purchase": ("customer", REP),
    "billing:customer-move": ("customer", REP),
    "billing:customer-plan": ("customer", REP),
    "billing:orders": ("none", REP),
    "billing:orders-export-csv": ("none", REP),
    "billing:orders-export-xlsx": ("none", REP),
    # A customer's usage reports for its reseller's reps (reporting's): totals only.
    "reporting:customer-summary": ("customer", REP),
    "reporting:customer-by-product": ("customer", REP),
    "reporting:customer-product-detail": ("customer_product", REP),
    "reporting:customer-export": ("customer_export", REP),
    "accounts:profile": ("none", dict.fromkeys(ROLES, 200) | {"anonymous": 302}),
    "accounts:password-change": ("none", dict.fromkeys(ROLES, 200) | {"anonymous": 302}),
    "accounts:start": ("none", dict.fromkeys(ROLES, 302)),
    # Everybody has their own notices; the POST-only actions answer GET with 405.
    "accounts:notification-list": ("none", dict.fromkeys(ROLES, 200) | {"anonymous": 302}),
    "accounts:notification-read-all": ("none", dict.fromkeys(ROLES, 405) | {"anonymous": 302}),
    "accounts:notification-read": ("notification", dict.fromkeys(ROLES, 405) | {"anonymous": 302}),
}


def _args(kind: str, team, personas) -> list:
    if kind in ("team", "bulk"):
        return [team.slug]
    if kind == "product":
        return [team.slug, "autocad"]
    if kind == "member":
        # A plain member of that team, so that every page (remove, transfer) applies to them.
        membership = Membership.objects.filter(team=team, role="member").first()
        return [team.slug, membership.pk]
    if kind == "report_user":
        # A report's person: the team's plain member, by user id.
        membership = Membership.objects.filter(team=team, role="member").first()
        return [team.slug, membership.user_id]
    if kind == "api_key":
        key, _ = services.create_api_key(team=team, name="Matrix", actor=None)
        return [team.slug, key.pk]
    if kind == "customer":
        return [team.slug]
    if kind == "customer_product":
        return [team.slug, "autocad"]
    if kind == "customer_export":
        return [team.slug, "products", "xlsx"]
    if kind == "notification":
        [notice] = services.notify(users=[personas.primary_admin], team=team, kind="low_balance", title="Low", body="…")
        return [notice.pk]
    return []


def _query(kind: str, team) -> str:
    """The query a page needs besides its path: the bulk page, the team's plain member selected."""
    if kind == "bulk":
        membership = Membership.objects.filter(team=team, role="member").first()
        return f"?action=remove&member={membership.pk}"
    return ""


def _url(url_name: str, kind: str, team, personas) -> str:
    return reverse(url_name, args=_args(kind, team, personas)) + _query(kind, team)


def _client_for(client, personas, role: str):
    if role != "anonymous":
        client.force_login(personas.by_role(role))
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("target", ["team", "other_team"])
@pytest.mark.parametrize("url_name", sorted(TEAM_PAGES))
def test_team_page_access(client, personas, url_name, role, target):
    kind, expected_own = TEAM_PAGES[url_name]
    team = personas.team if target == "team" else personas.other_team
    if target == "team":
        expected = expected_own[role]
    elif role == "anonymous":
        expected = 302
    elif role == "outsider":
        expected = expected_own["primary_admin"]
    else:
        expected = 404
    response = _client_for(client, personas, role).get(_url(url_name, kind, team, personas))
    assert response.status_code == expected, f"{url_name} as {role} on {target}"
    if expected == 302:
        assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url_name", sorted(OTHER_PAGES))
def test_other_page_access(client, personas, url_name, role):
    kind, expected = OTHER_PAGES[url_name]
    response = _client_for(client, personas, role).get(reverse(url_name, args=_args(kind, personas.team, personas)))
    assert response.status_code == expected[role], f"{url_name} as {role}"


CUSTOMER_PAGES = [name for name, (kind, _) in OTHER_PAGES.items() if kind.startswith("customer")]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url_name", CUSTOMER_PAGES)
def test_sales_rep_cannot_open_a_customer_of_another_reseller(client, personas, url_name, role):
    kind, _ = OTHER_PAGES[url_name]
    response = _client_for(client, personas, role).get(
        reverse(url_name, args=_args(kind, personas.other_team, personas))
    )
    expected = {"sales_rep": 404, "anonymous": 302}.get(role, 403)
    assert response.status_code == expected, f"{url_name} as {role}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url_name", [n for n in CUSTOMER_PAGES if n.startswith("reporting:")])
def test_a_customers_reports_refuse_a_post(client, personas, url_name, role):
    kind, expected = OTHER_PAGES[url_name]
    response = _client_for(client, personas, role).post(reverse(url_name, args=_args(kind, personas.team, personas)))
    assert response.status_code == (405 if expected[role] == 200 else expected[role]), f"POST {url_name} as {role}"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url_name", REP_READ_ONLY)
def test_the_reps_read_only_pages_refuse_a_post(client, personas, role, url_name):
    kind = OTHER_PAGES[url_name][0]
    response = _client_for(client, personas, role).post(reverse(url_name, args=_args(kind, personas.team, personas)))
    assert response.status_code == {"sales_rep": 405, "anonymous": 302}.get(role, 403)


@pytest.fixture
def sister(personas):
    """A second customer of each reseller (a pack moves between teams of one reseller), and
    a pack on each persona team."""
    sisters = {
        team.slug: TeamFactory(name=f"{team.name} Sister", slug=f"{team.slug}-sister", reseller=team.reseller)
        for team in (personas.team, personas.other_team)
    }
    at = timezone.now() - timedelta(days=1)
    for team in (personas.team, personas.other_team):
        billing_services.record_purchase(
            team=team, reference=f"PO-{team.slug}", tokens=100, purchased_at=at, now=at, notify_admins=False
        )
    return sisters


def _rep_post(url_name: str, team, sisters) -> dict:
    if url_name == "billing:customer-purchase":
        return {"tokens": "10", "reference": f"PO-NEW-{team.slug}"}
    pack = TokenPack.objects.get(reference=f"PO-{team.slug}")
    return {"pack": pack.pk, "to_team": sisters[team.slug].pk}


def _rep_post_done(url_name: str, team, sisters) -> bool:
    if url_name == "billing:customer-purchase":
        return TokenPack.objects.filter(reference=f"PO-NEW-{team.slug}").exists()
    return TokenPack.objects.get(reference=f"PO-{team.slug}").team_id == sisters[team.slug].pk


@pytest.mark.parametrize("role", [*ROLES, "other_reseller_rep"])
@pytest.mark.parametrize("target", ["team", "other_team"])
@pytest.mark.parametrize("url_name", ["billing:customer-purchase", "billing:customer-move"])
def test_the_reps_posts_follow_the_same_rules(client, personas, sister, url_name, role, target):
    """Recording a purchase and moving a pack: the rep of the team's reseller does it; the
    rep of another reseller gets a 404 (the team's existence is not revealed), everybody
    else (customer admins included) the explaining 403; nothing is written for them."""
    team = personas.team if target == "team" else personas.other_team
    if role == "other_reseller_rep":
        # A sales rep of the reseller that serves the *other* team of this test.
        foreign = personas.other_team if target == "team" else personas.team
        user = UserFactory(email="rep@elsewhere.example")
        SalesRepFactory(user=user, reseller=foreign.reseller)
        client.force_login(user)
    else:
        _client_for(client, personas, role)
    entries = LedgerEntry.objects.count()
    response = client.post(reverse(url_name, args=[team.slug]), _rep_post(url_name, team, sister))
    if role == "sales_rep" and target == "team":
        assert response.status_code == 302, response.content.decode()[:500]
        assert _rep_post_done(url_name, team, sister)
        return
    expected = {"sales_rep": 404, "other_reseller_rep": 404, "anonymous": 302}.get(role, 403)
    assert response.status_code == expected, f"{url_name} as {role} on {target}"
    assert not _rep_post_done(url_name, team, sister)
    assert LedgerEntry.objects.count() == entries


@pytest.mark.parametrize(
    "url_name,data",
    [("accounts:member-role", {"role": "report_viewer"}), ("accounts:member-resend", {})],
)
@pytest.mark.parametrize("role", ROLES)
def test_post_only_actions_follow_the_same_rules(client, personas, url_name, data, role):
    membership = Membership.objects.get(team=personas.team, user=personas.member)
    response = _client_for(client, personas, role).post(
        reverse(url_name, args=[personas.team.slug, membership.pk]), data
    )
    allowed = ADMIN_ONLY[role] == 200
    if allowed:
        assert response.status_code == 302  # done, or refused with a message, then back to the member
    else:
        assert response.status_code == ADMIN_ONLY[role]
    membership.refresh_from_db()
    if not allowed:
        assert membership.role == "member"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("target", ["team", "other_team"])
def test_revoking_an_api_key_follows_the_same_rules(client, personas, role, target):
    team = personas.team if target == "team" else personas.other_team
    key, _ = services.create_api_key(team=team, name="CI", actor=None)
    response = _client_for(client, personas, role).post(reverse("accounts:api-key-revoke", args=[team.slug, key.pk]))
    # The same expectations as the pages above; "other_team" is the outsider's own team.
    if target == "team":
        allowed, refused = ADMIN_ONLY[role] == 200, ADMIN_ONLY[role]
    else:
        allowed, refused = role == "outsider", 302 if role == "anonymous" else 404
    if allowed:
        assert response.status_code == 302  # done, then back to the keys page
        assert response.url == reverse("accounts:api-keys", args=[team.slug])
    else:
        assert response.status_code == refused, f"revoke as {role} on {target}"
        if refused == 302:
            assert response.url.startswith(reverse("login"))
    assert ApiKey.objects.get(pk=key.pk).is_active is not allowed


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("target", ["team", "other_team"])
@pytest.mark.parametrize("url_name", READ_ONLY_PAGES)
def test_read_only_pages_refuse_a_post(client, personas, url_name, role, target):
    kind, expected_own = TEAM_PAGES[url_name]
    team = personas.team if target == "team" else personas.other_team
    if role == "anonymous":
        expected = 302
    elif target == "team":
        expected = 405 if expected_own[role] == 200 else expected_own[role]
    else:
        expected = 405 if role == "outsider" else 404
    response = _client_for(client, personas, role).post(reverse(url_name, args=_args(kind, team, personas)), {})
    assert response.status_code == expected, f"POST {url_name} as {role} on {target}"


# The POSTs that change Flex: (url name, kind, form data, how to tell that it changed).
FLEX_POSTS = [
    ("billing:member-flex", "member", {"scope": "all"}),
    ("billing:member-flex-remove", "member", {}),
    ("billing:member-bulk", "team", {"action": "assign", "scope": "all"}),
    ("billing:member-bulk", "team", {"action": "remove"}),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("target", ["team", "other_team"])
@pytest.mark.parametrize("url_name,kind,data", FLEX_POSTS)
def test_flex_changes_follow_the_same_rules(client, personas, url_name, kind, data, role, target):
    """Who may change Flex does; everybody else gets what they get on the pages (403 that
    explains, 404 for another team, the sign-in page) and nothing changes."""
    team = personas.team if target == "team" else personas.other_team
    membership = Membership.objects.filter(team=team, role="member").first()
    removing = url_name == "billing:member-flex-remove" or data.get("action") == "remove"
    if removing:
        billing_services.assign_flex(team=team, user=membership.user, products=["revit"], actor=None)
    before = list(FlexAssignment.objects.values_list("pk", "removed_at"))
    if kind == "team":
        data = {**data, "member": [membership.pk]}
    response = _client_for(client, personas, role).post(reverse(url_name, args=_args(kind, team, personas)), data)
    if target == "team":
        allowed, refused = ADMIN_ONLY[role] == 200, ADMIN_ONLY[role]
    else:
        allowed, refused = role == "outsider", 302 if role == "anonymous" else 404
    now = FlexAssignment.objects.filter(team=team, user=membership.user, removed_at__isnull=True).first()
    if allowed:
        assert response.status_code == 302, f"{url_name} {data} as {role} on {target}"
        assert (now is None) if removing else (now is not None and now.all_products)
    else:
        assert response.status_code == refused, f"{url_name} {data} as {role} on {target}"
        assert list(FlexAssignment.objects.values_list("pk", "removed_at")) == before
        if refused == 302:
            assert response.url.startswith(reverse("login"))


def test_a_member_of_another_team_is_not_found_through_your_team(admin_client, personas):
    foreign = Membership.objects.get(team=personas.other_team, user=personas.outsider)
    for name in ("billing:member-detail", "accounts:member-remove", "accounts:member-transfer"):
        response = admin_client.get(reverse(name, args=[personas.team.slug, foreign.pk]))
        assert response.status_code == 404
    response = admin_client.post(reverse("accounts:member-remove", args=[personas.team.slug, foreign.pk]))
    assert response.status_code == 404
    assert Membership.objects.filter(pk=foreign.pk).exists()


@pytest.mark.parametrize("role,label", [("report_viewer", "report viewer"), ("member", "member")])
@pytest.mark.parametrize("url_name", ["billing:member-list", "billing:flex-products", "billing:member-import"])
def test_forbidden_page_explains_itself(client, personas, url_name, role, label):
    client.force_login(personas.by_role(role))
    response = client.get(reverse(url_name, args=[personas.team.slug]))
    assert response.status_code == 403
    assert f"As a {label} you can't manage the team's users" in html.unescape(response.content.decode())


def test_a_member_opening_billing_gets_an_explaining_403(client, personas):
    client.force_login(personas.member)
    response = client.get(reverse("billing:tokens", args=[personas.team.slug]))
    assert response.status_code == 403
    body = html.unescape(response.content.decode())
    assert "As a member you can't see the team's token balance, packs and token events" in body
    assert "Ask an admin of Own Team" in body


@pytest.mark.parametrize(
    "url_name", ["reporting:summary", "reporting:by-product", "reporting:by-user", "reporting:denials"]
)
def test_a_member_opening_a_report_gets_an_explaining_403(client, personas, url_name):
    client.force_login(personas.member)
    response = client.get(reverse(url_name, args=[personas.team.slug]))
    assert response.status_code == 403
    body = html.unescape(response.content.decode())
    assert "As a member you can't see the team's usage reports" in body
    assert "Ask an admin of Own Team" in body


def test_a_person_of_another_team_is_not_found_in_your_reports(client, personas):
    personas.team.plan = "premium"
    personas.team.save(update_fields=["plan"])
    client.force_login(personas.report_viewer)
    response = client.get(reverse("reporting:user-detail", args=[personas.team.slug, personas.outsider.pk]))
    assert response.status_code == 404


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("target", ["team", "other_team"])
@pytest.mark.parametrize("report", ["summary", "products", "users", "denials"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_report_exports_follow_the_report_pages(client, personas, report, fmt, role, target):
    """Exports as their reports; By User's only on Premium (the own team is Standard: an
    explaining 403 for those who may see reports; the other team is Premium)."""
    team = personas.team if target == "team" else personas.other_team
    if target == "team":
        expected = REPORTS[role]
        if report == "users" and expected == 200:
            expected = 403
    elif role == "anonymous":
        expected = 302
    elif role == "outsider":
        expected = REPORTS["primary_admin"]
    else:
        expected = 404
    url = reverse("reporting:export", args=[team.slug, report, fmt])
    response = _client_for(client, personas, role).get(url)
    assert response.status_code == expected, f"{report}.{fmt} as {role} on {target}"
    if expected == 200:
        assert response["Content-Disposition"].startswith("attachment;")


# Pages covered elsewhere: the report exports and the POST-only member actions (the tests
# above), and the page after a password change (no data: tests/accounts/test_views.py).
COVERED_ELSEWHERE = {
    "reporting:export",
    "accounts:member-resend",
    "accounts:member-role",
    "accounts:password-change-done",
}


def test_every_portal_page_is_in_the_matrix():
    """A new page of billing, reporting or accounts gets a row here, or is named above."""
    names = set()
    for namespace in ("accounts", "billing", "reporting"):
        resolver = get_resolver().namespace_dict[namespace][1]
        names |= {f"{namespace}:{name}" for name in resolver.reverse_dict if isinstance(name, str)}
    missing = names - set(TEAM_PAGES) - set(OTHER_PAGES) - COVERED_ELSEWHERE
    assert names >= COVERED_ELSEWHERE
    assert not missing, f"pages missing from the authorization matrix: {sorted(missing)}"
