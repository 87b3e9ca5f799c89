"""Behaviour of the accounts services: invitations, roles, the primary admin rule, audit."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import selectors, services
from accounts.models import AuditEvent, Invitation, Membership, Role, Team, User


def _link_token(message) -> str:
    return re.search(r"/invite/([^/\s]+)/", message.body).group(1)


@pytest.fixture
def send_mail_now(django_capture_on_commit_callbacks):
    """Run the on-commit e-mail tasks the way a finished request would."""

    def run(fn, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(**kwargs)

    return run


def test_inviting_a_new_person_creates_membership_and_emails_a_set_password_link(personas, send_mail_now):
    membership = send_mail_now(
        services.invite_user,
        team=personas.team,
        email="  New.Person@Example.com ",
        role=Role.REPORT_VIEWER,
        first_name="New",
        last_name="Person",
        actor=personas.primary_admin,
    )
    assert membership.user.email == "new.person@example.com"
    assert membership.role == Role.REPORT_VIEWER
    assert not membership.user.has_usable_password()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.person@example.com"]
    assert "Own Team" in message.subject
    assert message.alternatives and "Set your password" in message.alternatives[0][0]
    token = _link_token(message)
    assert Invitation.objects.get(membership=membership).token_hash != token  # only the hash is stored
    event = AuditEvent.objects.get(action="member.invited")
    assert event.actor == personas.primary_admin and event.team == personas.team


def test_someone_with_an_account_joins_only_by_accepting_the_invitation(personas, send_mail_now):
    membership = send_mail_now(
        services.invite_user, team=personas.team, email="admin@other.example", actor=personas.primary_admin
    )
    assert membership.user == personas.outsider
    assert membership.is_pending and "You're invited" in mail.outbox[0].subject
    assert personas.team not in selectors.teams_of_user(personas.outsider)
    assert (membership.display_name, membership.shows_profile) == ("admin@other.example", False)

    services.accept_invitation(token=_link_token(mail.outbox[0]))

    membership.refresh_from_db()
    assert not membership.is_pending
    assert personas.team in selectors.teams_of_user(personas.outsider)
    assert personas.outsider.check_password(personas.password)  # their password is untouched


def test_staff_accounts_are_never_added_to_a_team(personas):
    User.objects.filter(pk=personas.outsider.pk).update(is_staff=True)
    with pytest.raises(ValidationError, match="can't be added to a team"):
        services.invite_user(team=personas.team, email="admin@other.example", actor=personas.primary_admin)
    assert not Membership.objects.filter(team=personas.team, user=personas.outsider).exists()


def test_the_primary_admin_role_is_not_handed_to_someone_who_has_not_joined(personas):
    pending = services.invite_user(team=personas.team, email="new@own.example", actor=personas.primary_admin)
    with pytest.raises(ValidationError, match="not accepted the invitation yet"):
        services.transfer_primary_admin(team=personas.team, to=pending, actor=personas.primary_admin)
    assert personas.membership(personas.primary_admin).role == Role.PRIMARY_ADMIN


def test_inviting_an_existing_member_again_is_refused_and_changes_nothing(personas):
    before = Membership.objects.count()
    with pytest.raises(ValidationError, match="already a member of Own Team"):
        services.invite_user(team=personas.team, email="MEMBER@own.example", actor=personas.primary_admin)
    assert Membership.objects.count() == before
    assert not AuditEvent.objects.filter(action="member.invited").exists()


@pytest.mark.parametrize("email", ["", "not-an-email", "a@", "two@@example.com"])
def test_inviting_a_malformed_address_is_refused(personas, email):
    with pytest.raises(ValidationError, match="valid e-mail address"):
        services.invite_user(team=personas.team, email=email, actor=personas.primary_admin)
    assert not User.objects.filter(email=email).exists()


def test_a_second_primary_admin_cannot_be_invited(personas):
    with pytest.raises(ValidationError, match="already has a primary admin"):
        services.invite_user(
            team=personas.team, email="boss@example.com", role=Role.PRIMARY_ADMIN, actor=personas.primary_admin
        )


def test_a_new_team_gets_its_first_primary_admin_by_invitation(personas):
    team = services.create_team(
        reseller=personas.team.reseller,
        name="Fresh",
        slug="fresh",
        plan="premium",
        time_zone="Asia/Tokyo",
        contract_start=date(2026, 1, 1),
        contract_end=date(2027, 1, 1),
        actor=personas.sales_rep,
    )
    membership = services.invite_user(team=team, email="boss@fresh.example", role=Role.PRIMARY_ADMIN, actor=None)
    assert membership.role == Role.PRIMARY_ADMIN


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("plan", "gold", "plan must be one of"),
        ("time_zone", "Mars/Olympus", "not a known time zone"),
        ("contract_end", date(2025, 1, 1), "must end after it starts"),
    ],
)
def test_creating_a_team_with_bad_fields_is_refused(personas, field, value, message):
    fields = dict(
        name="Fresh",
        slug="fresh",
        plan="standard",
        time_zone="UTC",
        contract_start=date(2026, 1, 1),
        contract_end=date(2027, 1, 1),
    )
    fields[field] = value
    with pytest.raises(ValidationError, match=message):
        services.create_team(reseller=personas.team.reseller, **fields)
    assert not Team.objects.filter(slug="fresh").exists()


def test_accepting_an_invitation_sets_the_password_and_closes_the_invitation(personas, send_mail_now):
    membership = send_mail_now(services.invite_user, team=personas.team, email="n@example.com", actor=None)
    token = _link_token(mail.outbox[0])
    user = services.accept_invitation(token=token, password="a-long-enough-pass-42", first_name="Nia")
    assert user.check_password("a-long-enough-pass-42") and user.first_name == "Nia"
    assert Invitation.objects.get(membership=membership).accepted_at is not None
    with pytest.raises(ValidationError, match="no longer valid"):
        services.accept_invitation(token=token, password="another-long-pass-43")


def test_an_invitation_link_expires_after_seven_days(personas, send_mail_now):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        send_mail_now(services.invite_user, team=personas.team, email="late@example.com", actor=None)
        token = _link_token(mail.outbox[0])
        clock.shift(timedelta(days=7, seconds=-1))
        assert selectors.pending_invitation(token=token) is not None
        clock.shift(timedelta(seconds=1))
        assert selectors.pending_invitation(token=token) is None
        with pytest.raises(ValidationError):
            services.accept_invitation(token=token, password="a-long-enough-pass-42")


def test_resending_an_invitation_replaces_the_link_and_extends_it(personas, send_mail_now):
    membership = send_mail_now(services.invite_user, team=personas.team, email="r@example.com", actor=None)
    old_token = _link_token(mail.outbox[0])
    send_mail_now(services.resend_invitation, membership=membership, actor=personas.primary_admin)
    new_token = _link_token(mail.outbox[1])
    assert new_token != old_token
    assert selectors.pending_invitation(token=old_token) is None
    assert selectors.pending_invitation(token=new_token).send_count == 2


def test_resending_to_someone_who_accepted_is_refused(personas):
    membership = personas.membership(personas.member)
    with pytest.raises(ValidationError, match="nothing to resend"):
        services.resend_invitation(membership=membership, actor=personas.primary_admin)


def test_a_weak_password_is_refused_when_accepting(personas, send_mail_now):
    send_mail_now(services.invite_user, team=personas.team, email="w@example.com", actor=None)
    with pytest.raises(ValidationError):
        services.accept_invitation(token=_link_token(mail.outbox[0]), password="123")
    assert not User.objects.get(email="w@example.com").has_usable_password()


def test_changing_a_role_is_audited_with_before_and_after(personas):
    membership = services.change_role(
        membership=personas.membership(personas.member), role=Role.REPORT_VIEWER, actor=personas.secondary_admin
    )
    assert membership.role == Role.REPORT_VIEWER
    event = AuditEvent.objects.get(action="member.role_changed")
    assert event.details == {"from": "member", "to": "report_viewer"}
    assert event.actor_email == "secondary@own.example"


def test_the_primary_admin_cannot_be_demoted_directly(personas):
    with pytest.raises(ValidationError, match="Transfer the primary admin role"):
        services.change_role(
            membership=personas.membership(personas.primary_admin), role=Role.MEMBER, actor=personas.secondary_admin
        )
    assert personas.membership(personas.primary_admin).role == Role.PRIMARY_ADMIN


def test_the_primary_admin_role_is_not_granted_by_a_role_change(personas):
    with pytest.raises(ValidationError, match="Make primary admin"):
        services.change_role(
            membership=personas.membership(personas.member), role=Role.PRIMARY_ADMIN, actor=personas.primary_admin
        )


def test_nobody_changes_their_own_role(personas):
    with pytest.raises(ValidationError, match="your own role"):
        services.change_role(
            membership=personas.membership(personas.secondary_admin), role=Role.MEMBER, actor=personas.secondary_admin
        )


def test_the_last_primary_admin_cannot_be_removed(personas):
    with pytest.raises(ValidationError, match="primary admin can't be removed"):
        services.remove_member(membership=personas.membership(personas.primary_admin), actor=personas.secondary_admin)
    assert personas.membership(personas.primary_admin)


def test_removing_a_member_keeps_the_person_and_audits_it(personas):
    services.remove_member(membership=personas.membership(personas.member), actor=personas.primary_admin)
    assert not Membership.objects.filter(team=personas.team, user=personas.member).exists()
    assert User.objects.filter(pk=personas.member.pk).exists()
    assert AuditEvent.objects.get(action="member.removed").details["email"] == "member@own.example"


def test_admins_cannot_remove_themselves(personas):
    with pytest.raises(ValidationError, match="remove yourself"):
        services.remove_member(membership=personas.membership(personas.secondary_admin), actor=personas.secondary_admin)


def test_transferring_the_primary_admin_role_leaves_exactly_one(personas):
    services.transfer_primary_admin(
        team=personas.team, to=personas.membership(personas.member), actor=personas.primary_admin
    )
    assert personas.membership(personas.member).role == Role.PRIMARY_ADMIN
    assert personas.membership(personas.primary_admin).role == Role.SECONDARY_ADMIN
    assert Membership.objects.filter(team=personas.team, role=Role.PRIMARY_ADMIN).count() == 1


def test_transfer_to_a_member_of_another_team_is_refused(personas):
    foreign = Membership.objects.get(team=personas.other_team, user=personas.outsider)
    with pytest.raises(ValidationError, match="not a member of this team"):
        services.transfer_primary_admin(team=personas.team, to=foreign, actor=personas.primary_admin)


def test_the_database_refuses_a_second_primary_admin(personas):
    membership = personas.membership(personas.member)
    membership.role = Role.PRIMARY_ADMIN
    with pytest.raises(IntegrityError), transaction.atomic():
        membership.save()


def test_audit_events_record_the_client_address(admin_client, personas):
    admin_client.post(
        f"/teams/{personas.team.slug}/users/invite/",
        {"email": "ip@example.com", "role": "member"},
        REMOTE_ADDR="203.0.113.9",
    )
    assert AuditEvent.objects.get(action="member.invited").ip_address == "203.0.113.9"


def test_updating_team_settings_is_audited_and_validated(personas):
    services.update_team_settings(
        team=personas.team, name="Renamed", time_zone="Asia/Tokyo", actor=personas.primary_admin
    )
    personas.team.refresh_from_db()
    assert (personas.team.name, personas.team.time_zone) == ("Renamed", "Asia/Tokyo")
    assert AuditEvent.objects.get(action="team.settings_changed").details["time_zone"] == [
        "Europe/Berlin",
        "Asia/Tokyo",
    ]
    with pytest.raises(ValidationError):
        services.update_team_settings(team=personas.team, name=" ", time_zone="UTC", actor=personas.primary_admin)
