"""Packs and cloud credits: purchases, grants, expiry and moves between teams.

Every service that moves a team's tokens locks that team's row first (``lock_team``), so
two requests can never spend the same tokens; services that touch two teams lock both in
id order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from accounts.audit import write_audit_event
from accounts.models import NotificationKind, Team, User
from accounts.selectors import alert_recipients
from accounts.services import lock_team, lock_teams, notify
from billing.alerts import request_balance_check
from billing.events import FUTURE_TOLERANCE
from billing.ledger import SIGN, ledger_entry
from billing.models import CloudCreditBalance, EntryKind, LedgerEntry, TokenPack
from core.exceptions import Conflict
from core.money import CENT, ZERO, fmt, tokens_text
from core.validators import storable_time, text_problem

MAX_PACK_TOKENS = 2_147_483_647  # TokenPack.tokens, a positive integer column


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


@dataclass(frozen=True)
class PurchasePreview:
    """What recording a purchase would do, written nowhere: the confirmation step of the
    sales rep's form. ``existing`` is the pack already recorded with the reference and the
    same data (recording again returns it); other data raises ``Conflict`` instead."""

    team: Team
    reference: str
    tokens: int
    purchased_at: datetime
    expires_at: datetime
    price: Decimal | None
    currency: str
    note: str
    existing: TokenPack | None

    @property
    def expires_after_contract(self) -> bool:
        """The pack outlives the contract: tokens left at the contract's end can't be used
        unless the contract is renewed (a warning, not a refusal)."""
        return timezone.localtime(self.expires_at, self.team.tz).date() > self.team.contract_end


def _pack_expiry(purchased_at: datetime) -> datetime:
    return purchased_at + relativedelta(months=settings.FLEX_PACK_TERM_MONTHS)


def _check_purchase(
    *,
    team: Team,
    reference: str,
    tokens: int,
    purchased_at: datetime,
    price: Decimal | None,
    currency: str,
    note: str,
    now: datetime,
) -> None:
    """Every rule of a purchase that needs no lock; raises one ``ValidationError`` naming
    each bad field. Asked by ``record_purchase`` and by its preview, so they never differ."""
    errors: dict[str, str] = {}
    problem = text_problem(reference, label="The order reference", max_length=100, required=True)
    if problem:
        errors["reference"] = "An order reference is required." if not reference else problem
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens <= 0:
        errors["tokens"] = "Tokens must be a whole number greater than 0."
    elif tokens > MAX_PACK_TOKENS:
        errors["tokens"] = f"A pack holds at most {MAX_PACK_TOKENS:,} tokens."
    if timezone.is_naive(purchased_at):
        errors["purchased_at"] = "The purchase time needs a time zone offset."
    elif not storable_time(purchased_at):
        errors["purchased_at"] = "The purchase time is out of range (years 2000 to 2100, offset within ±14:00)."
    elif purchased_at > now + FUTURE_TOLERANCE:
        errors["purchased_at"] = "A purchase can't lie in the future."
    else:
        day = timezone.localtime(purchased_at, team.tz).date()
        if not team.contract_start <= day <= team.contract_end:
            errors["purchased_at"] = (
                f"The purchase date {day} lies outside the contract ({team.contract_start} to {team.contract_end})."
            )
    if price is not None and price < 0:
        errors["price"] = "The price can't be negative."
    if currency and (len(currency) != 3 or not currency.isalpha()):
        errors["currency"] = "The currency is a three-letter code such as EUR."
    if note:
        problem = text_problem(note, label="The note", max_length=500)
        if problem:
            errors["note"] = problem
    if errors:
        raise ValidationError(errors)


@dataclass(frozen=True)
class _Order:
    """A purchase's data, normalised and checked (``_order``)."""

    reference: str
    tokens: int
    purchased_at: datetime
    time_given: bool  # a retry that leaves the time to "now" gets a later now: not other data
    price: Decimal | None
    currency: str
    note: str


def _order(
    *,
    team: Team,
    reference: str,
    tokens: int,
    purchased_at: datetime | None,
    price: Decimal | None,
    currency: str,
    note: str,
    now: datetime,
) -> _Order:
    """The purchase's data, stripped, with "now" for a missing time, checked
    (``_check_purchase``): the one entry of ``record_purchase`` and ``preview_purchase``."""
    order = _Order(
        reference=(reference or "").strip(),
        tokens=tokens,
        purchased_at=purchased_at or now,
        time_given=purchased_at is not None,
        price=price,
        currency=currency or "",
        note=(note or "").strip(),
    )
    _check_purchase(
        team=team,
        reference=order.reference,
        tokens=order.tokens,
        purchased_at=order.purchased_at,
        price=order.price,
        currency=order.currency,
        note=order.note,
        now=now,
    )
    return order


def _recorded(team: Team, order: _Order) -> TokenPack | None:
    """The pack already recorded with the order's reference (references are unique per
    reseller), when it is this order again; ``Conflict`` naming the pack when it was
    recorded with other data (idempotent on the reference). None for a new order."""
    existing = (
        TokenPack.objects.select_related("team").filter(reseller_id=team.reseller_id, reference=order.reference).first()
    )
    if existing is None:
        return None
    if existing.team_id != team.pk:
        raise Conflict(
            {
                "reference": (
                    # References are unique per reseller: the other team is a customer of the same one.
                    f"The order reference “{existing.reference}” is already recorded for {existing.team.name}: "
                    f"pack {existing.reference} of {existing.tokens:,} tokens, bought on "
                    f"{timezone.localtime(existing.purchased_at, existing.team.tz):%Y-%m-%d}. "
                    "Nothing was recorded; use the order's own reference."
                )
            }
        )
    same = (
        existing.tokens == order.tokens
        and (not order.time_given or existing.purchased_at == order.purchased_at)
        and (order.price is None or existing.price == order.price)
        and (not order.currency or existing.currency == order.currency.upper())
        and (not order.note or existing.note == order.note)
    )
    if not same:
        price_text = f", {existing.price} {existing.currency}".rstrip() if existing.price is not None else ""
        raise Conflict(
            {
                "reference": (
                    f"The order reference “{existing.reference}” was already recorded with other data: pack "
                    f"{existing.reference} of {existing.tokens:,} tokens, bought on "
                    f"{timezone.localtime(existing.purchased_at, team.tz):%Y-%m-%d %H:%M}{price_text}. "
                    "Nothing was recorded."
                )
            }
        )
    return existing


def preview_purchase(
    *,
    team: Team,
    reference: str,
    tokens: int,
    purchased_at: datetime | None = None,
    price: Decimal | None = None,
    currency: str = "",
    note: str = "",
    now: datetime | None = None,
) -> PurchasePreview:
    """What ``record_purchase`` would do with these data, writing nothing: the same checks
    (``ValidationError``; ``Conflict`` for a reference recorded with other data), the
    expiry the pack would get, and the pack already recorded when it is the same order."""
    order = _order(
        team=team,
        reference=reference,
        tokens=tokens,
        purchased_at=purchased_at,
        price=price,
        currency=currency,
        note=note,
        now=_now(now),
    )
    return PurchasePreview(
        team=team,
        reference=order.reference,
        tokens=order.tokens,
        purchased_at=order.purchased_at,
        expires_at=_pack_expiry(order.purchased_at),
        price=order.price,
        currency=order.currency.upper(),
        note=order.note,
        existing=_recorded(team, order),
    )


@transaction.atomic
def record_purchase(
    *,
    team: Team,
    reference: str,
    tokens: int,
    purchased_at: datetime | None = None,
    price: Decimal | None = None,
    currency: str = "",
    note: str = "",
    actor: User | None = None,
    now: datetime | None = None,
    notify_admins: bool = True,
) -> tuple[TokenPack, bool]:
    """Record a pack bought through the team's reseller. Returns (pack, created).

    Idempotent on the order reference: the same reference with the same data returns the
    first pack (created False) and writes nothing; with other data it raises ``Conflict``
    naming the existing pack. A new pack is audited, and the team's admins get an in-app
    notice and an e-mail (``notify_admins``; the demo's history leaves them out).
    """
    now = _now(now)
    order = _order(
        team=team,
        reference=reference,
        tokens=tokens,
        purchased_at=purchased_at,
        price=price,
        currency=currency,
        note=note,
        now=now,
    )
    team = lock_team(team)
    existing = _recorded(team, order)
    if existing is not None:
        return existing, False
    try:
        # The team lock does not cover a sister team recording the same reference at the
        # same moment; the unique constraint does, and that clash is a conflict, not a crash.
        with transaction.atomic():
            pack = TokenPack.objects.create(
                team=team,
                reseller_id=team.reseller_id,
                reference=order.reference,
                tokens=order.tokens,
                remaining=Decimal(order.tokens),
                price=order.price,
                currency=order.currency.upper(),
                note=order.note,
                purchased_at=order.purchased_at,
                expires_at=_pack_expiry(order.purchased_at),
                recorded_by=actor,
            )
    except IntegrityError:
        raise Conflict(
            {"reference": f"The order reference “{order.reference}” was just recorded for another team."}
        ) from None
    ledger_entry(
        kind=EntryKind.PURCHASE, amount=Decimal(order.tokens), account=pack, at=order.purchased_at, actor=actor
    ).save()
    details = {"reference": order.reference, "tokens": order.tokens, "purchased_at": order.purchased_at.isoformat()}
    if order.note:
        details["note"] = order.note
    write_audit_event(
        action="pack.recorded", actor=actor, team=team, reseller=team.reseller, target=pack, details=details
    )
    if notify_admins:
        _announce_pack(pack=pack, team=team, now=now)
    request_balance_check(team=team)  # a purchase may end a low-balance spell
    return pack, True


def _announce_pack(*, pack: TokenPack, team: Team, now: datetime) -> None:
    """The team's admins hear of a new pack: an in-app notice, e-mailed once. Only the
    order's own data (no usage of anybody)."""
    purchased_on = timezone.localtime(pack.purchased_at, team.tz).date()
    expires_on = timezone.localtime(pack.expires_at, team.tz).date()
    tokens = tokens_text(Decimal(pack.tokens))
    data = {
        "team": team.name,
        "reseller": team.reseller.name,
        "reference": pack.reference,
        "tokens": tokens,
        "purchased_on": purchased_on.isoformat(),
        "purchased_on_text": f"{purchased_on:%b} {purchased_on.day}, {purchased_on.year}",
        "expires_on": expires_on.isoformat(),
        "expires_on_text": f"{expires_on:%b} {expires_on.day}, {expires_on.year}",
    }
    notify(
        users=alert_recipients(team=team, kind=NotificationKind.PACK_RECORDED),
        team=team,
        kind=NotificationKind.PACK_RECORDED,
        title=f"New pack: {tokens} tokens for {team.name}",
        body=(
            f"{team.reseller.name} recorded pack {pack.reference} of {tokens} tokens, bought on "
            f"{data['purchased_on_text']}. Its tokens can be used until {data['expires_on_text']}."
        ),
        link=reverse("billing:tokens", args=[team.slug]),
        data=data,
        now=now,
    )


@transaction.atomic
def grant_cloud_credits(
    *,
    team: Team,
    credits: Decimal,
    granted_at: datetime | None = None,
    actor: User | None = None,
    now: datetime | None = None,
) -> CloudCreditBalance:
    """Record a legacy cloud-credit balance; it expires at the global cutoff."""
    granted_at = granted_at or _now(now)
    cutoff = settings.FLEX_CLOUD_CREDITS_EXPIRE_AT
    try:
        credits = Decimal(credits).quantize(CENT)
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationError({"credits": "Credits must be a number."}) from None
    if credits <= 0:
        raise ValidationError({"credits": "Credits must be greater than 0."})
    if timezone.is_naive(granted_at):
        raise ValidationError({"granted_at": "The grant time needs a time zone offset."})
    if not storable_time(granted_at):
        raise ValidationError({"granted_at": "The grant time is out of range (years 2000 to 2100)."})
    if granted_at >= cutoff:
        raise ValidationError({"credits": f"Cloud credits can't be granted after the cutoff ({cutoff:%Y-%m-%d})."})
    team = lock_team(team)
    balance = CloudCreditBalance.objects.create(
        team=team, credits=credits, remaining=credits, granted_at=granted_at, expires_at=cutoff, recorded_by=actor
    )
    ledger_entry(kind=EntryKind.GRANT, amount=credits, account=balance, at=granted_at, actor=actor).save()
    write_audit_event(
        action="cloud_credits.granted", actor=actor, team=team, target=balance, details={"credits": fmt(credits)}
    )
    return balance


def _expire(queryset: QuerySet, *, now: datetime) -> int:
    """Close every row of ``queryset`` (packs or credit balances) whose expiry has passed.

    Teams are closed ``FLEX_EXPIRY_TEAMS_PER_TRANSACTION`` (100) at a time, one transaction each: their locks are
    taken in id order (the order every service takes them); then one statement writes an
    expiry entry, dated at the row's own expiry, for what each due row still holds, and one
    UPDATE closes the rows. Every writer of a team's packs and credits holds the team's lock,
    so nothing changes them between the two. No row is read into memory: memory stays
    flat however many rows are due. Safe to run twice or concurrently: only rows not yet
    closed are closed, so an expiry is written once.
    """
    due = queryset.filter(expired_at__isnull=True, expires_at__lte=now)
    team_ids = sorted(due.order_by().values_list("team_id", flat=True).distinct())
    count = 0
    size = settings.FLEX_EXPIRY_TEAMS_PER_TRANSACTION
    for first in range(0, len(team_ids), size):
        chunk = team_ids[first : first + size]
        with transaction.atomic():
            lock_teams(chunk)
            _write_expiry_entries(queryset.model, team_ids=chunk, now=now)
            count += due.filter(team_id__in=chunk).update(remaining=ZERO, expired_at=now)
    return count


def _write_expiry_entries(model: type[TokenPack | CloudCreditBalance], *, team_ids: list[int], now: datetime) -> None:
    """INSERT … SELECT: one expiry entry per due row of ``model`` that still holds something,
    as ``ledger_entry`` would build it (the kind's sign, the row's team, dated at its expiry)."""
    quote = connection.ops.quote_name
    account = "pack_id" if model is TokenPack else "credit_balance_id"
    columns = ", ".join(quote(name) for name in ("team_id", account, "kind", "amount", "at", "note", "created_at"))
    teams = ", ".join(["%s"] * len(team_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(LedgerEntry._meta.db_table)} ({columns}) "  # noqa: S608 - names from the models
            f"SELECT {quote('team_id')}, {quote('id')}, %s, %s * {quote('remaining')}, {quote('expires_at')}, %s, %s "
            f"FROM {quote(model._meta.db_table)} WHERE {quote('team_id')} IN ({teams}) "
            f"AND {quote('expired_at')} IS NULL AND {quote('expires_at')} <= %s AND {quote('remaining')} > 0",
            [EntryKind.EXPIRY.value, SIGN[EntryKind.EXPIRY], "Expired unused", timezone.now(), *team_ids, now],
        )


def expire_packs(*, now: datetime | None = None) -> int:
    """Write an expiry entry for whatever expired packs still hold; returns packs closed."""
    return _expire(TokenPack.objects.all(), now=_now(now))


def expire_cloud_credits(*, now: datetime | None = None) -> int:
    return _expire(CloudCreditBalance.objects.all(), now=_now(now))


@transaction.atomic
def move_pack(*, pack: TokenPack, to_team: Team, actor: User | None = None, now: datetime | None = None) -> TokenPack:
    """Move what a pack still holds to another team of the same reseller, as two entries.

    The pack changes hands; its past usage stays with the team that spent it.
    """
    now = _now(now)
    if to_team.pk == pack.team_id:
        raise ValidationError("The pack already belongs to that team.")
    if to_team.reseller_id != pack.reseller_id:
        raise ValidationError("A pack can only move between teams of the same reseller.")
    # Two teams: lock in id order so two opposite moves can't deadlock. The owner is read
    # afresh, and checked again under the locks: a concurrent move may have changed it.
    owner_id = TokenPack.objects.values_list("team_id", flat=True).get(pk=pack.pk)
    for team_id in sorted({owner_id, to_team.pk}):
        lock_team(Team(pk=team_id))
    pack = TokenPack.objects.select_for_update().get(pk=pack.pk)
    if pack.team_id != owner_id:
        raise ValidationError("The pack changed hands meanwhile; try again.")
    if pack.team_id == to_team.pk:
        raise ValidationError("The pack already belongs to that team.")
    if pack.expired_at is not None or pack.expires_at <= now:
        raise ValidationError("An expired pack can't be moved.")
    if pack.remaining <= 0:
        raise ValidationError("The pack has no tokens left to move.")
    from_team_id, amount = pack.team_id, pack.remaining
    LedgerEntry.objects.bulk_create(
        [
            ledger_entry(
                kind=EntryKind.MOVE_OUT,
                amount=amount,
                account=pack,
                team_id=from_team_id,
                at=now,
                actor=actor,
                note=f"Moved to {to_team.slug}",
            ),
            ledger_entry(
                kind=EntryKind.MOVE_IN,
                amount=amount,
                account=pack,
                team_id=to_team.pk,
                at=now,
                actor=actor,
                note=f"Moved from team {from_team_id}",
            ),
        ]
    )
    pack.team = to_team
    pack.save(update_fields=["team"])
    write_audit_event(
        action="pack.moved",
        actor=actor,
        team=to_team,
        target=pack,
        details={"from_team": from_team_id, "to_team": to_team.pk, "tokens": fmt(amount)},
    )
    return pack
