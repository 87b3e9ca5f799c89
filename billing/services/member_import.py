"""The CSV import of people with a ``flex`` column: accounts reads and checks the people
(``accounts.services.csv_import``), billing checks the column against the rate sheet and,
in the same transaction as the invitations, assigns Flex. Nothing is applied half-way.

The ``flex`` cell: ``all`` (every product, new ones included), product codes separated by
semicolons or commas (``autocad;revit``; a product's name is understood too, in any case),
or empty for no Flex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts import services as account_services
from accounts.models import Membership, Team, User
from accounts.services.csv_import import CsvPreview, CsvRow
from billing.flex_selectors import FlexProduct, describe_products, flex_products
from billing.services.assignments import bulk_assign_flex

FLEX_COLUMN = "flex"
SEPARATORS = re.compile(r"[;,]")


@dataclass
class ImportRow:
    person: CsvRow
    flex: str | list[str] | None  # "all", product codes, or None (no Flex)
    flex_label: str
    flex_errors: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [*self.person.errors, *self.flex_errors]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class ImportPreview:
    rows: list[ImportRow]
    errors: list[str]  # problems with the file as a whole

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rows) and all(row.ok for row in self.rows)

    @property
    def bad_rows(self) -> list[ImportRow]:
        return [row for row in self.rows if not row.ok]

    @property
    def flex_count(self) -> int:
        return sum(1 for row in self.rows if row.flex is not None)


def _read_flex(cell: str, products: list[FlexProduct]) -> tuple[str | list[str] | None, list[str]]:
    """(assignment, errors) for one cell of the flex column."""
    cell = cell.strip()
    if not cell:
        return None, []
    if cell.lower() == "all":
        return "all", []
    known = {p.code.lower(): p.code for p in products} | {p.name.lower(): p.code for p in products}
    codes, unknown = [], []
    for part in (p.strip() for p in SEPARATORS.split(cell)):
        if not part:
            continue
        code = known.get(part.lower())
        if code is None:
            unknown.append(part)
        elif code not in codes:
            codes.append(code)
    if unknown:
        names = ", ".join(f"“{u}”" for u in unknown)
        return None, [
            f"unknown product code{'s' if len(unknown) > 1 else ''} {names} in the Flex column "
            "(use all, or codes from the rate sheet such as autocad;revit)"
        ]
    if not codes:
        return None, []
    return sorted(codes), []


def _wrap(people: CsvPreview, products: list[FlexProduct]) -> ImportPreview:
    names = {p.code: p.name for p in products}
    rows = []
    for person in people.rows:
        flex, errors = _read_flex(person.extra.get(FLEX_COLUMN, ""), products)
        label = "" if flex is None else describe_products(flex, names)
        rows.append(ImportRow(person=person, flex=flex, flex_label=label, flex_errors=errors))
    return ImportPreview(rows=rows, errors=people.errors)


def preview_member_import(*, team: Team, data: bytes) -> ImportPreview:
    """Check every row, the flex column against the rate sheet in force included. Writes nothing."""
    people = account_services.parse_member_csv(team=team, data=data, extra_columns=(FLEX_COLUMN,))
    return _wrap(people, flex_products())


@transaction.atomic
def import_members(*, team: Team, data: bytes, actor: User | None) -> list[Membership]:
    """Invite everybody in the file and give them the Flex of their row, or do nothing at
    all: a bad row (a person's or an unknown product code) refuses the whole file, and a
    failure while assigning undoes the invitations (one transaction)."""
    preview = preview_member_import(team=team, data=data)
    if not preview.ok:
        problems = preview.errors + [f"line {row.person.line}: {'; '.join(row.errors)}" for row in preview.bad_rows]
        raise ValidationError(["Nothing was imported. Fix the file and upload it again.", *problems])
    memberships = account_services.bulk_invite(team=team, data=data, actor=actor)
    by_email = {membership.user.email.lower(): membership.user for membership in memberships}
    # One bulk assignment per distinct scope: a fixed number of queries per scope, not per person.
    groups: dict[tuple[str, ...] | None, list[User]] = {}  # None: all products
    for row in preview.rows:
        if row.flex is not None:
            key = None if row.flex == "all" else tuple(row.flex)
            groups.setdefault(key, []).append(by_email[row.person.email])
    for key, users in groups.items():
        bulk_assign_flex(team=team, users=users, products="all" if key is None else list(key), actor=actor)
    return memberships
