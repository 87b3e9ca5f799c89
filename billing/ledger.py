"""The one place a ledger entry is made (style: "money is append-only").

The caller says what happened (``kind``) and how much moved (a positive ``amount``); the
sign follows from the kind, so no caller chooses it: purchases, grants, refunds, re-priced
charges given back, expiry reversals and moves in add to a pack or credit balance; usage,
expiry and moves out take from it. Entries are
returned unsaved, for the caller to ``bulk_create`` in its own transaction, or as plain
columns (``ledger_fields``) for batch charging's fast insert.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from billing.models import CloudCreditBalance, EntryKind, LedgerEntry, TokenPack

SIGN = {
    EntryKind.PURCHASE: 1,
    EntryKind.GRANT: 1,
    EntryKind.REFUND: 1,
    EntryKind.REPRICE: 1,
    EntryKind.EXPIRY_REVERSAL: 1,
    EntryKind.MOVE_IN: 1,
    EntryKind.USAGE: -1,
    EntryKind.EXPIRY: -1,
    EntryKind.MOVE_OUT: -1,
}


def ledger_fields(
    *,
    kind: EntryKind,
    amount: Decimal,
    account: TokenPack | CloudCreditBalance,
    at: datetime,
    team_id: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The columns of an entry moving ``amount`` (> 0) on ``account``, signed by ``kind``,
    by attribute name (``team_id``, ``pack_id``, ...), with ``fields`` added as given.

    The entry belongs to the account's team unless ``team_id`` says otherwise (a move
    writes its "out" entry for the team the pack leaves). Batch charging writes these as
    plain rows (``core.bulk.insert_rows``); ``ledger_entry`` makes a model of them.
    """
    if amount <= 0:
        raise ValueError(f"A ledger entry moves a positive amount; got {amount}.")
    pack = isinstance(account, TokenPack)
    return {
        "team_id": team_id if team_id is not None else account.team_id,
        "kind": kind,
        "amount": SIGN[kind] * Decimal(amount),
        "at": at,
        "pack_id": account.pk if pack else None,
        "credit_balance_id": None if pack else account.pk,
        **fields,
    }


def ledger_entry(
    *,
    kind: EntryKind,
    amount: Decimal,
    account: TokenPack | CloudCreditBalance,
    at: datetime,
    team_id: int | None = None,
    **fields: Any,
) -> LedgerEntry:
    """An unsaved entry moving ``amount`` (> 0) on ``account``, signed by ``kind``
    (``ledger_fields``), with ``fields`` given as model arguments (``event=row``)."""
    entry = LedgerEntry(**ledger_fields(kind=kind, amount=amount, account=account, at=at, team_id=team_id), **fields)
    if isinstance(account, TokenPack):
        entry.pack = account
    else:
        entry.credit_balance = account
    return entry
