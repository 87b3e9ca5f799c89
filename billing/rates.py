"""The rate sheet as the charging code sees it: the row in force at a moment."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from billing.models import Rate


class RateBook:
    """Every rate row of some products, loaded once, looked up by time in memory."""

    def __init__(self, rates: Iterable[Rate]) -> None:
        self._rows: dict[str, list[Rate]] = defaultdict(list)
        for rate in sorted(rates, key=lambda r: r.effective_from):
            self._rows[rate.code].append(rate)
        self._starts = {code: [r.effective_from for r in rows] for code, rows in self._rows.items()}
        # Each row's variants (code -> tokens), read once: charging asks for every event.
        self._variants = {
            id(rate): {v.code: v.tokens for v in rate.variants.all()} for rows in self._rows.values() for rate in rows
        }

    @classmethod
    def load(cls, codes: Iterable[str] | None = None) -> RateBook:
        queryset = Rate.objects.prefetch_related("variants")
        if codes is not None:
            queryset = queryset.filter(code__in=set(codes))
        return cls(queryset)

    def knows(self, code: str) -> bool:
        return code in self._rows

    def at(self, code: str, moment: datetime) -> Rate | None:
        """The row in force at ``moment``: the latest whose effective_from is not after it."""
        index = bisect_right(self._starts.get(code, []), moment)
        return self._rows[code][index - 1] if index else None

    def variants(self, rate: Rate) -> dict[str, Decimal]:
        """The rate row's variants: tokens by code, in the row's order (empty when none)."""
        found = self._variants.get(id(rate))
        return found if found is not None else {v.code: v.tokens for v in rate.variants.all()}

    def variant_tokens(self, rate: Rate, variant: str) -> Decimal | None:
        return self.variants(rate).get(variant)
