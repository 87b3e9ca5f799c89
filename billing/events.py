"""The one validator of usage events (domain.md "Usage events"; api.md ``POST usage-events``).

Everything that takes usage asks it: ``log_usage`` (for the API and every other caller)
and the CSV import (``import_usage``), which checks a whole file before it charges a row.
A check is written once, as a :class:`Problem` that says what is wrong in two registers:
``short`` for the API's ``fields`` ("In the future.") and ``sentence`` for a person reading
a report line by line ("started_at 2026-03-02T08:00:00+00:00 lies in the future.").

- :func:`read_event`: the event's shape: required fields, text the database can keep,
  times with an offset between 2000 and 2100, a positive quantity with two decimals.
- :func:`rule_problems`: what needs the team and the rate sheet: a known product, a
  member of the team, a rate in force, a variant where the service has them, ``ended_at``
  for daily products, and (live only) not in the future and not too old.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings

from billing.models import ChargeType
from billing.rates import RateBook
from core.money import CENT
from core.validators import CONTROL, has_bad_text, read_time

MAX_BATCH = 1000
# The fields an event has (``read_event`` reads these and ignores any other).
EVENT_FIELDS = ("id", "user", "product", "variant", "started_at", "ended_at", "quantity")
# Clocks drift: an event may start up to this far past the server's now.
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_ID_LENGTH = 100
MAX_CODE_LENGTH = 64  # product and variant codes (UsageEvent.product / .variant)
MAX_EMAIL_LENGTH = 254
MAX_QUANTITY = Decimal("100000")
EXAMPLE_TIME = "2026-03-02T08:00:00+01:00"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an event."""

    field: str
    short: str  # for the API's ``fields``
    sentence: str  # for a person: starts with the field's name, reads on after "line 7:"
    code: str = "invalid"  # invalid, unknown_product, unknown_user, no_rate or event_too_old


class EventError(Exception):
    """One event that can't be taken; it gets an error result and the others go on."""

    def __init__(self, code: str, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields or {}

    @classmethod
    def of(cls, problem: Problem) -> EventError:
        """A rule's refusal: its code, its sentence as the message, its field."""
        return cls(problem.code, problem.sentence[:1].upper() + problem.sentence[1:], {problem.field: problem.short})

    def as_result(self, event_id: Any) -> dict:
        return {
            "id": result_id(event_id),
            "status": "error",
            "error": {"code": self.code, "message": self.message, "fields": self.fields},
            "replayed": False,
        }


def result_id(event_id: Any) -> Any:
    """The id an error result echoes: as sent, unless it can't be echoed (then null)."""
    if isinstance(event_id, int) and not isinstance(event_id, bool):
        return event_id
    return event_id if isinstance(event_id, str) and not has_bad_text([event_id]) else None


@dataclass
class ParsedEvent:
    """An event as read; a field is None where it could not be read (see the problems)."""

    index: int
    id: str
    email: str
    product: str
    variant: str
    started_at: datetime | None
    ended_at: datetime | None
    quantity: Decimal | None
    user: Any = None  # the member, once rule_problems found them


# --- Shape -------------------------------------------------------------------------------------


def _text(raw: dict, name: str, *, required: bool, max_length: int, problems: list[Problem]) -> str:
    value = raw.get(name)
    missing = "A non-empty id is required." if name == "id" else "Required."
    if name == "id" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or value == "" or (required and not isinstance(value, str)):
        if required:
            problems.append(Problem(name, missing, f"{name} is missing."))
        return ""
    if not isinstance(value, str):
        problems.append(Problem(name, "Must be a string.", f"{name} must be text."))
        return ""
    if CONTROL.search(value):  # NUL, line breaks, tabs, lone surrogates
        problems.append(
            Problem(
                name, "Contains characters that are not allowed.", f"{name} contains characters that are not allowed."
            )
        )
        return ""
    value = value.strip()
    if not value and required:
        problems.append(Problem(name, missing, f"{name} is missing."))
    elif len(value) > max_length:
        problems.append(
            Problem(name, f"At most {max_length} characters.", f"{name} is longer than {max_length} characters.")
        )
        return ""
    return value


# Stored in UTC: an offset no place uses, or a time that can't be expressed in UTC between
# 2000 and 2100, is refused here instead of failing in the database.
TIME_PROBLEMS = {
    "invalid": ("Not an ISO 8601 time.", f"is not an ISO 8601 time (e.g. {EXAMPLE_TIME})."),
    "naive": ("A time zone offset is required.", "has no time zone offset (add one, e.g. +00:00)."),
    "offset": (
        "The offset must be whole minutes between -14:00 and +14:00 (e.g. +01:00).",
        "has an offset that is not whole minutes within ±14:00.",
    ),
    "range": ("Out of range: years 2000 to 2100, offset within ±14:00.", "is out of range (years 2000 to 2100)."),
}


def _time(raw: dict, name: str, *, required: bool, problems: list[Problem]) -> datetime | None:
    value = raw.get(name)
    if value is None or value == "":
        if required:
            problems.append(Problem(name, "Required.", f"{name} is missing."))
        return None
    if not isinstance(value, str | datetime):
        problems.append(Problem(name, "Must be a string.", f"{name} must be an ISO 8601 time (e.g. {EXAMPLE_TIME})."))
        return None
    shown = value if isinstance(value, str) else value.isoformat()
    moment, problem = read_time(value)
    if problem:
        short, sentence = TIME_PROBLEMS[problem]
        problems.append(Problem(name, short, f"{name} “{shown[:64]}” {sentence}"))
        return None
    return moment.astimezone(UTC)


def _quantity(raw: dict, problems: list[Problem]) -> Decimal | None:
    value = raw.get("quantity", 1)
    quantity = None
    if not isinstance(value, bool | dict | list):
        try:
            quantity = Decimal(str(value))
        except InvalidOperation:
            quantity = None
    if quantity is None or not quantity.is_finite() or quantity <= 0 or quantity > MAX_QUANTITY:
        problems.append(
            Problem(
                "quantity",
                f"A number greater than 0 (at most {MAX_QUANTITY}).",
                f"quantity “{value}” is not a number greater than 0 (at most {MAX_QUANTITY}).",
            )
        )
        return None
    if quantity != quantity.quantize(CENT):
        problems.append(
            Problem("quantity", "At most two decimal places.", f"quantity “{value}” has more than two decimal places.")
        )
        return None
    return quantity


def read_event(index: int, raw: Any) -> tuple[ParsedEvent | None, list[Problem]]:
    """The event's shape: what could be read, and every problem found."""
    if not isinstance(raw, dict):
        return None, [Problem("", "", "an event must be an object.")]
    problems: list[Problem] = []
    event_id = _text(raw, "id", required=True, max_length=MAX_ID_LENGTH, problems=problems)
    email = _text(raw, "user", required=True, max_length=MAX_EMAIL_LENGTH, problems=problems)
    product = _text(raw, "product", required=True, max_length=MAX_CODE_LENGTH, problems=problems)
    variant = _text(raw, "variant", required=False, max_length=MAX_CODE_LENGTH, problems=problems)
    quantity = _quantity(raw, problems)
    started_at = _time(raw, "started_at", required=True, problems=problems)
    ended_at = _time(raw, "ended_at", required=False, problems=problems)
    if started_at and ended_at and ended_at < started_at:
        problems.append(Problem("ended_at", "Must not be before started_at.", "ended_at is before started_at."))
    event = ParsedEvent(
        index=index,
        id=event_id,
        email=email.lower(),
        product=product,
        variant=variant,
        started_at=started_at,
        ended_at=ended_at,
        quantity=quantity,
    )
    return event, problems


def parse_event(index: int, raw: Any) -> ParsedEvent:
    """The event, or an ``EventError`` with every shape problem."""
    event, problems = read_event(index, raw)
    if event is None:
        raise EventError("invalid", "An event must be an object.")
    if problems:
        raise EventError("invalid", "The event has invalid fields.", {p.field: p.short for p in problems})
    return event


# --- Rules -------------------------------------------------------------------------------------


def no_rate(product: str, moment: datetime) -> Problem:
    return Problem(
        "product", "No rate then.", f"no rate for {product} was in force at {moment.isoformat()}.", code="no_rate"
    )


def rule_problems(
    event: ParsedEvent,
    *,
    rates: RateBook,
    members: dict[str, Any],
    team_slug: str,
    now: datetime,
    historical: bool,
    unreadable: set[str] = frozenset(),
) -> list[Problem]:
    """What the rate sheet and the team say about an event, most telling first.

    ``members`` maps lower-case e-mail addresses to the team's users; the member found is
    put on ``event.user``. ``unreadable`` names fields whose shape was wrong (their
    rules are not checked again). Live events (``historical`` False) must also not end in
    the future nor more than ``FLEX_MAX_EVENT_AGE_HOURS`` ago.
    """
    problems: list[Problem] = []
    product = event.product
    if product and not rates.knows(product):
        problems.append(
            Problem(
                "product", "Unknown product.", f"product “{product}” is not on the rate sheet.", code="unknown_product"
            )
        )
    if event.email:
        event.user = members.get(event.email)
        if event.user is None:
            problems.append(
                Problem(
                    "user",
                    "Not a member.",
                    f"user {event.email} is not a member of team {team_slug}.",
                    code="unknown_user",
                )
            )
    rate = rates.at(product, event.started_at) if product and event.started_at and rates.knows(product) else None
    if product and event.started_at and rates.knows(product) and rate is None:
        problems.append(no_rate(product, event.started_at))
    if event.started_at and event.started_at > now + FUTURE_TOLERANCE:
        problems.append(
            Problem("started_at", "In the future.", f"started_at {event.started_at.isoformat()} lies in the future.")
        )
    # Live: a session is charged again when it outlives its window, not in advance.
    if not historical and event.ended_at and event.ended_at > now + FUTURE_TOLERANCE:
        problems.append(
            Problem("ended_at", "In the future.", f"ended_at {event.ended_at.isoformat()} lies in the future.")
        )
    if rate is not None:
        if rate.charge_type == ChargeType.DAILY and event.ended_at is None and "ended_at" not in unreadable:
            problems.append(
                Problem(
                    "ended_at",
                    "Required for daily products.",
                    f"ended_at is required for the daily product {product}.",
                )
            )
        known = list(rates.variants(rate))
        needs_variant = rate.charge_type == ChargeType.PER_RESULT and known and "variant" not in unreadable
        if needs_variant and rates.variant_tokens(rate, event.variant) is None:
            listed = ", ".join(known)
            sentence = (
                f"variant “{event.variant}” is not one of {listed} for {product}."
                if event.variant
                else f"{product} needs a variant: one of {listed}."
            )
            problems.append(Problem("variant", f"One of {listed}.", sentence))
    if not historical and event.started_at:
        # Live, every charge of an event must lie within the age limit: a session that
        # started before it (one that ran for days, reported at its end) would open windows
        # on report days long closed. Older usage, or a long session, is reported by the
        # historical import or in parts (docs/charging.md, "Late and long sessions").
        max_age = settings.FLEX_MAX_EVENT_AGE_HOURS
        oldest = now - timedelta(hours=max_age)
        end = event.ended_at or event.started_at
        if event.started_at < oldest:
            which = "ended" if end < oldest else "started"
            problems.append(
                Problem(
                    "ended_at" if which == "ended" else "started_at",
                    "Too old for the live API.",
                    f"the event {which} more than {max_age} hours ago; older usage is imported with the "
                    "historical import.",
                    code="event_too_old",
                )
            )
    return problems
