"""No 500 for anything a person or a client can send: names with line breaks, NUL bytes,
over-long values. The services refuse them the same way for the browser, the API and the
CSV import; an e-mail that can't be sent never undoes or blocks a saved change."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts import notifications, services
from accounts.models import Membership, Notification, NotificationKind, Team

BAD_NAMES = ["Acme\nBcc: victim@example.com", "Tab\there", "Nul\x00byte", "x" * 201, "Line\u2028separator"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_team_name_with_a_line_break_or_control_character_is_refused_by_the_service(personas, name):
    with pytest.raises(ValidationError) as refused:
        services.update_team_settings(team=personas.team, name=name, time_zone="UTC", actor=personas.primary_admin)
    assert "name" in refused.value.message_dict
    personas.team.refresh_from_db()
    assert personas.team.name == "Own Team"


def test_the_settings_page_shows_the_refusal_of_a_line_break_in_the_name(admin_client, personas):
    url = reverse("accounts:team-settings", args=[personas.team.slug])

    response = admin_client.post(url, {"name": "Own\r\nTeam", "time_zone": "UTC"})

    assert response.status_code == 400
    assert "line breaks" in response.content.decode()
    assert Team.objects.get(pk=personas.team.pk).name == "Own Team"


@pytest.mark.parametrize(
    ("field", "value"), [("first_name", "Ada\nLovelace"), ("last_name", "\x00"), ("first_name", "y" * 151)]
)
def test_a_person_name_with_a_line_break_nul_or_over_long_is_refused(personas, field, value):
    with pytest.raises(ValidationError) as refused:
        services.invite_user(team=personas.team, email="ada@example.com", actor=None, **{field: value})
    assert field in refused.value.message_dict
    assert not Membership.objects.filter(user__email="ada@example.com").exists()


def test_a_nul_byte_in_a_csv_cell_is_reported_in_the_preview_and_nothing_is_written(personas):
    data = b"First name,Last name,Email\nAda\x00,Lovelace,ada@example.com\nGrace,Hopper,gr\x00ace@example.com\n"

    preview = services.parse_member_csv(team=personas.team, data=data)

    assert not preview.ok
    assert [bool(row.errors) for row in preview.rows] == [True, True]
    assert "control characters" in " ".join(preview.rows[0].errors)
    with pytest.raises(ValidationError):
        services.bulk_invite(team=personas.team, data=data, actor=personas.primary_admin)
    assert not Membership.objects.filter(user__email__in=["ada@example.com", "grace@example.com"]).exists()


def test_an_invitation_about_a_team_whose_stored_name_has_a_line_break_is_still_sent(
    personas, django_capture_on_commit_callbacks
):
    Team.objects.filter(pk=personas.team.pk).update(name="Own\nTeam")  # stored before names were checked
    personas.team.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        membership = services.invite_user(team=personas.team, email="new@example.com", actor=None)

    assert membership.pk and len(mail.outbox) == 1
    assert "\n" not in mail.outbox[0].subject and "Own Team" in mail.outbox[0].subject


def test_a_notice_whose_email_fails_for_good_is_recorded_and_never_blocks_the_others(personas, monkeypatch):
    def notice(title: str) -> Notification:
        return services.notify(
            users=[personas.primary_admin], kind=NotificationKind.LOW_BALANCE, title=title, body="b", team=personas.team
        )[0]

    broken, fine = notice("broken"), notice("fine")
    real_send = notifications._send

    def send(**kwargs):
        if kwargs["subject"] == "broken":
            raise ValueError("the template could not be rendered")
        real_send(**kwargs)

    monkeypatch.setattr(notifications, "_send", send)
    # Their own e-mail tasks were lost: the pending job sends them.
    Notification.objects.update(created_at=broken.created_at - notifications.PENDING_EMAIL_GRACE * 2)

    assert notifications.send_pending_notification_emails() == 1
    assert notifications.send_pending_notification_emails() == 0  # the failure is not retried forever

    broken.refresh_from_db()
    fine.refresh_from_db()
    assert (broken.emailed_at, broken.email_error) == (None, "ValueError: the template could not be rendered")
    assert broken.email_failed_at is not None and fine.emailed_at is not None
    assert [m.subject for m in mail.outbox] == ["fine"]


def test_possessive_names_take_an_apostrophe_only_after_an_s():
    from core.templatetags.text import possessive

    assert possessive("Acme") == "Acme's"
    assert possessive("Initech Architects") == "Initech Architects'"
    assert possessive("<b>Bold</b> Co") == "<b>Bold</b> Co's"  # still escaped where it is shown
