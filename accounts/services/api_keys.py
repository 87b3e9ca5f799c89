"""API keys: made (shown once), revoked, and noted when used."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.audit import write_audit_event
from accounts.models import API_KEY_MARKER, API_KEY_PREFIX_LENGTH, ApiKey, Reseller, Team, User, hash_token
from core.validators import clean_text

API_KEY_NAME_MAX_LENGTH = ApiKey._meta.get_field("name").max_length
# last_used_at is a hint for people ("is this key still in use?"), not a log: writing it on
# every request would turn each API call into a write on one hot row.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


@transaction.atomic
def create_api_key(
    *, team: Team | None = None, reseller: Reseller | None = None, name: str, actor: User | None
) -> tuple[ApiKey, str]:
    """A new key for one team or one reseller. Returns the key and its secret, which is
    stored nowhere (only its hash is): the caller shows it once.

    A key made by a person (``actor``) acts with that person's standing, checked at every
    use (``accounts.access.api_key_refusal``); one made without (the ``create_api_key``
    command, run by whoever runs the installation) is an integration key with admin rights.
    """
    if (team is None) == (reseller is None):
        raise ValidationError("An API key belongs to either a team or a reseller.")
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the key a name, for example the program that will use it."})
    name = clean_text(name, field="name", label="A key's name", max_length=API_KEY_NAME_MAX_LENGTH)
    secret = API_KEY_MARKER + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name,
        prefix=secret[:API_KEY_PREFIX_LENGTH],
        key_hash=hash_token(secret),
        team=team,
        reseller=reseller,
        created_by=actor if actor is not None and actor.pk else None,
        integration=actor is None,
    )
    write_audit_event(
        action="api_key.created",
        actor=actor,
        team=team,
        reseller=reseller,
        target=key,
        details={"name": name, "prefix": key.prefix},
    )
    return key, secret


@transaction.atomic
def revoke_api_key(*, key: ApiKey, actor: User | None) -> ApiKey:
    """Stop a key from working at once. Revoking a revoked key changes nothing."""
    locked = ApiKey.objects.select_for_update().get(pk=key.pk)
    if locked.revoked_at is None:
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        write_audit_event(
            action="api_key.revoked",
            actor=actor,
            team=locked.team,
            reseller=locked.reseller,
            target=locked,
            details={"name": locked.name, "prefix": locked.prefix},
        )
    key.revoked_at = locked.revoked_at
    return key


def touch_api_key(*, key: ApiKey, now: datetime | None = None) -> bool:
    """Note that a key was used; returns whether a row was written.

    At most one write a minute per key, and none when the key in hand says it was used
    within the minute. One conditional UPDATE, so concurrent requests need no lock and
    at most one of them writes. Not audited: it records use, not a change anybody made.
    """
    now = now or timezone.now()
    cutoff = now - API_KEY_TOUCH_INTERVAL
    if key.last_used_at is not None and key.last_used_at > cutoff:
        return False
    written = (
        ApiKey.objects.filter(pk=key.pk)
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=cutoff))
        .update(last_used_at=now)
    )
    if written:
        key.last_used_at = now
    return bool(written)
