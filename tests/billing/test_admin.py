"""Staff pages for billing: every list opens; money rows are read-only."""

from decimal import Decimal

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


def test_a_new_rate_row_from_the_admin_is_saved_with_its_variants_and_audited(staff_client):
    from accounts.models import AuditEvent
    from billing.models import Rate

    response = staff_client.post(
        reverse("admin:billing_rate_add"),
        {
            "code": "fea-simulation",
            "name": "FEA simulation",
            "charge_type": "per_result",
            "tokens": "0",
            "unit": "simulation",
            "cloud_credit_eligible": "on",
            "grace_minutes": "5",
            "effective_from_0": "2030-01-01",
            "effective_from_1": "00:00:00",
            "created_at_0": "2026-11-28",
            "created_at_1": "12:00:00",
            "variants-TOTAL_FORMS": "2",
            "variants-INITIAL_FORMS": "0",
            "variants-0-code": "simple",
            "variants-0-tokens": "3",
            "variants-1-code": "complex",
            "variants-1-tokens": "9.50",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    rate = Rate.objects.get(code="fea-simulation")
    assert {v.code: v.tokens for v in rate.variants.all()} == {"simple": 3, "complex": Decimal("9.50")}
    event = AuditEvent.objects.get(action="rate.created")
    assert event.actor.email == "staff@example.com"
    assert event.details["variants"] == {"simple": "3.00", "complex": "9.50"}

    response = staff_client.post(reverse("admin:billing_rate_delete", args=[rate.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Rate.objects.filter(code="fea-simulation").exists()
    assert AuditEvent.objects.filter(action="rate.deleted", target_id=str(rate.pk)).exists()


def test_the_rate_service_refuses_to_change_a_row_in_force(db):
    from django.core.exceptions import ValidationError

    from billing import services
    from billing.models import Rate

    rate = Rate.objects.get(code="autocad")
    rate.tokens = 1
    with pytest.raises(ValidationError, match="in force"):
        services.save_rate(rate=rate, actor=None)
    with pytest.raises(ValidationError, match="in force"):
        services.delete_rate(rate=Rate.objects.get(code="autocad"), actor=None)
    assert Rate.objects.get(code="autocad").tokens == 7
