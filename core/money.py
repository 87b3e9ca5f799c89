"""Tokens and credits are Decimals with two places, never floats."""

from __future__ import annotations

from decimal import Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def to_cents(amount: Decimal | int | float | str | None) -> Decimal:
    """``amount`` as a Decimal with two places (``None`` is zero)."""
    return Decimal(amount or 0).quantize(CENT)


def fmt(amount: Decimal | int) -> str:
    """Amounts travel as strings with two decimals ("83.00")."""
    return str(to_cents(amount))


def tokens_text(amount: Decimal | int) -> str:
    """Tokens as people read them: 1,250 or 12.50."""
    amount = to_cents(amount)
    return f"{amount:,.0f}" if amount == amount.to_integral_value() else f"{amount:,.2f}"
