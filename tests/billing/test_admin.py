"""Staff pages for billing: every list opens; money rows are read-only."""

import pytest
from django.urls import reverse

from accounts.models import User


@pytest.fixture
def staff_client(client, db):
    staff = User.objects.create_superuser("staff@example.com", "staff-pass-12345")
    client.force_login(staff)
    return client


@pytest.mark.parametrize("model", ["rate", "tokenpack", "cloudcreditbalance", "ledgerentry", "usageevent"])
def test_staff_lists_open(staff_client, model, buy, log):
    from tests.billing.conftest import T0

    buy(50)
    log("autocad", T0, T0.replace(hour=10))
    response = staff_client.get(reverse(f"admin:billing_{model}_changelist"))
    assert response.status_code == 200


def test_ledger_entries_cannot_be_added_or_deleted_by_staff(staff_client):
    assert staff_client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403


def test_a_rate_in_force_is_not_editable_but_can_be_saved_as_a_new_row(staff_client):
    from billing.models import Rate

    rate = Rate.objects.get(code="autocad")
    url = reverse("admin:billing_rate_change", args=[rate.pk])
    assert staff_client.get(url).status_code == 200  # shown, read-only
    response = staff_client.post(url, {"code": "autocad", "name": "AutoCAD", "charge_type": "daily", "tokens": "1"})
    assert response.status_code == 403
    rate.refresh_from_db()
    assert rate.tokens == 7
    assert staff_client.get(reverse("admin:billing_rate_add")).status_code == 200


def test_members_do_not_reach_the_admin(client, personas):
    client.force_login(personas.primary_admin)
    response = client.get(reverse("admin:billing_ledgerentry_changelist"))
    assert response.status_code == 302
