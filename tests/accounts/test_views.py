"""The pages: what a person sees when they do something right, and when they don't."""

from __future__ import annotations

import html
from datetime import timedelta

import time_machine
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import AuditEvent, Membership, Role, User


def text(response) -> str:
    return html.unescape(response.content.decode())


def test_invite_form_invites_and_returns_to_the_list(admin_client, personas, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("accounts:member-invite", args=[personas.team.slug]),
            {"email": "new@example.com", "first_name": "New", "last_name": "Person", "role": "report_viewer"},
            follow=True,
        )
    assert response.redirect_chain[-1][0] == reverse("billing:member-list", args=[personas.team.slug])
    assert "Invitation sent to new@example.com" in text(response)
    assert Membership.objects.get(user__email="new@example.com").role == Role.REPORT_VIEWER
    assert len(mail.outbox) == 1


def test_invite_form_shows_a_duplicate_on_the_email_field_and_changes_nothing(admin_client, personas):
    before = Membership.objects.count()
    response = admin_client.post(
        reverse("accounts:member-invite", args=[personas.team.slug]), {"email": "member@own.example", "role": "member"}
    )
    assert response.status_code == 200
    assert "member@own.example is already a member of Own Team" in text(response)
    assert response.context["form"].errors["email"]
    assert Membership.objects.count() == before


def test_invite_form_refuses_a_malformed_address_and_a_made_up_role(admin_client, personas):
    response = admin_client.post(
        reverse("accounts:member-invite", args=[personas.team.slug]), {"email": "nope", "role": "emperor"}
    )
    form = response.context["form"]
    assert "email" in form.errors and "role" in form.errors
    assert not User.objects.filter(email="nope").exists()


def test_role_change_through_the_member_page(admin_client, personas):
    membership = personas.membership(personas.member)
    response = admin_client.post(
        reverse("accounts:member-role", args=[personas.team.slug, membership.pk]),
        {"role": "report_viewer"},
        follow=True,
    )
    assert "is now a report viewer" in text(response)
    membership.refresh_from_db()
    assert membership.role == Role.REPORT_VIEWER


def test_role_change_of_yourself_shows_why_it_is_refused(client, personas):
    client.force_login(personas.secondary_admin)
    membership = personas.membership(personas.secondary_admin)
    response = client.post(
        reverse("accounts:member-role", args=[personas.team.slug, membership.pk]), {"role": "member"}, follow=True
    )
    # Back on the person's page (billing's), with the reason.
    assert response.redirect_chain[-1][0] == reverse("billing:member-detail", args=[personas.team.slug, membership.pk])
    assert "The role was not changed: You can't change your own role" in text(response)
    membership.refresh_from_db()
    assert membership.role == Role.SECONDARY_ADMIN


def test_removing_the_primary_admin_shows_a_clear_message_and_keeps_them(client, personas):
    client.force_login(personas.secondary_admin)
    membership = personas.membership(personas.primary_admin)
    url = reverse("accounts:member-remove", args=[personas.team.slug, membership.pk])
    response = client.post(url)
    assert response.status_code == 400
    assert "primary admin can't be removed" in text(response)
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_member_detail_offers_no_removal_of_the_primary_admin(client, personas):
    client.force_login(personas.secondary_admin)
    membership = personas.membership(personas.primary_admin)
    response = client.get(reverse("billing:member-detail", args=[personas.team.slug, membership.pk]))
    assert reverse("accounts:member-remove", args=[personas.team.slug, membership.pk]) not in text(response)


def test_removing_a_member_after_confirming(admin_client, personas):
    membership = personas.membership(personas.member)
    url = reverse("accounts:member-remove", args=[personas.team.slug, membership.pk])
    assert "Remove Mia Member?" in text(admin_client.get(url))
    response = admin_client.post(url, follow=True)
    assert "Mia Member was removed" in text(response)
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_transfer_primary_admin_page(admin_client, personas):
    membership = personas.membership(personas.secondary_admin)
    response = admin_client.post(
        reverse("accounts:member-transfer", args=[personas.team.slug, membership.pk]), follow=True
    )
    assert "is now the primary admin" in text(response)
    assert personas.membership(personas.primary_admin).role == Role.SECONDARY_ADMIN


def test_member_list_searches_and_filters_by_role(admin_client, personas):
    url = reverse("billing:member-list", args=[personas.team.slug])
    body = text(admin_client.get(url, {"q": "viewer"}))
    assert "viewer@own.example" in body and "member@own.example" not in body
    body = text(admin_client.get(url, {"role": "member"}))
    assert "member@own.example" in body and "viewer@own.example" not in body
    # Sorting by an unknown column and a page past the end are handled, not errors.
    assert admin_client.get(url, {"sort": "nonsense", "page": "999"}).status_code in (200, 404)


def test_member_list_never_shows_another_teams_people(admin_client, personas):
    body = text(admin_client.get(reverse("billing:member-list", args=[personas.team.slug])))
    assert "admin@other.example" not in body and "member@other.example" not in body


def upload(admin_client, personas, content: bytes, name: str = "people.csv"):
    return admin_client.post(
        reverse("billing:member-import", args=[personas.team.slug]),
        {"file": SimpleUploadedFile(name, content, content_type="text/csv")},
    )


def test_csv_import_previews_then_applies_only_on_confirm(admin_client, personas):
    response = upload(admin_client, personas, b"First name,Last name,Email\nAda,Lovelace,ada@example.com\n")
    assert response.status_code == 200
    assert "The row can be imported" in text(response)
    assert not User.objects.filter(email="ada@example.com").exists()  # nothing yet
    upload_id = response.context["upload_id"]
    response = admin_client.post(
        reverse("billing:member-import", args=[personas.team.slug]),
        {"upload_id": upload_id, "confirm": "1"},
        follow=True,
    )
    assert "Invited 1 person" in text(response)
    assert Membership.objects.filter(team=personas.team, user__email="ada@example.com").exists()


def test_csv_import_with_a_bad_row_marks_it_and_offers_no_confirmation(admin_client, personas):
    response = upload(
        admin_client, personas, b"First name,Last name,Email\nAda,Lovelace,ada@example.com\nBad,Row,not-mail\n"
    )
    assert response.status_code == 400
    body = text(response)
    assert "1 of 2 rows needs fixing" in body
    assert "“not-mail” is not a valid e-mail address" in body
    assert 'name="confirm"' not in body
    assert not User.objects.filter(email="ada@example.com").exists()


def test_csv_import_confirm_with_a_forged_or_stale_upload_applies_nothing(admin_client, personas):
    before = Membership.objects.count()
    response = admin_client.post(
        reverse("billing:member-import", args=[personas.team.slug]),
        {"upload_id": "forged", "confirm": "1"},
        follow=True,
    )
    assert "That upload has expired" in text(response)
    assert Membership.objects.count() == before


def test_csv_import_refuses_a_malformed_file_with_a_reason(admin_client, personas):
    response = upload(admin_client, personas, b"\xff\xfe\x00garbage", name="people.xlsx")
    assert response.status_code == 400
    assert "not UTF-8" in text(response)


def test_csv_import_refuses_a_missing_file(admin_client, personas):
    response = admin_client.post(reverse("billing:member-import", args=[personas.team.slug]), {})
    assert response.status_code == 400
    assert response.context["form"].errors["file"]


def test_csv_import_refuses_a_file_over_one_megabyte(admin_client, personas):
    response = upload(admin_client, personas, b"First name,Last name,Email\n" + b"x" * (1024 * 1024 + 1))
    assert response.status_code == 400
    assert "larger than 1 MB" in text(response)


def test_team_settings_saves_and_refuses_an_unknown_time_zone(admin_client, personas):
    url = reverse("accounts:team-settings", args=[personas.team.slug])
    response = admin_client.post(url, {"name": "Own Team", "time_zone": "Mars/Olympus"})
    assert response.status_code == 400
    assert "Mars/Olympus is not one of the available choices" in text(response)
    response = admin_client.post(url, {"name": "Own Team GmbH", "time_zone": "Europe/Vienna"}, follow=True)
    assert "Team settings saved" in text(response)
    personas.team.refresh_from_db()
    assert personas.team.time_zone == "Europe/Vienna"


def test_activity_log_lists_the_teams_events_only(admin_client, personas):
    admin_client.post(
        reverse("accounts:member-invite", args=[personas.team.slug]), {"email": "log@example.com", "role": "member"}
    )
    AuditEvent.objects.create(action="member.invited", team=personas.other_team, target_repr="secret@other.example")
    body = text(admin_client.get(reverse("accounts:audit-log", args=[personas.team.slug])))
    assert "log@example.com" in body
    assert "secret@other.example" not in body


def test_home_shows_plan_contract_members_and_admins(client, personas):
    client.force_login(personas.member)
    body = text(client.get(reverse("accounts:team-home", args=[personas.team.slug])))
    for expected in ("Standard", "Jan 1, 2022 – Dec 31, 2030", "Pat Primary", "Sid Secondary", "Alder Partners"):
        assert expected in body
    assert "Manage users" not in body  # members see no management actions


def test_start_sends_a_sales_rep_to_customers_and_members_to_their_team(client, personas):
    client.force_login(personas.sales_rep)
    assert client.get("/").url == reverse("billing:customer-list")
    client.force_login(personas.member)
    assert client.get("/").url == reverse("accounts:team-home", args=[personas.team.slug])


def test_sales_rep_sees_only_their_resellers_customers(client, personas):
    client.force_login(personas.sales_rep)
    body = text(client.get(reverse("billing:customer-list")))
    assert "Own Team" in body and "Other Team" not in body
    body = text(client.get(reverse("billing:customer-detail", args=[personas.team.slug])))
    assert "primary@own.example" in body
    assert "member@own.example" not in body  # admins only; no per-user detail


def test_navigation_shows_each_role_only_what_it_may_use(client, personas):
    expected = {
        "primary_admin": ["Home", "User Management", "Billing & Orders", "Reporting", "My usage", "Settings"],
        "secondary_admin": ["Home", "User Management", "Billing & Orders", "Reporting", "My usage", "Settings"],
        "report_viewer": ["Home", "Billing & Orders", "Reporting", "My usage"],
        "member": ["Home", "My usage"],
    }
    for role, labels in expected.items():
        client.force_login(personas.by_role(role))
        response = client.get(reverse("accounts:team-home", args=[personas.team.slug]))
        assert [entry.label for entry in response.context["nav"]] == labels, role
    client.force_login(personas.sales_rep)
    response = client.get(reverse("billing:customer-list"))
    assert [entry.label for entry in response.context["nav"]] == ["Customers", "Orders"]


def test_profile_saves_names(client, personas):
    client.force_login(personas.member)
    client.post(reverse("accounts:profile"), {"first_name": "Mira", "last_name": "M."})
    personas.member.refresh_from_db()
    assert personas.member.get_full_name() == "Mira M."


def test_healthz_needs_no_sign_in(client, db):
    assert client.get("/healthz").content == b"ok"


def test_a_team_page_saves_the_session_only_when_the_team_changes(admin_client, personas, settings):
    # The shell remembers the last team used; an unchanged session is not written again on
    # every page (a database write, and a new cookie, per request).
    home = reverse("accounts:team-home", args=[personas.team.slug])
    first = admin_client.get(home)
    assert first.status_code == 200
    assert admin_client.session["last_team"] == personas.team.slug
    again = admin_client.get(home)
    assert again.status_code == 200
    assert settings.SESSION_COOKIE_NAME not in again.cookies


def test_a_session_in_use_is_kept_alive_once_an_hour(admin_client, personas, settings):

    home = reverse("accounts:team-home", args=[personas.team.slug])
    with time_machine.travel("2026-06-01 08:00 +00:00", tick=False) as clock:
        assert admin_client.get(home).status_code == 200
        saved = admin_client.session.get_expiry_date()
        clock.move_to("2026-06-01 08:50 +00:00")
        assert settings.SESSION_COOKIE_NAME not in admin_client.get(home).cookies  # within the hour: no write
        clock.move_to("2026-06-01 09:05 +00:00")
        again = admin_client.get(home)
        assert settings.SESSION_COOKIE_NAME in again.cookies  # saved: the 12 hours start over
        assert admin_client.session.get_expiry_date() - saved >= timedelta(hours=1)
        # Used all day: still signed in 14 hours after signing in.
        for hour in range(10, 23):
            clock.move_to(f"2026-06-01 {hour}:10 +00:00")
            assert admin_client.get(home).status_code == 200
        # Twelve hours without a page: signed out.
        clock.move_to("2026-06-02 11:30 +00:00")
        assert admin_client.get(home).status_code == 302
