"""A key never outranks its maker (docs/api.md "Keys"): a team key made by a person acts
with that person's standing, checked at every use."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import AuditEvent, Role
from tests.api.conftest import error_of

BALANCE = "/api/v1/teams/own-team/balance"


def member_url(email: str) -> str:
    return f"/api/v1/teams/own-team/members/{email}"


def key_of(personas, who) -> str:
    return services.create_api_key(team=personas.team, name=f"key of {who.email}", actor=who)[1]


@pytest.mark.parametrize(
    ("role", "status"),
    [("primary_admin", 200), ("secondary_admin", 200), ("report_viewer", 401), ("member", 401)],
)
def test_a_key_works_only_while_its_maker_may_manage_keys(api, personas, role, status):
    key = key_of(personas, personas.by_role(role))

    assert api.get(BALANCE, key=key).status_code == status


def test_a_secondary_admins_key_cannot_make_them_primary_admin(api, personas):
    key = key_of(personas, personas.secondary_admin)

    response = api.put(member_url("secondary@own.example"), {"role": "primary_admin"}, key=key)

    assert response.status_code == 403
    assert personas.membership(personas.primary_admin).role == Role.PRIMARY_ADMIN
    assert personas.membership(personas.secondary_admin).role == Role.SECONDARY_ADMIN


def test_a_key_stops_working_when_its_maker_leaves_the_team(api, personas):
    key = key_of(personas, personas.secondary_admin)
    assert api.get(BALANCE, key=key).status_code == 200

    services.remove_member(membership=personas.membership(personas.secondary_admin), actor=personas.primary_admin)
    response = api.put(member_url("secondary@own.example"), {"role": "secondary_admin"}, key=key)

    assert response.status_code == 401
    assert "no longer an admin" in error_of(response)["message"]
    assert not personas.team.memberships.filter(user=personas.secondary_admin).exists()


def test_a_key_stops_working_when_its_maker_loses_the_admin_role_or_the_account(api, personas):
    key = key_of(personas, personas.secondary_admin)
    services.change_role(
        membership=personas.membership(personas.secondary_admin), role=Role.MEMBER, actor=personas.primary_admin
    )
    assert api.get(BALANCE, key=key).status_code == 401

    other = key_of(personas, personas.primary_admin)
    personas.primary_admin.is_active = False
    personas.primary_admin.save(update_fields=["is_active"])
    assert api.get(BALANCE, key=other).status_code == 401


def test_the_audit_trail_names_the_key_and_its_maker(api, personas):
    key = key_of(personas, personas.secondary_admin)

    api.put("/api/v1/teams/own-team/assignments/member@own.example", {"products": "all"}, key=key)

    event = AuditEvent.objects.get(action="flex.assigned")
    assert event.actor_email.startswith("API key “key of secondary@own.example”")
    assert event.actor_email.endswith("made by secondary@own.example")
