"""API keys: made once and shown once, stored hashed, revoked for good, and only ever
reached through their own team."""

from __future__ import annotations

import hashlib
import html
import io
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts import selectors, services
from accounts.models import ApiKey, AuditEvent, Membership, Reseller, Role
from tests.factories import UserFactory


def text(response) -> str:
    return html.unescape(response.content.decode())


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- Services -----------------------------------------------------------------------------------


def test_a_new_key_is_returned_once_and_only_its_hash_is_stored(personas):
    key, secret = services.create_api_key(team=personas.team, name=" Usage uploader ", actor=personas.primary_admin)

    assert secret.startswith("flx_") and len(secret) > 40
    key.refresh_from_db()
    assert key.key_hash == sha256(secret)
    assert secret not in {key.name, key.prefix, key.key_hash}
    assert key.prefix == secret[:12] and key.prefix.startswith("flx_")
    assert key.name == "Usage uploader"
    assert (key.team, key.reseller, key.created_by) == (personas.team, None, personas.primary_admin)
    assert key.is_active and key.last_used_at is None


def test_every_key_is_different(personas):
    secrets = {services.create_api_key(team=personas.team, name="k", actor=None)[1] for _ in range(5)}
    assert len(secrets) == 5


def test_creating_a_key_is_audited_without_the_secret(personas):
    key, secret = services.create_api_key(team=personas.team, name="CI", actor=personas.secondary_admin)

    event = AuditEvent.objects.get(action="api_key.created")
    assert (event.team, event.actor, event.target_id) == (personas.team, personas.secondary_admin, str(key.pk))
    assert event.details == {"name": "CI", "prefix": key.prefix}
    assert secret not in str(event.details) + event.target_repr


def test_a_reseller_key_names_the_reseller_in_the_audit_trail(personas):
    key, _ = services.create_api_key(reseller=personas.team.reseller, name="Orders", actor=None)

    assert (key.team, key.reseller) == (None, personas.team.reseller)
    event = AuditEvent.objects.get(action="api_key.created")
    assert (event.reseller, event.team, event.actor_email) == (personas.team.reseller, None, "")


@pytest.mark.parametrize("owner", ["both", "neither"])
def test_a_key_belongs_to_a_team_or_a_reseller_never_both_nor_neither(personas, owner):
    owners = {"team": personas.team, "reseller": personas.team.reseller} if owner == "both" else {}
    with pytest.raises(ValidationError, match="either a team or a reseller"):
        services.create_api_key(**owners, name="k", actor=None)
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("team,reseller", [(True, True), (False, False)])
def test_the_database_refuses_a_key_with_both_or_neither_owner(personas, team, reseller):
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiKey.objects.create(
            name="k",
            prefix="flx_xxxxxxxx",
            key_hash="0" * 64,
            team=personas.team if team else None,
            reseller=personas.team.reseller if reseller else None,
        )


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_key_needs_a_name_of_sensible_length(personas, name):
    with pytest.raises(ValidationError) as error:
        services.create_api_key(team=personas.team, name=name, actor=None)
    assert "name" in error.value.message_dict
    assert not AuditEvent.objects.filter(action="api_key.created").exists()


def test_revoking_stops_the_key_and_is_audited_once(personas):
    key, _ = services.create_api_key(team=personas.team, name="CI", actor=personas.primary_admin)

    services.revoke_api_key(key=key, actor=personas.primary_admin)
    revoked_at = ApiKey.objects.get(pk=key.pk).revoked_at
    services.revoke_api_key(key=ApiKey.objects.get(pk=key.pk), actor=personas.secondary_admin)

    key.refresh_from_db()
    assert revoked_at is not None and key.revoked_at == revoked_at and not key.is_active
    events = AuditEvent.objects.filter(action="api_key.revoked")
    assert events.count() == 1
    assert (events[0].actor, events[0].team) == (personas.primary_admin, personas.team)


def test_revoking_a_stale_copy_of_a_revoked_key_writes_nothing(personas):
    key, _ = services.create_api_key(team=personas.team, name="CI", actor=None)
    stale = ApiKey.objects.get(pk=key.pk)
    services.revoke_api_key(key=key, actor=None)

    services.revoke_api_key(key=stale, actor=None)

    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1
    assert stale.revoked_at == ApiKey.objects.get(pk=key.pk).revoked_at


def test_use_is_recorded_at_most_once_a_minute(personas, django_assert_num_queries):
    key, _ = services.create_api_key(team=personas.team, name="CI", actor=None)
    start = timezone.now()

    assert services.touch_api_key(key=key, now=start)
    with django_assert_num_queries(0):
        assert not services.touch_api_key(key=key, now=start + timedelta(seconds=30))
    # Another request holding an older copy of the key: the database still says no.
    stale = ApiKey.objects.get(pk=key.pk)
    stale.last_used_at = None
    assert not services.touch_api_key(key=stale, now=start + timedelta(seconds=59))
    assert services.touch_api_key(key=key, now=start + timedelta(seconds=61))

    key.refresh_from_db()
    assert key.last_used_at == start + timedelta(seconds=61)
    assert not AuditEvent.objects.filter(action__startswith="api_key.").exclude(action="api_key.created").exists()


# --- Selectors ----------------------------------------------------------------------------------


def test_a_secret_finds_its_active_key_and_nothing_else(personas):
    key, secret = services.create_api_key(team=personas.team, name="CI", actor=None)

    assert selectors.api_key_for_secret(secret=secret) == key
    assert selectors.api_key_for_secret(secret=secret + "x") is None
    assert selectors.api_key_for_secret(secret=key.prefix) is None
    assert selectors.api_key_for_secret(secret=key.key_hash) is None
    assert selectors.api_key_for_secret(secret="") is None


def test_a_revoked_key_is_not_found(personas):
    key, secret = services.create_api_key(team=personas.team, name="CI", actor=None)
    services.revoke_api_key(key=key, actor=None)

    assert selectors.api_key_for_secret(secret=secret) is None


def test_a_team_sees_its_own_keys_newest_first_revoked_included(personas):
    first, _ = services.create_api_key(team=personas.team, name="first", actor=None)
    second, _ = services.create_api_key(team=personas.team, name="second", actor=None)
    services.revoke_api_key(key=first, actor=None)
    services.create_api_key(team=personas.other_team, name="theirs", actor=None)
    services.create_api_key(reseller=personas.team.reseller, name="reseller", actor=None)

    assert list(selectors.api_keys_of_team(team=personas.team)) == [second, first]


# --- The command --------------------------------------------------------------------------------


def run_command(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue().splitlines()


def test_command_prints_a_team_key_as_its_last_line(personas):
    lines = run_command("--team", personas.team.slug, "--name", "Nightly import")

    secret = lines[-1]
    assert len(lines) > 1 and "shown only this once" in " ".join(lines[:-1])
    key = selectors.api_key_for_secret(secret=secret)
    assert (key.team, key.name) == (personas.team, "Nightly import")


def test_command_is_quiet_but_for_the_key_at_verbosity_zero(personas):
    lines = run_command("--team", personas.team.slug, "-v", "0")

    assert len(lines) == 1
    assert selectors.api_key_for_secret(secret=lines[0]).team == personas.team


def test_command_makes_a_key_for_an_existing_reseller(personas):
    reseller = personas.team.reseller
    lines = run_command("--reseller", reseller.slug)

    key = selectors.api_key_for_secret(secret=lines[-1])
    assert (key.reseller, key.team) == (reseller, None)
    assert Reseller.objects.filter(slug=reseller.slug).count() == 1
    assert not any("Created reseller" in line for line in lines)


def test_command_creates_a_missing_reseller_named_from_its_slug(db):
    lines = run_command("--reseller", "north-star")

    reseller = Reseller.objects.get(slug="north-star")
    assert reseller.name == "North Star"
    assert selectors.api_key_for_secret(secret=lines[-1]).reseller == reseller
    assert AuditEvent.objects.filter(action="reseller.created", reseller=reseller).exists()


def test_command_refuses_an_unknown_team(db):
    with pytest.raises(CommandError, match="no team with the slug “nope”"):
        run_command("--team", "nope")
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("args", [(), ("--team", "own-team", "--reseller", "alder")])
def test_command_wants_exactly_one_of_team_and_reseller(personas, args):
    with pytest.raises(CommandError, match="--team SLUG or --reseller SLUG"):
        run_command(*args)
    assert not ApiKey.objects.exists()


def test_command_refuses_a_reseller_slug_that_is_no_slug(db):
    with pytest.raises(CommandError, match="can't be a reseller's slug"):
        run_command("--reseller", "Not a slug!")
    assert not Reseller.objects.exists()


# --- The page -----------------------------------------------------------------------------------


def keys_url(personas, team=None) -> str:
    return reverse("accounts:api-keys", args=[(team or personas.team).slug])


def revoke_url(personas, key, team=None) -> str:
    return reverse("accounts:api-key-revoke", args=[(team or personas.team).slug, key.pk])


def test_creating_a_key_shows_it_once(admin_client, personas):
    response = admin_client.post(keys_url(personas), {"name": "Usage uploader"}, follow=True)

    assert response.redirect_chain == [(keys_url(personas), 302)]
    key = ApiKey.objects.get(team=personas.team)
    secret = response.context["new_secret"]
    assert key.key_hash == sha256(secret)
    page = text(response)
    assert f'value="{secret}"' in page and "readonly" in page
    assert "will not be shown again" in page
    assert 'data-copy-from="new-api-key"' in page  # the copy button, wired up by static/js/portal.js
    assert "no-store" in response.headers["Cache-Control"]
    assert key.created_by == personas.primary_admin

    reloaded = admin_client.get(keys_url(personas))
    assert secret not in text(reloaded)
    assert "will not be shown again" not in text(reloaded)
    assert key.prefix in text(reloaded)


def test_the_table_lists_the_keys_with_who_made_them_and_their_state(admin_client, personas):
    kept, _ = services.create_api_key(team=personas.team, name="Kept", actor=personas.secondary_admin)
    gone, _ = services.create_api_key(team=personas.team, name="Gone", actor=None)
    services.revoke_api_key(key=gone, actor=None)
    services.touch_api_key(key=kept)
    services.create_api_key(team=personas.other_team, name="Theirs", actor=None)

    page = text(admin_client.get(keys_url(personas)))

    assert "Kept" in page and "Gone" in page and "Theirs" not in page
    assert "Sid Secondary" in page and "Never" in page
    assert "Active" in page and "Revoked" in page
    assert page.count("Revoke…") == 1  # only the active key can be revoked


def test_a_key_needs_a_name_on_the_page_too(admin_client, personas):
    response = admin_client.post(keys_url(personas), {"name": "  "})

    assert response.status_code == 400
    assert response.context["form"].errors["name"]
    assert not ApiKey.objects.exists()


def test_revoking_from_the_page(admin_client, personas):
    key, secret = services.create_api_key(team=personas.team, name="CI", actor=None)

    response = admin_client.post(revoke_url(personas, key), follow=True)

    assert response.redirect_chain == [(keys_url(personas), 302)]
    assert "was revoked" in text(response)
    assert selectors.api_key_for_secret(secret=secret) is None
    again = admin_client.post(revoke_url(personas, key), follow=True)
    assert "already revoked" in text(again)
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1


def test_revoke_is_post_only(admin_client, personas):
    key, _ = services.create_api_key(team=personas.team, name="CI", actor=None)

    assert admin_client.get(revoke_url(personas, key)).status_code == 405
    key.refresh_from_db()
    assert key.is_active


def test_a_report_viewer_gets_an_explaining_403(client, personas):
    key, _ = services.create_api_key(team=personas.team, name="CI", actor=None)
    client.force_login(personas.report_viewer)

    response = client.get(keys_url(personas))
    assert response.status_code == 403
    assert "As a report viewer you can't manage the team's API keys" in text(response)
    assert client.post(keys_url(personas), {"name": "mine"}).status_code == 403
    assert client.post(revoke_url(personas, key)).status_code == 403
    key.refresh_from_db()
    assert key.is_active and ApiKey.objects.count() == 1


def test_another_teams_key_is_not_found_through_your_team(admin_client, personas):
    theirs, secret = services.create_api_key(team=personas.other_team, name="Theirs", actor=None)

    response = admin_client.post(revoke_url(personas, theirs))

    assert response.status_code == 404
    assert selectors.api_key_for_secret(secret=secret) == theirs


def test_a_reseller_key_is_not_found_through_a_team_it_serves(admin_client, personas):
    reseller_key, _ = services.create_api_key(reseller=personas.team.reseller, name="Orders", actor=None)

    assert admin_client.post(revoke_url(personas, reseller_key)).status_code == 404
    reseller_key.refresh_from_db()
    assert reseller_key.is_active


def test_a_new_key_is_not_shown_on_another_teams_page(client, personas):
    """The secret is taken out of the session by the next keys page, shown only if that
    page is of the team the key was made for."""
    Membership.objects.create(user=personas.primary_admin, team=personas.other_team, role=Role.SECONDARY_ADMIN)
    client.force_login(personas.primary_admin)
    client.post(keys_url(personas), {"name": "Own"})

    other = client.get(keys_url(personas, personas.other_team))
    assert other.context["new_secret"] is None
    assert client.get(keys_url(personas)).context["new_secret"] is None


def test_the_settings_tabs_and_navigation_lead_to_api_keys(admin_client, personas):
    page = admin_client.get(reverse("accounts:team-settings", args=[personas.team.slug]))
    assert keys_url(personas) in text(page)

    response = admin_client.get(keys_url(personas))
    active = [entry.label for entry in response.context["nav"] if entry.active]
    assert active == ["Settings"]
    assert 'aria-current="page">API keys' in text(response)


def test_the_activity_log_names_key_events(admin_client, personas):
    key, _ = services.create_api_key(team=personas.team, name="CI", actor=personas.primary_admin)
    services.revoke_api_key(key=key, actor=personas.primary_admin)

    page = text(admin_client.get(reverse("accounts:audit-log", args=[personas.team.slug])))

    assert "API key created" in page and "API key revoked" in page


def test_staff_revoke_keys_in_the_admin(client, personas):
    staff = UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)
    client.force_login(staff)
    reseller_key, secret = services.create_api_key(reseller=personas.team.reseller, name="Orders", actor=None)

    listing = client.get(reverse("admin:accounts_apikey_changelist"))
    assert listing.status_code == 200 and reseller_key.prefix in text(listing)
    assert reseller_key.key_hash not in text(listing)
    client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke", "_selected_action": [reseller_key.pk]},
    )

    assert selectors.api_key_for_secret(secret=secret) is None
    assert AuditEvent.objects.get(action="api_key.revoked").actor == staff
