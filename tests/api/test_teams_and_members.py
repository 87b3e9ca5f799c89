"""POST /teams (reseller key), PUT /teams/{slug}/members/{email}, PUT and DELETE
/teams/{slug}/assignments/{email} (team key)."""

from __future__ import annotations

import pytest
from django.core import mail

from accounts.models import AuditEvent, Membership, Role, Team
from billing.models import FlexAssignment
from tests.api.conftest import error_of
from tests.factories import MembershipFactory, TeamFactory, UserFactory

TEAM = {
    "slug": "acme",
    "name": "Acme Engineering",
    "plan": "standard",
    "time_zone": "Europe/Berlin",
    "contract_start": "2026-01-01",
    "contract_end": "2026-12-31",
}


def member_url(email: str, team: str = "own-team") -> str:
    return f"/api/v1/teams/{team}/members/{email}"


def assignment_url(email: str, team: str = "own-team") -> str:
    return f"/api/v1/teams/{team}/assignments/{email}"


# --- POST /teams ---------------------------------------------------------------------------------


def test_a_reseller_key_creates_a_team_of_its_reseller(api, keys, personas):
    response = api.post("/api/v1/teams", TEAM, key=keys.reseller)

    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in TEAM} == TEAM
    assert body["reseller"] == "alder"
    assert body["created_at"].endswith(("+01:00", "+02:00"))
    team = Team.objects.get(slug="acme")
    assert team.reseller == personas.team.reseller
    assert AuditEvent.objects.filter(action="team.created", team=team).exists()


def test_creating_the_same_team_again_answers_200_with_it(api, keys):
    first = api.post("/api/v1/teams", TEAM, key=keys.reseller)
    again = api.post("/api/v1/teams", TEAM, key=keys.reseller)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Team.objects.filter(slug="acme").count() == 1


def test_a_taken_slug_with_other_data_is_409(api, keys):
    api.post("/api/v1/teams", TEAM, key=keys.reseller)

    response = api.post("/api/v1/teams", {**TEAM, "plan": "premium"}, key=keys.reseller)

    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"
    assert "slug" in error_of(response)["fields"]


def test_a_slug_taken_by_another_resellers_team_is_409(api, keys):
    response = api.post("/api/v1/teams", {**TEAM, "slug": "other-team"}, key=keys.reseller)

    assert response.status_code == 409


def test_a_team_key_cannot_create_teams(api, keys):
    response = api.post("/api/v1/teams", TEAM, key=keys.team)

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert not Team.objects.filter(slug="acme").exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"slug": "Not a slug!"}, "slug"),
        ({"plan": "gold"}, "plan"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"contract_start": "01/01/2026"}, "contract_start"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
    ],
)
def test_malformed_team_fields_are_400(api, keys, change, field):
    response = api.post("/api/v1/teams", {**TEAM, **change}, key=keys.reseller)

    assert response.status_code == 400
    assert field in error_of(response)["fields"]


def test_a_contract_ending_before_it_starts_is_refused_422(api, keys):
    response = api.post("/api/v1/teams", {**TEAM, "contract_end": "2025-12-31"}, key=keys.reseller)

    assert response.status_code == 422
    assert error_of(response)["fields"] == {"contract_end": "The contract must end after it starts."}


# --- PUT members --------------------------------------------------------------------------------


def test_a_new_person_is_invited_with_the_role(api, keys, personas, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.put(
            member_url("New.Person@Own.Example"),
            {"role": "report_viewer", "first_name": "Nia", "last_name": "New"},
            key=keys.team,
        )

    assert response.status_code == 201
    assert response.json() == {
        "team": "own-team",
        "email": "new.person@own.example",
        "first_name": "Nia",
        "last_name": "New",
        "role": "report_viewer",
        "invitation_pending": True,
    }
    assert Membership.objects.get(team=personas.team, user__email="new.person@own.example").role == Role.REPORT_VIEWER
    assert [m.to for m in mail.outbox] == [["new.person@own.example"]]


def test_an_existing_members_role_changes_200(api, keys, personas):
    response = api.put(member_url("member@own.example"), {"role": "secondary_admin"}, key=keys.team)

    assert response.status_code == 200
    assert response.json()["role"] == "secondary_admin"
    assert response.json()["invitation_pending"] is False
    assert personas.membership(personas.member).role == Role.SECONDARY_ADMIN


def test_the_same_role_again_changes_nothing(api, keys, personas):
    response = api.put(member_url("member@own.example"), {"role": "member"}, key=keys.team)

    assert response.status_code == 200
    assert not AuditEvent.objects.filter(action="member.role_changed").exists()


@pytest.mark.parametrize("email", ["secondary@own.example", "boss@own.example"])
def test_the_primary_admin_role_is_never_handed_over_through_the_api(api, keys, personas, email):
    response = api.put(member_url(email), {"role": "primary_admin"}, key=keys.team)

    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert personas.membership(personas.primary_admin).role == Role.PRIMARY_ADMIN
    assert not Membership.objects.filter(user__email="boss@own.example").exists()
    assert not AuditEvent.objects.filter(action="member.primary_admin_transferred").exists()


def test_a_team_without_a_primary_admin_gets_one_directly(api, keys):
    api.post("/api/v1/teams", TEAM, key=keys.reseller)
    from accounts import services

    _, team_key = services.create_api_key(team=Team.objects.get(slug="acme"), name="acme", actor=None)

    response = api.put(member_url("alex@acme.example", "acme"), {"role": "primary_admin"}, key=team_key)

    assert response.status_code == 201
    assert Membership.objects.get(team__slug="acme").role == Role.PRIMARY_ADMIN
    assert not AuditEvent.objects.filter(action="member.primary_admin_transferred").exists()


def test_the_primary_admins_role_cannot_be_lowered_422(api, keys, personas):
    response = api.put(member_url("primary@own.example"), {"role": "member"}, key=keys.team)

    assert response.status_code == 422
    assert error_of(response)["code"] == "refused"
    assert "role" in error_of(response)["fields"]
    assert personas.membership(personas.primary_admin).role == Role.PRIMARY_ADMIN


@pytest.mark.parametrize(
    ("email", "body", "field"),
    [
        ("member@own.example", {"role": "owner"}, "role"),
        ("member@own.example", {}, "role"),
        ("member@own.example", {"role": "member", "first_name": "x" * 151}, "first_name"),
        ("not-an-email", {"role": "member"}, "email"),
        ("a%00b@own.example", {"role": "member"}, "email"),
    ],
)
def test_malformed_member_requests_are_400(api, keys, email, body, field):
    response = api.put(member_url(email), body, key=keys.team)

    assert response.status_code == 400
    assert field in error_of(response)["fields"]


def test_a_reseller_key_cannot_manage_members(api, keys):
    response = api.put(member_url("x@own.example"), {"role": "member"}, key=keys.reseller)

    assert response.status_code == 403


def test_members_of_another_team_are_404(api, keys):
    response = api.put(member_url("x@own.example"), {"role": "member"}, key=keys.other_team)

    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert not Membership.objects.filter(user__email="x@own.example").exists()


def test_another_resellers_key_gets_404_too(api, keys):
    response = api.post("/api/v1/teams/own-team/packs", {"reference": "R", "tokens": 1}, key=keys.other_reseller)

    assert response.status_code == 404


# --- PUT / DELETE assignments ---------------------------------------------------------------------------


def test_assigning_all_products(api, keys, personas):
    response = api.put(assignment_url("member@own.example"), {"products": "all"}, key=keys.team)

    assert response.status_code == 200
    body = response.json()
    assert (body["team"], body["email"], body["products"]) == ("own-team", "member@own.example", "all")
    assert FlexAssignment.objects.get(user=personas.member, removed_at__isnull=True).all_products


def test_assigning_a_list_of_products_replaces_the_assignment(api, keys, personas):
    api.put(assignment_url("member@own.example"), {"products": "all"}, key=keys.team)

    response = api.put(assignment_url("member@own.example"), {"products": ["revit", "autocad"]}, key=keys.team)

    assert response.status_code == 200
    assert response.json()["products"] == ["autocad", "revit"]
    rows = FlexAssignment.objects.filter(user=personas.member).order_by("assigned_at", "id")
    assert [(r.all_products, r.removed_at is None) for r in rows] == [(True, False), (False, True)]


def test_unknown_product_codes_are_refused_422(api, keys):
    response = api.put(assignment_url("member@own.example"), {"products": ["autocad", "photoshop"]}, key=keys.team)

    assert response.status_code == 422
    assert "photoshop" in error_of(response)["fields"]["products"]


@pytest.mark.parametrize("products", [[], "some", None, [1, 2], ["x" * 65], [["autocad"]], {"all": True}, ["a\x00"]])
def test_malformed_products_are_400(api, keys, products):
    response = api.put(assignment_url("member@own.example"), {"products": products}, key=keys.team)

    assert response.status_code == 400
    assert "products" in error_of(response)["fields"]


def test_assigning_someone_who_is_not_a_member_is_404(api, keys):
    UserFactory(email="stranger@own.example")

    response = api.put(assignment_url("stranger@own.example"), {"products": "all"}, key=keys.team)

    assert response.status_code == 404


def test_deleting_the_assignment_ends_it(api, keys, personas):
    api.put(assignment_url("member@own.example"), {"products": "all"}, key=keys.team)

    response = api.delete(assignment_url("member@own.example"), key=keys.team)
    again = api.delete(assignment_url("member@own.example"), key=keys.team)

    assert (response.status_code, again.status_code) == (204, 204)
    assert not FlexAssignment.objects.filter(user=personas.member, removed_at__isnull=True).exists()
    assert AuditEvent.objects.filter(action="flex.removed").count() == 1


def test_deleting_for_someone_who_is_not_a_member_is_404(api, keys):
    assert api.delete(assignment_url("nobody@own.example"), key=keys.team).status_code == 404


def test_a_reseller_key_cannot_assign(api, keys):
    assert api.put(assignment_url("member@own.example"), {"products": "all"}, key=keys.reseller).status_code == 403
    assert api.delete(assignment_url("member@own.example"), key=keys.reseller).status_code == 403


def test_assignments_of_another_team_are_404(api, keys, personas):
    team = TeamFactory(slug="third", reseller=personas.team.reseller)
    MembershipFactory(team=team, user=personas.member)

    assert api.put(assignment_url("member@own.example", "third"), {"products": "all"}, key=keys.team).status_code == 404
    assert api.delete(assignment_url("member@other.example", "other-team"), key=keys.team).status_code == 404


def test_the_api_refuses_a_team_name_with_a_line_break(api, keys):
    body = {
        "slug": "evil",
        "name": "Evil\nCorp",
        "plan": "standard",
        "time_zone": "UTC",
        "contract_start": "2026-01-01",
        "contract_end": "2026-12-31",
    }

    response = api.post("/api/v1/teams", body, key=keys.reseller)

    assert response.status_code == 422
    assert "line breaks" in error_of(response)["fields"]["name"]
    assert not Team.objects.filter(slug="evil").exists()
