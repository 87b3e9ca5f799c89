"""Bulk invitations from a CSV file: a preview of every row, then all or nothing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from accounts.audit import write_audit_event
from accounts.models import Membership, Role, Team, User
from accounts.services.members import invite_user
from accounts.services.people import NAME_MAX_LENGTH
from core.validators import text_problem

CSV_COLUMNS = ("first name", "last name", "email", "role")
ROLE_BY_LABEL = {label.lower(): value for value, label in Role.choices} | {v: v for v in Role.values}


@dataclass
class CsvRow:
    line: int
    first_name: str
    last_name: str
    email: str
    role: str
    errors: list[str] = field(default_factory=list)
    # Cells of the columns a caller asked for (``extra_columns``), by lower-case column name.
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def role_label(self) -> str:
        return Role(self.role).label if self.role in Role.values else self.role


@dataclass
class CsvPreview:
    rows: list[CsvRow]
    errors: list[str]  # problems with the file as a whole

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rows) and all(row.ok for row in self.rows)

    @property
    def bad_rows(self) -> list[CsvRow]:
        return [row for row in self.rows if not row.ok]


def parse_member_csv(*, team: Team, data: bytes, extra_columns: tuple[str, ...] = ()) -> CsvPreview:
    """Read and check a file of ``First name, Last name, Email[, Role]`` rows. Writes nothing.

    Every row is checked: e-mail syntax, known role, duplicates in the file, people who
    are already members, and the primary admin role (never granted by import).

    ``extra_columns``: optional columns a higher layer reads and checks itself (billing's
    ``flex``); their cells come back in ``CsvRow.extra``, unchecked.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return CsvPreview(rows=[], errors=["The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again."])
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        records = [(reader.line_num, record) for record in reader]
    except csv.Error as exc:
        return CsvPreview(rows=[], errors=[f"The file could not be read as CSV: {exc}."])
    records = [(line, rec) for line, rec in records if any(cell.strip() for cell in rec)]
    if not records:
        return CsvPreview(rows=[], errors=["The file is empty. It needs a header row and one row per person."])
    header = [cell.strip().lower().replace("_", " ").replace("e-mail", "email") for cell in records[0][1]]
    missing = [name for name in CSV_COLUMNS[:3] if name not in header]
    if missing:
        return CsvPreview(
            rows=[],
            errors=[
                "The first row must name the columns First name, Last name, Email (and optionally Role); "
                f"missing: {', '.join(m.capitalize() for m in missing)}."
            ],
        )
    if len(records) - 1 > settings.FLEX_CSV_MAX_ROWS:
        return CsvPreview(
            rows=[], errors=[f"The file has {len(records) - 1} rows; at most {settings.FLEX_CSV_MAX_ROWS} at a time."]
        )
    index = {name: header.index(name) for name in (*CSV_COLUMNS, *extra_columns) if name in header}
    existing = set(Membership.objects.filter(team=team).values_list("user__email", flat=True).iterator())
    existing = {email.lower() for email in existing}
    seen: dict[str, int] = {}
    rows: list[CsvRow] = []
    for line, record in records[1:]:

        def cell(name: str, record: list[str] = record) -> str:
            position = index.get(name)
            return record[position].strip() if position is not None and position < len(record) else ""

        row = CsvRow(
            line=line,
            first_name=cell("first name"),
            last_name=cell("last name"),
            email=cell("email").lower(),
            role=cell("role"),
            extra={name: cell(name) for name in extra_columns},
        )
        if len(record) > len(header):
            row.errors.append(f"has {len(record)} cells but the header names {len(header)} columns")
        if not row.email:
            row.errors.append("e-mail is missing")
        else:
            try:
                validate_email(row.email)
            except ValidationError:
                row.errors.append(f"“{row.email}” is not a valid e-mail address")
        role_value = ROLE_BY_LABEL.get(row.role.lower()) if row.role else Role.MEMBER
        if role_value is None:
            row.errors.append(f"unknown role “{row.role}” (use Member, Report viewer or Secondary admin)")
        elif role_value == Role.PRIMARY_ADMIN:
            row.errors.append("the primary admin can't be set by import; transfer the role from the member page")
        else:
            row.role = role_value
        for value, label in ((row.first_name, "the first name"), (row.last_name, "the last name")):
            problem = text_problem(value, label=label, max_length=NAME_MAX_LENGTH)
            if problem:
                row.errors.append(problem.rstrip("."))
        if row.email in existing:
            row.errors.append(f"{row.email} is already a member of this team")
        if row.email and row.email in seen:
            row.errors.append(f"{row.email} also appears on line {seen[row.email]}")
        elif row.email:
            seen[row.email] = line
        rows.append(row)
    if not rows:
        return CsvPreview(rows=[], errors=["The file has a header row but nobody in it."])
    return CsvPreview(rows=rows, errors=[])


@transaction.atomic
def bulk_invite(*, team: Team, data: bytes, actor: User | None) -> list[Membership]:
    """Invite everybody in a CSV file, or nobody: any bad row refuses the whole file."""
    preview = parse_member_csv(team=team, data=data)
    if not preview.ok:
        problems = preview.errors + [f"line {row.line}: {'; '.join(row.errors)}" for row in preview.bad_rows]
        raise ValidationError(["Nothing was imported. Fix the file and upload it again.", *problems])
    memberships = [
        invite_user(
            team=team,
            email=row.email,
            role=row.role,
            first_name=row.first_name,
            last_name=row.last_name,
            actor=actor,
        )
        for row in preview.rows
    ]
    write_audit_event(action="member.bulk_invited", actor=actor, team=team, details={"count": len(memberships)})
    return memberships
