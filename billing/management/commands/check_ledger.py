"""Check the ledger invariants (domain.md, "a ledger check anyone can run").

Exits 0 with a one-line summary when everything adds up; otherwise prints every violation,
one per line, and exits 1.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from billing.selectors import ledger_check


class Command(BaseCommand):
    help = (
        "Check that every pack and credit balance equals the sum of its ledger entries, nothing is "
        "negative, expired packs hold nothing, charged events are backed by entries and the report "
        "rollups equal the raw ledger. Exits 1 and names every violation."
    )

    def handle(self, *args, **options) -> None:
        check = ledger_check()
        counted = (
            f"{check.packs} packs, {check.credit_balances} cloud credit balances, {check.entries} ledger entries, "
            f"{check.events} usage events, {check.teams} teams' rollups"
        )
        if check.ok:
            self.stdout.write(self.style.SUCCESS(f"Ledger OK: checked {counted}."))
            return
        for line in check.violations:
            self.stdout.write(line)
        noun = "violation" if len(check.violations) == 1 else "violations"
        raise CommandError(f"{len(check.violations)} ledger {noun} (checked {counted}).", returncode=1)
