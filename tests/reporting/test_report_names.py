"""The team setting "Display names and e-mail addresses in reports": on by default, changed
by admins in Settings (audited); off, every report, drill-down and export shows a stable
pseudonym per person instead."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from accounts.models import AuditEvent

PAGES = [
    ("reporting:summary", ()),
    ("reporting:by-product", ()),
    ("reporting:product-detail", ("autocad",)),
    ("reporting:by-user", ()),
    ("reporting:user-detail", ("member",)),
    ("reporting:denials", ()),
]


def _turn_names_off(client, personas) -> None:
    team = personas.team
    response = client.post(
        reverse("accounts:team-settings", args=[team.slug]),
        {"name": team.name, "time_zone": team.time_zone},  # the box unticked
    )
    assert response.status_code == 302


def test_names_are_shown_by_default(admin_client, personas, premium_usage):
    assert personas.team.report_names is True
    body = html.unescape(admin_client.get(reverse("reporting:by-user", args=[personas.team.slug])).content.decode())
    assert "Mia Member" in body


def test_an_admin_turns_names_off_in_settings_and_it_is_audited(admin_client, personas):
    _turn_names_off(admin_client, personas)
    personas.team.refresh_from_db()
    assert personas.team.report_names is False
    event = AuditEvent.objects.filter(team=personas.team, action="team.settings_changed").latest("pk")
    assert event.details == {"report_names": [True, False]}


def _people(personas) -> list[str]:
    people = (personas.member, personas.report_viewer, personas.secondary_admin)
    return [u.email for u in people] + [f"{u.first_name} {u.last_name}" for u in people]


@pytest.mark.parametrize("name,args", PAGES)
def test_with_names_off_reports_show_pseudonyms(admin_client, personas, premium_usage, name, args):
    _turn_names_off(admin_client, personas)
    args = [personas.member.pk if a == "member" else a for a in args]
    body = html.unescape(
        admin_client.get(reverse(name, args=[personas.team.slug, *args]) + "?range=all").content.decode()
    )
    for shown in _people(personas):
        assert shown not in body, f"{shown} on {name}"
    if name in ("reporting:by-user", "reporting:user-detail"):
        assert f"User {personas.member.pk}" in body
    if name == "reporting:denials":
        assert f"User {personas.secondary_admin.pk}" in body


@pytest.mark.parametrize("report", ["users", "denials"])
def test_with_names_off_exports_show_the_same_pseudonyms(admin_client, personas, premium_usage, report):
    _turn_names_off(admin_client, personas)
    url = reverse("reporting:export", args=[personas.team.slug, report, "csv"]) + "?range=all"
    text = b"".join(admin_client.get(url).streaming_content).decode("utf-8-sig")
    for shown in _people(personas):
        assert shown not in text
    expected = personas.member if report == "users" else personas.secondary_admin
    assert f"User {expected.pk}" in text
