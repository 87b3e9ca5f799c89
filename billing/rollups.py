"""The daily usage rollup (``UsageRollup``), billing's to write: reports only read it.

Every charge and refund adds its change here, in the same transaction as its ledger
entries, so rollup totals always equal the ledger's (``selectors.ledger_violations``
checks it). One upsert per batch, whatever the number of events.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from accounts.models import Team
from billing.models import EventStatus, UsageRollup
from core.money import ZERO


class RollupDelta:
    """Changes to the daily usage rollup of one batch: one upsert for all its groups."""

    def __init__(self, team: Team) -> None:
        self.team = team
        self.groups: dict[tuple, list] = defaultdict(lambda: [ZERO, ZERO, 0, 0])

    def add(
        self,
        moment: datetime,
        product: str,
        user_id: int,
        outcome: Any = None,
        *,
        tokens: Decimal = ZERO,
        credits: Decimal = ZERO,
        charges: int = 0,
        denials: int = 0,
    ) -> None:
        if outcome is not None:
            tokens, credits = outcome.tokens, outcome.credits
            charges = 1 if outcome.status == EventStatus.CHARGED else 0
            denials = 1 if outcome.status == EventStatus.DENIED else 0
        # Usage counts on the day, in the team's time zone, its window opened (or the job ran).
        day = timezone.localtime(moment, self.team.tz).date()
        group = self.groups[(day, product, user_id)]
        group[0] += tokens
        group[1] += credits
        group[2] += charges
        group[3] += denials

    def save(self, *, now: datetime) -> None:
        if not self.groups:
            return
        keys = self.groups.keys()
        existing = {
            (r.day, r.product, r.user_id): r
            for r in UsageRollup.objects.filter(
                team=self.team,
                day__in={k[0] for k in keys},
                product__in={k[1] for k in keys},
                user_id__in={k[2] for k in keys},
            )
        }
        rows = []
        for key, (tokens, credits, charges, denials) in self.groups.items():
            row = existing.get(key) or UsageRollup(team=self.team, day=key[0], product=key[1], user_id=key[2])
            row.tokens += tokens
            row.cloud_credits += credits
            row.charges += charges
            row.denials += denials
            row.updated_at = now
            rows.append(row)
        UsageRollup.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["team", "day", "product", "user"],
            update_fields=["tokens", "cloud_credits", "charges", "denials", "updated_at"],
        )
