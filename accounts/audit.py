"""The audit trail: one helper that every service calls in its own transaction."""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django.db import models

if TYPE_CHECKING:
    from accounts.models import AuditEvent, Reseller, Team, User

# The address of the request being served, if any (set by AuditContextMiddleware).
client_ip: ContextVar[str | None] = ContextVar("client_ip", default=None)
# Who acts when an API key calls ("API key “Usage uploader” (flx_AbC12xYz…)"), set by the API views:
# a key acts for a team or reseller, not for a person, so the trail names the key.
api_actor: ContextVar[str | None] = ContextVar("api_actor", default=None)


def write_audit_event(
    *,
    action: str,
    actor: User | None,
    team: Team | None = None,
    reseller: Reseller | None = None,
    target: models.Model | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    event = _audit_event(action=action, actor=actor, team=team, reseller=reseller, target=target, details=details)
    event.save()
    return event


def write_audit_events(
    *,
    action: str,
    actor: User | None,
    team: Team | None = None,
    reseller: Reseller | None = None,
    targets: Iterable[tuple[models.Model, dict[str, Any] | None]],
) -> list[AuditEvent]:
    """One event per (target, details), written with one statement: a bulk change of many
    people (say, Flex for 500 members) is still one audit event per person."""
    from accounts.models import AuditEvent

    events = [
        _audit_event(action=action, actor=actor, team=team, reseller=reseller, target=target, details=details)
        for target, details in targets
    ]
    return AuditEvent.objects.bulk_create(events)


def _audit_event(
    *,
    action: str,
    actor: User | None,
    team: Team | None,
    reseller: Reseller | None,
    target: models.Model | None,
    details: dict[str, Any] | None,
) -> AuditEvent:
    from accounts.models import AuditEvent

    return AuditEvent(
        action=action,
        actor=actor if actor is not None and actor.pk else None,
        actor_email=actor.email if actor is not None else (api_actor.get() or "")[:254],
        team=team,
        reseller=reseller,
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:300] if target is not None else "",
        ip_address=client_ip.get(),
        details=details or {},
    )
