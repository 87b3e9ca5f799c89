"""The bell, the notices list and Settings > Alerts, through the client."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import AlertOptOut, AlertSettings, AuditEvent, Notification, NotificationKind


def notice_for(user, team=None, title="Low balance: 3 tokens left in Own Team", link=""):
    [notice] = services.notify(
        users=[user], team=team, kind=NotificationKind.LOW_BALANCE, title=title, body="Buy a pack.", link=link
    )
    return notice


def test_the_bell_shows_the_unread_count_on_every_page(admin_client, personas):
    notice_for(personas.primary_admin, personas.team)
    notice_for(personas.primary_admin, personas.team, title="Second")
    notice_for(personas.secondary_admin, personas.team)  # someone else's
    page = admin_client.get(reverse("accounts:team-home", args=[personas.team.slug])).content.decode()
    assert 'class="bell bell-unread"' in page
    assert '<span class="bell-count">2</span>' in page
    assert reverse("accounts:notification-list") in page


def test_without_unread_notices_the_bell_shows_no_count(admin_client, personas):
    page = admin_client.get(reverse("accounts:profile")).content.decode()
    assert "bell-count" not in page
    assert "none unread" in page


def test_the_list_shows_only_your_notices_newest_first(admin_client, personas):
    notice_for(personas.primary_admin, personas.team, title="Older")
    notice_for(personas.primary_admin, personas.team, title="Newer")
    notice_for(personas.outsider, personas.other_team, title="Not yours")
    page = html.unescape(admin_client.get(reverse("accounts:notification-list")).content.decode())
    assert page.index("Newer") < page.index("Older")
    assert "Not yours" not in page
    assert "2 unread" in page


def test_marking_a_notice_read_lowers_the_count_and_goes_back(admin_client, personas):
    notice = notice_for(personas.primary_admin, personas.team)
    back = reverse("accounts:notification-list") + "?page=1"
    response = admin_client.post(reverse("accounts:notification-read", args=[notice.pk]), {"next": back})
    assert response.status_code == 302 and response.url == back
    notice.refresh_from_db()
    assert notice.read_at is not None
    assert "bell-count" not in admin_client.get(reverse("accounts:profile")).content.decode()


def test_marking_read_never_redirects_off_site(admin_client, personas):
    notice = notice_for(personas.primary_admin, personas.team)
    response = admin_client.post(
        reverse("accounts:notification-read", args=[notice.pk]), {"next": "https://evil.example/"}
    )
    assert response.url == reverse("accounts:notification-list")


@pytest.mark.parametrize("role", ["secondary_admin", "report_viewer", "member", "sales_rep", "outsider"])
def test_another_persons_notice_is_not_found(client, personas, role):
    notice = notice_for(personas.primary_admin, personas.team)
    client.force_login(personas.by_role(role))
    response = client.post(reverse("accounts:notification-read", args=[notice.pk]))
    assert response.status_code == 404
    notice.refresh_from_db()
    assert notice.read_at is None


def test_mark_all_as_read_touches_only_your_notices(admin_client, personas):
    for _ in range(3):
        notice_for(personas.primary_admin, personas.team)
    theirs = notice_for(personas.secondary_admin, personas.team)
    response = admin_client.post(reverse("accounts:notification-read-all"), follow=True)
    assert "Marked 3 notices as read." in response.content.decode()
    assert not Notification.objects.filter(user=personas.primary_admin, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_a_sales_rep_sees_the_bell_too(client, personas):
    notice_for(personas.sales_rep, personas.team, link=reverse("billing:customer-detail", args=[personas.team.slug]))
    client.force_login(personas.sales_rep)
    page = client.get(reverse("billing:customer-list")).content.decode()
    assert '<span class="bell-count">1</span>' in page


# --- Settings > Alerts ----------------------------------------------------------------------------


def alerts_url(personas) -> str:
    return reverse("accounts:alert-settings", args=[personas.team.slug])


def test_the_alerts_page_shows_the_defaults_and_is_a_settings_tab(admin_client, personas):
    response = admin_client.get(alerts_url(personas))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'aria-current="page">Alerts</a>' in page
    assert [entry.label for entry in response.context["nav"] if entry.active] == ["Settings"]
    form = response.context["form"]
    assert form.initial["low_balance_unit"] == "percent"
    assert form.initial["low_balance_value"] == 20
    assert sorted(form.initial["expiry_recipients"]) == sorted([personas.primary_admin.pk, personas.secondary_admin.pk])
    # Only admins can be chosen.
    choices = {value for value, _ in form.fields["low_balance_recipients"].choices}
    assert choices == {personas.primary_admin.pk, personas.secondary_admin.pk}


def test_saving_alert_settings(admin_client, personas):
    response = admin_client.post(
        alerts_url(personas),
        {
            "expiry_reminders": "on",
            "expiry_recipients": [personas.primary_admin.pk],
            "low_balance_value": "250",
            "low_balance_unit": "tokens",
            "low_balance_recipients": [personas.primary_admin.pk, personas.secondary_admin.pk],
        },
    )
    assert response.status_code == 302
    saved = AlertSettings.objects.get(team=personas.team)
    assert (saved.expiry_reminders, saved.low_balance, saved.low_balance_unit, saved.low_balance_value) == (
        True,
        False,
        "tokens",
        250,
    )
    assert set(AlertOptOut.objects.values_list("user__email", "kind")) == {
        (personas.secondary_admin.email, NotificationKind.EXPIRY_REMINDER)
    }
    event = AuditEvent.objects.get(action="alerts.updated")
    assert event.actor == personas.primary_admin
    assert event.details["low_balance_threshold"] == "250 tokens"
    again = admin_client.get(alerts_url(personas)).context["form"]
    assert again.initial["expiry_recipients"] == [personas.primary_admin.pk]


@pytest.mark.parametrize(
    "unit,value,message",
    [("percent", "101", "A percentage between 1 and 100."), ("percent", "0", "greater than or equal to 1")],
)
def test_an_impossible_threshold_is_refused_on_its_field(admin_client, personas, unit, value, message):
    response = admin_client.post(
        alerts_url(personas), {"low_balance": "on", "low_balance_unit": unit, "low_balance_value": value}
    )
    assert response.status_code == 400
    assert message in html.unescape(response.content.decode())
    assert not AlertSettings.objects.exists()


def test_a_non_admin_can_not_be_made_a_recipient(admin_client, personas):
    response = admin_client.post(
        alerts_url(personas),
        {"low_balance_unit": "percent", "low_balance_value": "20", "low_balance_recipients": [personas.member.pk]},
    )
    assert response.status_code == 400
    assert not AlertSettings.objects.exists()
