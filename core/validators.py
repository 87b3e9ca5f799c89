"""What the database can keep: text without NUL characters or lone surrogates, and aware
times between 2000 and 2100 whose offset is whole minutes within ±14:00.

The API's fields (core.api), the usage-event validator (billing.events) and the services
all ask these same questions, so a value refused in one place is refused everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_datetime

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_OFFSET = timedelta(hours=14)  # Kiribati; no zone on Earth is further from UTC

BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def has_bad_text(values: Iterable[Any]) -> bool:
    """Text no database column can hold: NUL characters and lone surrogates."""
    return any(isinstance(value, str) and BAD_TEXT.search(value) for value in values)


def odd_offset(moment: datetime) -> bool:
    """An offset no place uses: with seconds (Berlin's 1859 local mean time, +00:53:28, is
    not ISO 8601), or beyond ±14:00 (PostgreSQL refuses offsets past ±15:59)."""
    offset = moment.utcoffset()
    if offset is None:
        return False
    return offset.seconds % 60 != 0 or offset.microseconds != 0 or abs(offset) > MAX_OFFSET


def in_range(moment: datetime) -> bool:
    """An aware time from 2000 up to (not including) 2100, expressible in UTC."""
    try:
        return EARLIEST <= moment < LATEST
    except OverflowError:
        return False


def read_time(value: Any) -> tuple[datetime | None, str | None]:
    """An aware time from a ``datetime`` or an ISO 8601 string, and what is wrong with it:
    None, or "invalid" (no time), "naive" (no offset), "offset" (``odd_offset``) or "range"
    (outside 2000 to 2100). The API's time field and the usage-event validator both read
    times this way."""
    moment = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and len(value) <= 64:
        try:
            moment = parse_datetime(value.strip())
        except ValueError:
            moment = None
    if moment is None:
        return None, "invalid"
    if moment.utcoffset() is None:
        return moment, "naive"
    if odd_offset(moment):
        return moment, "offset"
    if not in_range(moment):
        return moment, "range"
    return moment, None


def storable_time(moment: datetime) -> bool:
    """An aware time the database can keep: a sane offset, years 2000 to 2100."""
    return moment.utcoffset() is not None and not odd_offset(moment) and in_range(moment)


# Control characters (line breaks and tabs included), the Unicode line and paragraph
# separators, and lone surrogates: none belongs in a name, a reference or a label, and a
# line break in a name would end up in an e-mail header.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def text_problem(value: str, *, label: str, max_length: int, required: bool = False) -> str | None:
    """What is wrong with a one-line text a person or a client typed, or None. ``value``
    should be stripped already; ``label`` names it in the message ("The team name")."""
    if not value:
        return f"{label} is required." if required else None
    if CONTROL.search(value):
        return f"{label} can't contain line breaks, tabs or other control characters."
    if len(value) > max_length:
        return f"{label} is limited to {max_length} characters ({len(value)} given)."
    return None


def clean_text(value: str | None, *, field: str, label: str, max_length: int, required: bool = False) -> str:
    """``value`` stripped, or a ``ValidationError`` keyed by ``field`` saying what is wrong."""
    value = (value or "").strip()
    problem = text_problem(value, label=label, max_length=max_length, required=required)
    if problem:
        raise ValidationError({field: problem})
    return value
