"""Sign-in, sign-out, password reset, invitations from the outside, throttling."""

from __future__ import annotations

import html
import re

from django.core import mail
from django.urls import reverse

from accounts import services


def text(response) -> str:
    return html.unescape(response.content.decode())


def sign_in(client, email, password):
    return client.post(reverse("login"), {"username": email, "password": password})


def test_every_page_needs_sign_in(client, personas):
    response = client.get(reverse("accounts:team-home", args=[personas.team.slug]))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_signing_in_by_email_is_case_insensitive(client, personas):
    response = sign_in(client, "PRIMARY@own.example", personas.password)
    assert response.status_code == 302
    assert client.get("/").url == reverse("accounts:team-home", args=[personas.team.slug])


def test_an_unknown_email_or_wrong_password_gets_a_clear_message(client, personas):
    for email, password in [("nobody@example.com", "whatever-123"), ("primary@own.example", "wrong-password")]:
        response = sign_in(client, email, password)
        assert response.status_code == 200
        assert "Please enter a correct e-mail address and password" in text(response)


def test_repeated_failures_lock_the_address_out_for_a_while(client, personas, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "primary@own.example", "wrong-password")
    response = sign_in(client, "primary@own.example", personas.password)
    assert response.status_code == 429
    assert "Too many sign-in attempts" in text(response)


def test_no_spelling_of_the_address_escapes_the_lockout(client, personas, settings):
    spellings = ["primary@own.example", "PRIMARY@OWN.EXAMPLE", " Primary@Own.Example ", "pRiMaRy@own.example"]
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, spellings[attempt % len(spellings)], "wrong-password")
    for spelling in spellings:
        response = sign_in(client, spelling, personas.password)
        assert response.status_code == 429, spelling
    assert "_auth_user_id" not in client.session


def test_sign_out_needs_a_post_and_ends_the_session(client, personas):
    client.force_login(personas.member)
    client.post(reverse("logout"))
    assert client.get("/").status_code == 302


def test_password_reset_mails_a_working_link(client, personas):
    response = client.post(reverse("password_reset"), {"email": "member@own.example"}, follow=True)
    assert "Check your e-mail" in text(response)
    link = re.search(r"http://\S+/auth/reset/\S+/", mail.outbox[0].body).group(0)
    response = client.get(link, follow=True)
    response = client.post(
        response.redirect_chain[-1][0], {"new_password1": "fresh-secret-pass-7", "new_password2": "fresh-secret-pass-7"}
    )
    assert response.status_code == 302
    personas.member.refresh_from_db()
    assert personas.member.check_password("fresh-secret-pass-7")


def test_password_reset_for_an_unknown_address_reveals_nothing_and_sends_nothing(client, db):
    response = client.post(reverse("password_reset"), {"email": "ghost@example.com"}, follow=True)
    assert "Check your e-mail" in text(response)
    assert mail.outbox == []


def test_accepting_an_invitation_in_the_browser_signs_the_person_in(
    client, personas, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.invite_user(team=personas.team, email="joiner@example.com", actor=personas.primary_admin)
    link = re.search(r"/invite/\S+/", mail.outbox[0].body).group(0)
    page = client.get(link)
    assert "Join Own Team" in text(page)
    response = client.post(link, {"password1": "short", "password2": "short"})
    assert response.status_code == 400 and "too short" in text(response)
    response = client.post(
        link, {"first_name": "Jo", "password1": "joiner-pass-2026", "password2": "joiner-pass-2026"}, follow=True
    )
    assert "Welcome to Own Team" in text(response)
    assert response.context["user"].email == "joiner@example.com"


def test_an_unknown_invitation_link_explains_what_to_do(client, db):
    response = client.get("/invite/not-a-real-token/")
    assert response.status_code == 404
    assert "Ask your team's admin to send the invitation again" in text(response)
