"""The CSV import's flex column: previewed like the other columns, a clear error per bad
row, and nothing applied half-way (invitations and Flex in one transaction)."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.exceptions import ValidationError

from accounts.models import AuditEvent, Membership, User
from billing import services
from billing.models import FlexAssignment


def preview(personas, text: str):
    return services.preview_member_import(team=personas.team, data=text.encode())


def scope(personas, email: str):
    row = FlexAssignment.objects.filter(team=personas.team, user__email=email, removed_at__isnull=True).first()
    return None if row is None else ("all" if row.all_products else row.products)


GOOD = (
    "First name,Last name,Email,Role,Flex\n"
    "Ada,Lovelace,ada@example.com,Member,all\n"
    "Alan,Turing,alan@example.com,Member,autocad;revit\n"
    "Grace,Hopper,grace@example.com,Report viewer,\n"
    "Edsger,Dijkstra,edsger@example.com,Member,Revit; AUTOCAD\n"
)


def test_the_flex_column_is_previewed_with_product_names(personas):
    result = preview(personas, GOOD)
    assert result.ok
    assert [(r.person.email, r.flex, r.flex_label) for r in result.rows] == [
        ("ada@example.com", "all", "All products"),
        ("alan@example.com", ["autocad", "revit"], "AutoCAD; Revit"),
        ("grace@example.com", None, ""),
        # Names are understood too, in any case, and the codes come back sorted.
        ("edsger@example.com", ["autocad", "revit"], "AutoCAD; Revit"),
    ]
    assert result.flex_count == 3
    assert not User.objects.filter(email="ada@example.com").exists()  # a preview writes nothing


def test_importing_invites_everybody_and_assigns_their_flex(personas):
    memberships = services.import_members(team=personas.team, data=GOOD.encode(), actor=personas.primary_admin)
    assert len(memberships) == 4
    assert scope(personas, "ada@example.com") == "all"
    assert scope(personas, "alan@example.com") == ["autocad", "revit"]
    assert scope(personas, "grace@example.com") is None
    assert scope(personas, "edsger@example.com") == ["autocad", "revit"]
    assigned = AuditEvent.objects.filter(team=personas.team, action="flex.assigned")
    assert assigned.count() == 3 and {e.actor_email for e in assigned} == {personas.primary_admin.email}
    assert AuditEvent.objects.filter(team=personas.team, action="member.bulk_invited").count() == 1


def test_an_unknown_product_code_is_an_error_on_its_row_and_nothing_is_imported(personas):
    text = (
        "First name,Last name,Email,Flex\n"
        "Ada,Lovelace,ada@example.com,all\n"
        "Bad,Code,bad@example.com,autocad;maya;3dsmax\n"
        "Bad,Mail,not-an-email,revit\n"
    )
    result = preview(personas, text)
    assert not result.ok
    problems = {row.person.line: "; ".join(row.errors) for row in result.bad_rows}
    assert set(problems) == {3, 4}
    assert "unknown product codes “maya”, “3dsmax” in the Flex column" in problems[3]
    assert "“not-an-email” is not a valid e-mail address" in problems[4]

    with pytest.raises(ValidationError) as refused:
        services.import_members(team=personas.team, data=text.encode(), actor=personas.primary_admin)
    assert "Nothing was imported" in refused.value.messages[0]
    assert any("line 3" in m and "maya" in m for m in refused.value.messages)
    assert not User.objects.filter(email__in=["ada@example.com", "bad@example.com"]).exists()
    assert not FlexAssignment.objects.filter(team=personas.team).exists()


def test_a_failure_while_assigning_undoes_the_invitations(personas):
    before = Membership.objects.filter(team=personas.team).count()
    with (
        mock.patch(
            "billing.services.member_import.bulk_assign_flex", side_effect=ValidationError("the rate sheet changed")
        ),
        pytest.raises(ValidationError),
    ):
        services.import_members(team=personas.team, data=GOOD.encode(), actor=personas.primary_admin)
    assert Membership.objects.filter(team=personas.team).count() == before
    assert not User.objects.filter(email="ada@example.com").exists()
    assert not AuditEvent.objects.filter(action__in=["member.invited", "flex.assigned"]).exists()


def test_a_file_without_a_flex_column_imports_people_without_flex(personas):
    services.import_members(
        team=personas.team, data=b"First name,Last name,Email\nAda,Lovelace,ada@example.com\n", actor=None
    )
    assert Membership.objects.filter(team=personas.team, user__email="ada@example.com").exists()
    assert scope(personas, "ada@example.com") is None


def test_the_people_checks_stay_accounts_and_the_flex_column_is_theirs_unchecked(personas):
    from accounts import services as account_services

    people = account_services.parse_member_csv(
        team=personas.team,
        data=b"First name,Last name,Email,Flex\nAda,Lovelace,ada@example.com,maya\n",
        extra_columns=("flex",),
    )
    assert people.ok and people.rows[0].extra == {"flex": "maya"}
