"""The rate sheet, as staff change it in the Django admin (domain.md "Rate sheet").

A rate change is a new row with a later ``effective_from``; a row in force has priced
usage and stays as it is. Every change is audited.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.audit import write_audit_event
from accounts.models import User
from billing.models import Rate, RateVariant
from core.money import fmt

IN_FORCE = "This rate is in force and has priced usage: add a new row with a later effective date instead."


def _check_not_in_force(rate: Rate, now: datetime) -> None:
    if rate.pk is not None:
        stored = Rate.objects.filter(pk=rate.pk).values_list("effective_from", flat=True).first()
        if stored is not None and stored <= now:
            raise ValidationError(IN_FORCE)


def _describe(rate: Rate) -> dict:
    return {
        "code": rate.code,
        "name": rate.name,
        "charge_type": rate.charge_type,
        "tokens": fmt(rate.tokens),
        "unit": rate.unit,
        "cloud_credit_eligible": rate.cloud_credit_eligible,
        "grace_minutes": rate.grace_minutes,
        "effective_from": rate.effective_from.isoformat(),
    }


@transaction.atomic
def save_rate(
    *,
    rate: Rate,
    variants: list[RateVariant] = (),
    removed_variants: list[RateVariant] = (),
    actor: User | None,
    now: datetime | None = None,
) -> Rate:
    """Add a rate row, or change one not yet in force, with its variants."""
    now = now or timezone.now()
    _check_not_in_force(rate, now)
    created = rate.pk is None
    rate.full_clean()
    rate.save()
    for variant in removed_variants:
        if variant.pk is not None:
            variant.delete()
    for variant in variants:
        variant.rate = rate
        variant.full_clean()
        variant.save()
    write_audit_event(
        action="rate.created" if created else "rate.changed",
        actor=actor,
        target=rate,
        details={
            **_describe(rate),
            "variants": {v.code: fmt(v.tokens) for v in rate.variants.all()},
        },
    )
    return rate


@transaction.atomic
def delete_rate(*, rate: Rate, actor: User | None, now: datetime | None = None) -> None:
    """Remove a rate row that is not yet in force."""
    _check_not_in_force(rate, now or timezone.now())
    details = _describe(rate)
    write_audit_event(action="rate.deleted", actor=actor, target=rate, details=details)
    rate.delete()
