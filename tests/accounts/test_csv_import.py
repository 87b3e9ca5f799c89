"""Bulk invitations from CSV: every bad row is reported, and nothing is applied half-way."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts import services
from accounts.models import Membership, Role


def preview(personas, text: str | bytes):
    data = text.encode() if isinstance(text, str) else text
    return services.parse_member_csv(team=personas.team, data=data)


def test_a_clean_file_previews_every_row_with_roles(personas):
    result = preview(
        personas,
        "First name,Last name,Email,Role\n"
        "Ada,Lovelace,ada@example.com,Member\n"
        "Grace,Hopper,GRACE@example.com,Report viewer\n"
        "Alan,Turing,alan@example.com,\n",
    )
    assert result.ok
    assert [(r.email, r.role) for r in result.rows] == [
        ("ada@example.com", Role.MEMBER),
        ("grace@example.com", Role.REPORT_VIEWER),
        ("alan@example.com", Role.MEMBER),
    ]


def test_the_role_column_is_optional_and_semicolons_and_a_bom_are_understood(personas):
    result = preview(personas, "\ufeffFirst name;Last name;E-mail\nAda;Lovelace;ada@example.com\n".encode())
    assert result.ok and result.rows[0].role == Role.MEMBER


def test_each_bad_row_is_named_with_its_line_and_reason(personas):
    result = preview(
        personas,
        "First name,Last name,Email,Role\n"
        "Ada,Lovelace,ada@example.com,Member\n"  # line 2: fine
        "Bad,Mail,not-an-email,Member\n"  # line 3
        "Un,Known,un@example.com,Wizard\n"  # line 4
        "Dup,Licate,ada@example.com,Member\n"  # line 5
        "Al,Ready,member@own.example,Member\n"  # line 6
        "Big,Boss,boss@example.com,Primary admin\n"  # line 7
        "No,Mail,,Member\n",  # line 8
    )
    assert not result.ok
    problems = {row.line: " ".join(row.errors) for row in result.bad_rows}
    assert set(problems) == {3, 4, 5, 6, 7, 8}
    assert "not a valid e-mail address" in problems[3]
    assert "unknown role “Wizard”" in problems[4]
    assert "also appears on line 2" in problems[5]
    assert "already a member" in problems[6]
    assert "primary admin can't be set by import" in problems[7]
    assert "e-mail is missing" in problems[8]


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "The file is empty"),
        (b"Name,Mail\nAda,ada@example.com\n", "missing: First name, Last name, Email"),
        (b"First name,Last name,Email\n", "nobody in it"),
        ("First name,Last name,Email\nÄda,L,a@example.com\n".encode("latin-1"), "not UTF-8"),
        (b"\x00\x01\x02PK\x03\x04", "missing"),
    ],
)
def test_a_file_that_is_not_a_member_list_is_refused_as_a_whole(personas, data, message):
    result = preview(personas, data)
    assert not result.ok
    assert any(message in error for error in result.errors)


def test_importing_a_file_with_any_bad_row_invites_nobody(personas):
    before = Membership.objects.count()
    with pytest.raises(ValidationError) as error:
        services.bulk_invite(
            team=personas.team,
            data=b"First name,Last name,Email\nAda,Lovelace,ada@example.com\nBad,Row,nope\n",
            actor=personas.primary_admin,
        )
    assert "line 3" in " ".join(error.value.messages)
    assert Membership.objects.count() == before


def test_importing_a_clean_file_invites_everyone(personas):
    memberships = services.bulk_invite(
        team=personas.team,
        data=b"First name,Last name,Email,Role\n"
        b"Ada,Lovelace,ada@example.com,Secondary admin\n"
        b"Alan,Turing,alan@example.com,\n",
        actor=personas.primary_admin,
    )
    assert {(m.user.email, m.role) for m in memberships} == {
        ("ada@example.com", Role.SECONDARY_ADMIN),
        ("alan@example.com", Role.MEMBER),
    }
    assert memberships[0].user.first_name == "Ada"


def test_too_many_rows_are_refused(personas, settings):
    settings.FLEX_CSV_MAX_ROWS = 2
    rows = "".join(f"P,{i},p{i}@example.com\n" for i in range(3))
    result = preview(personas, "First name,Last name,Email\n" + rows)
    assert not result.ok and "at most 2" in result.errors[0]
