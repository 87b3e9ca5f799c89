"""The report ranges (domain.md "Reports"): past 30 days (rolling), the last 3 / 6 / 9 / 12
completed months (the current month excluded), the contract year, a custom range and all
dates. Days are the team's days. Pure date arithmetic: no query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

RANGE_CHOICES = [
    ("30d", "Past 30 days"),
    ("3m", "Last 3 completed months"),
    ("6m", "Last 6 completed months"),
    ("9m", "Last 9 completed months"),
    ("12m", "Last 12 completed months"),
    ("contract", "Contract year"),
    ("custom", "Custom range"),
    ("all", "All dates"),
]
DEFAULT_RANGE = "30d"


@dataclass(frozen=True)
class Period:
    """An inclusive range of the team's days; ``start`` None is open (all dates)."""

    key: str
    start: date | None
    end: date | None
    label: str

    @property
    def days(self) -> int | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).days + 1

    def previous(self) -> Period | None:
        """The period of the same length just before (None for all dates)."""
        if self.days is None:
            return None
        end = self.start - timedelta(days=1)
        start = end - timedelta(days=self.days - 1)
        return Period("previous", start, end, f"{start:%b %-d, %Y} – {end:%b %-d, %Y}")

    @property
    def slug(self) -> str:
        """The range in a file name: 2026-01-01_2026-03-31, or all-dates."""
        if self.start is None:
            return "all-dates" if self.end is None else f"until_{self.end.isoformat()}"
        return f"{self.start.isoformat()}_{self.end.isoformat()}"


def _months_back(day: date, months: int) -> date:
    """The first day of the month ``months`` before ``day``'s month."""
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def resolve(
    key: str,
    *,
    today: date,
    contract_start: date,
    contract_end: date,
    start: date | None = None,
    end: date | None = None,
) -> Period:
    """The period a range key stands for, on the team's ``today``."""
    label = dict(RANGE_CHOICES).get(key, key)
    if key == "30d":
        first, last = today - timedelta(days=29), today
    elif key in ("3m", "6m", "9m", "12m"):
        this_month = today.replace(day=1)
        first, last = _months_back(today, int(key[:-1])), this_month - timedelta(days=1)
    elif key == "contract":
        # The contract year that holds today (years counted from the contract's start day),
        # cut at the contract's end.
        first = contract_start
        while _add_year(first) <= today:
            first = _add_year(first)
        last = max(first, min(_add_year(first) - timedelta(days=1), contract_end))
    elif key == "custom":
        first, last = start, end
    else:
        return Period("all", None, None, "All dates")
    return Period(key, first, last, f"{label}: {_span(first, last)}")


def _span(first: date | None, last: date | None) -> str:
    if first is None and last is None:
        return "all dates"
    if first is None:
        return f"until {last:%b %-d, %Y}"
    if last is None:
        return f"from {first:%b %-d, %Y}"
    return f"{first:%b %-d, %Y} – {last:%b %-d, %Y}"


def _add_year(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # February 29th
        return day.replace(year=day.year + 1, day=28)


@dataclass(frozen=True)
class Split:
    """A range of days as whole months and the days around them: reports read whole months
    from the monthly rollups and only the days left over from the daily one."""

    months: tuple[date | None, date | None] | None  # first and last whole month (first days); None: open
    edges: tuple[tuple[date | None, date | None], ...]  # inclusive ranges of days, at most two


def _month_end(day: date) -> date:
    return _months_back(day, -1) - timedelta(days=1)


def split(start: date | None, end: date | None) -> Split:
    """``start`` to ``end`` (inclusive; None is open) as whole months and leftover days."""
    if start is not None and end is not None and start > end:
        return Split(None, ())
    edges = []
    first = start
    if start is not None and start.day != 1:
        first = _months_back(start, -1)
        edges.append((start, min(_month_end(start), end) if end is not None else _month_end(start)))
    last = end.replace(day=1) if end is not None else None
    if end is not None and end != _month_end(end):
        last = _months_back(end, 1)
        tail = (max(end.replace(day=1), start) if start is not None else end.replace(day=1), end)
        if not edges or tail[0] > edges[0][1]:
            edges.append(tail)
    whole = first is None or last is None or first <= last
    return Split((first, last) if whole else None, tuple(edges))
